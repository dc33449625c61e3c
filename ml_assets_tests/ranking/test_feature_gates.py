"""Feature gates (model.FeatureGates): without a penalty the model is what it was without them;
with one, on a world where most features carry nothing, they find which ones do."""

import dataclasses

import numpy as np
import pytest
import torch

from ml_assets.ranking.click_task import ClickModelTask
from ml_assets.ranking.configs import ModelConfig, TrainConfig
from ml_assets.ranking.loop import click_loss, in_memory_batches, make_optimizer, train_one_epoch
from ml_assets.ranking.model import DCNv2, feature_gates, set_gate_penalty
from ml_assets.ranking.sample_data import encoded_synthetic_window
from ml_assets.ranking.synthetic import _world
from ml_assets.ranking.worlds import world
from ml_assets.training.driver import read_rows
from ml_assets_tests.ranking.test_model_and_loop import toy_problem

SMALL = ModelConfig(cardinalities=(50, 5), dense_features=3, embedding_dim=4, deep_layers=(16,))


def trained(config: ModelConfig, feature_gate_penalty: float) -> DCNv2:
    dense, ids, labels = toy_problem(rows=4_000)
    torch.manual_seed(0)
    model = DCNv2(config)
    set_gate_penalty(model, feature_gate_penalty, rows=4_000)
    loop = TrainConfig(epochs=2, batch_size=200)
    optimizer = make_optimizer(model, loop)
    for epoch in range(loop.epochs):
        batches = in_memory_batches(dense, ids, labels, loop.batch_size, epoch)
        train_one_epoch(model, optimizer, batches, loop, epoch=epoch)
    return model


def test_without_a_penalty_the_gates_stay_at_one_and_the_model_is_the_same_as_without_them():
    gated = trained(SMALL, feature_gate_penalty=0.0)
    plain = trained(dataclasses.replace(SMALL, feature_gates=False), feature_gate_penalty=0.0)
    assert feature_gates(gated) == [1.0] * 5
    assert feature_gates(plain) is None
    dense, ids, _ = toy_problem(rows=50, seed=1)
    batch = (torch.from_numpy(dense), torch.from_numpy(ids))
    assert torch.equal(gated.eval()(*batch), plain.eval()(*batch))


def test_the_penalty_is_its_strength_times_the_gates_l1_norm_and_trains_them():
    model = DCNv2(SMALL)
    set_gate_penalty(model, 30.0, rows=1_000)
    dense, ids, labels = (torch.from_numpy(a) for a in toy_problem(rows=64))
    data, penalty = click_loss(model.train(), (dense, ids, labels))
    # The embedding priors are off: the whole penalty is the gates', 5 gates at 1, each paying
    # the window's 30 nats spread over its 1,000 rows (as the batch's mean loss is per row).
    assert penalty is not None and penalty.item() == pytest.approx(30.0 / 1_000 * 5)
    (data + penalty).backward()
    gates = model.gates
    assert gates is not None and gates.values.grad is not None
    assert torch.all(gates.values.grad.abs() > 0)


def test_on_a_world_where_most_features_carry_nothing_the_gates_close_on_the_noise(tmp_path):
    """few_signal: 4 of 26 categorical features carry signal, the rest are noise with large
    vocabularies. Nothing tells the model which; the penalty alone closes the noise's gates."""
    spec = world("few_signal").spec
    signal = {f for f, effects in enumerate(_world(spec).id_effects) if np.any(effects)}
    window = encoded_synthetic_window(
        tmp_path, 40_000, ("2026-10-01", "2026-10-02", "2026-10-03"), min_count=10, spec=spec
    )
    schema = window.encoded_schema
    loop = TrainConfig(feature_gate_penalty=30.0)
    task = ClickModelTask(
        window.model_config, loop, schema.dense, schema.categorical, schema.label,
        window.vocabulary.id_counts(), window.vocabulary.base_rate,
    )  # fmt: skip
    rows = read_rows(task, window.train_files, None)
    torch.manual_seed(loop.seed)
    model = task.build_model()
    task.initialize(model)
    optimizer = task.make_optimizer(model)
    for epoch in range(loop.epochs):
        batches = task.batches(rows, loop.batch_size, np.random.default_rng([loop.seed, epoch]))
        train_one_epoch(model, optimizer, batches, loop, epoch=epoch)
    gates = feature_gates(model)
    assert gates is not None
    categorical = np.abs(gates[len(schema.dense) :])
    noise = [g for f, g in enumerate(categorical) if f not in signal]
    crossed = {f for pair in _world(spec).cross_pairs for f in pair}
    assert max(noise) < 0.05, categorical.round(3)
    assert min(categorical[f] for f in crossed) > 0.3, categorical.round(3)
