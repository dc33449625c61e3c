import io

import numpy as np
import pytest
import torch

from ml_assets.ranking import metrics as m
from ml_assets.ranking.configs import ARCHITECTURES, ModelConfig, TrainConfig
from ml_assets.ranking.loop import (
    in_memory_batches,
    make_optimizer,
    predict_probabilities,
    train_one_epoch,
)
from ml_assets.ranking.model import (
    DCNv2,
    DenseCurves,
    build_model,
    set_embedding_prior,
    start_at_base_rate,
)
from ml_assets.training.epoch import learning_rate_at


def toy_problem(rows=20_000, seed=0):
    """Clicks driven by one id feature and a dense feature: learnable in one epoch."""
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(0, 50, rows), rng.integers(0, 5, rows)], axis=1)
    dense = rng.normal(size=(rows, 3)).astype(np.float32)
    effect = np.linspace(-2, 2, 50)[ids[:, 0]] + dense[:, 0]
    labels = (rng.random(rows) < 1 / (1 + np.exp(-effect))).astype(np.float32)
    return dense, ids, labels


def test_forward_shapes_and_config_round_trip():
    config = ModelConfig(cardinalities=(50, 5), dense_features=3, embedding_dim=4)
    model = DCNv2(config)
    logits = model(torch.zeros(7, 3), torch.zeros(7, 2, dtype=torch.int64))
    assert logits.shape == (7,)
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_one_epoch_learns_the_toy_problem():
    dense, ids, labels = toy_problem()
    torch.manual_seed(0)
    model = DCNv2(
        ModelConfig(cardinalities=(50, 5), dense_features=3, embedding_dim=4, deep_layers=(32,))
    )
    config = TrainConfig(epochs=1, batch_size=256, learning_rate=1e-2, log_every_steps=10)
    before = m.log_loss(labels, predict_probabilities(model, dense, ids))
    stats = train_one_epoch(
        model,
        make_optimizer(model, config),
        in_memory_batches(dense, ids, labels, 256, 0),
        config,
        epoch=0,
    )
    after = m.log_loss(labels, predict_probabilities(model, dense, ids))
    assert stats.samples == len(labels) and stats.steps == -(-len(labels) // 256)
    assert after < before - 0.05
    assert m.roc_auc(labels, predict_probabilities(model, dense, ids)) > 0.75
    assert stats.curve and stats.curve[-1][0] == stats.samples


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_learns_the_toy_problem(architecture):
    dense, ids, labels = toy_problem()
    torch.manual_seed(0)
    config = ModelConfig(
        cardinalities=(50, 5),
        dense_features=3,
        embedding_dim=4,
        deep_layers=(32,),
        architecture=architecture,
    )
    model = build_model(config)
    assert model(torch.zeros(7, 3), torch.zeros(7, 2, dtype=torch.int64)).shape == (7,)
    assert ModelConfig.from_dict(config.to_dict()) == config
    train = TrainConfig(epochs=1, batch_size=256, learning_rate=1e-2)
    batches = in_memory_batches(dense, ids, labels, 256, 0)
    train_one_epoch(model, make_optimizer(model, train), batches, train, epoch=0)
    assert m.roc_auc(labels, predict_probabilities(model, dense, ids)) > 0.75


def test_architecture_is_checked_and_old_configs_still_load():
    with pytest.raises(ValueError, match="unknown model architecture 'fm'; choose one of dcn_v2"):
        ModelConfig(cardinalities=(5,), dense_features=1, architecture="fm")
    saved = ModelConfig(cardinalities=(5,), dense_features=1).to_dict()
    del saved["architecture"]  # a model saved before the baselines existed
    assert ModelConfig.from_dict(saved).architecture == "dcn_v2"
    # DCN-v2's parameter names are unchanged, so its saved weights still load.
    names = set(DCNv2(ModelConfig(cardinalities=(5, 3), dense_features=1)).state_dict())
    assert "embedding.weight" in names and "head.weight" in names


def test_max_steps_stops_the_epoch_early():
    dense, ids, labels = toy_problem(rows=5000)
    model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3, embedding_dim=4))
    config = TrainConfig(batch_size=100, max_steps_per_epoch=3)
    stats = train_one_epoch(
        model,
        make_optimizer(model, config),
        in_memory_batches(dense, ids, labels, 100, 0),
        config,
        epoch=0,
    )
    assert stats.steps == 3 and stats.samples == 300


def test_predictions_are_probabilities():
    dense, ids, _ = toy_problem(rows=1000)
    model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3))
    p = predict_probabilities(model, dense, ids, batch_size=128)
    assert p.shape == (1000,) and np.all((p > 0) & (p < 1))
    assert p == pytest.approx(predict_probabilities(model, dense, ids, batch_size=1000))


def test_cosine_schedule_decays_to_zero_and_resumes_where_the_checkpoint_left_it():
    config = TrainConfig(epochs=2, learning_rate=0.01, lr_schedule="cosine")
    assert learning_rate_at(config, 0, 100) == pytest.approx(0.01)
    assert learning_rate_at(config, 50, 100) == pytest.approx(0.005)
    assert learning_rate_at(config, 100, 100) == pytest.approx(0.0)
    constant = TrainConfig(learning_rate=0.01, lr_schedule="constant")
    assert learning_rate_at(constant, 99, 100) == 0.01
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'; choose one of cosine"):
        TrainConfig(lr_schedule="step")
    dense, ids, labels = toy_problem(rows=1000)
    model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3, embedding_dim=4))
    optimizer = make_optimizer(model, config)
    # Epoch 1 alone (as after a resume from epoch 0's checkpoint) starts mid-schedule.
    batches = in_memory_batches(dense, ids, labels, 100, 0)
    train_one_epoch(model, optimizer, batches, config, epoch=1, total_steps=20)
    last_step = 10 + 9  # epoch 1's steps are 10..19 of 20
    assert optimizer.param_groups[0]["lr"] == pytest.approx(learning_rate_at(config, last_step, 20))
    assert optimizer.param_groups[0]["lr"] < 0.001


def rare_id_problem():
    """Id 0 of the first feature on almost every row, ids 1..10 once each, always clicked."""
    rng = np.random.default_rng(1)
    rows = 4000
    ids = np.zeros((rows, 2), dtype=np.int64)
    ids[:10, 0] = np.arange(1, 11)
    dense = rng.normal(size=(rows, 3)).astype(np.float32)
    labels = (rng.random(rows) < 0.3).astype(np.float32)
    labels[:10] = 1.0
    counts = torch.tensor([rows - 10, *[1] * 10, *[0] * 39, rows, 0, 0, 0, 0])
    return dense, ids, labels, counts


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_the_embedding_prior_shrinks_rare_ids_and_leaves_frequent_ones_to_the_data(architecture):
    dense, ids, labels, counts = rare_id_problem()
    norms = {}
    for strength in (0.0, 5.0):
        torch.manual_seed(0)
        model = build_model(
            ModelConfig(cardinalities=(50, 5), dense_features=3, embedding_dim=4,
                        deep_layers=(16,), architecture=architecture)
        )  # fmt: skip
        if strength:
            set_embedding_prior(model, counts, strength, strength)
        config = TrainConfig(epochs=3, batch_size=100, learning_rate=1e-2, embedding_prior=strength)
        optimizer = make_optimizer(model, config)
        for epoch in range(3):
            batches = in_memory_batches(dense, ids, labels, 100, epoch)
            train_one_epoch(model, optimizer, batches, config, epoch=epoch)
        table = next(m for m in model.modules() if isinstance(m, torch.nn.Embedding)).weight
        norms[strength] = (table[1:11].norm(dim=1).mean().item(), table[0].norm().item())
    rare_free, frequent_free = norms[0.0]
    rare_prior, frequent_prior = norms[5.0]
    assert rare_prior < 0.5 * rare_free  # ten single sightings are not evidence
    assert frequent_prior > 0.5 * frequent_free  # thousands are


def test_the_prior_refuses_counts_from_another_vocabulary():
    model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3))
    with pytest.raises(ValueError, match="id counts cover 7 embedding rows, the table has 55"):
        set_embedding_prior(model, torch.ones(7), 1.0, 1.0)


def test_first_order_weights_add_each_ids_own_weight_to_the_logit():
    torch.manual_seed(0)
    model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3, first_order=True))
    dense = torch.randn(4, 3)
    ids = torch.tensor([[1, 0], [2, 4], [1, 4], [0, 0]])
    without = model(dense, ids)  # the weights start at 0: the network alone
    assert model.first_order is not None
    with torch.no_grad():
        model.first_order.weight[1] = 0.5  # id 1 of the first feature
        model.first_order.weight[50 + 4] = -2.0  # id 4 of the second
    added = model(dense, ids) - without
    assert torch.allclose(added, torch.tensor([0.5, -2.0, -1.5, 0.0]))


def test_the_first_order_prior_shrinks_rare_ids_in_logit_units():
    dense, ids, labels, counts = rare_id_problem()
    rare = {}
    for strength in (0.0, 4.0):
        torch.manual_seed(0)
        model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3, embedding_dim=4,
                                  deep_layers=(16,), first_order=True))  # fmt: skip
        set_embedding_prior(model, counts, 0.0, strength)
        config = TrainConfig(epochs=3, batch_size=100, learning_rate=1e-2)
        optimizer = make_optimizer(model, config)
        for epoch in range(3):
            batches = in_memory_batches(dense, ids, labels, 100, epoch)
            train_one_epoch(model, optimizer, batches, config, epoch=epoch)
        assert model.first_order is not None
        rare[strength] = model.first_order.weight[1:11].abs().mean().item()
    assert rare[4.0] < 0.5 * rare[0.0]  # one click each is not evidence of a large effect


@pytest.mark.parametrize("part", ["first_order", "dense_curves", "feature_gates"])
def test_models_saved_before_a_part_existed_load_without_it(part):
    without_part: dict = {part: False}
    old = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3, **without_part))
    saved = {k: v for k, v in old.config.to_dict().items() if k != part}
    config = ModelConfig.from_dict(saved)
    assert getattr(config, part) is False
    model = build_model(config)
    model.load_state_dict(old.state_dict())  # strict: the part's parameters are not expected
    dense, ids = torch.randn(3, 3), torch.zeros(3, 2, dtype=torch.int64)
    assert torch.equal(model(dense, ids), old(dense, ids))


def test_dense_curves_interpolate_between_knots_and_stay_flat_beyond():
    curves = DenseCurves(2, knots=4, limit=2.0)  # knots at -2, -1, 0, 1, 2
    with torch.no_grad():
        curves.values[0] = torch.tensor([4.0, 1.0, 0.0, 1.0, 4.0])  # x^2 at the knots
        curves.values[1] = torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0])
    dense = torch.tensor([[0.5, 0.0], [-1.5, 1.5], [-7.0, 2.0], [9.0, 5.0]])
    expected = torch.tensor([0.5 + 0.0, 2.5 + 5.0, 4.0 + 10.0, 4.0 + 10.0])
    assert torch.allclose(curves(dense), expected)


def test_dense_curves_add_each_inputs_curve_to_the_dcn_logit():
    model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3))
    dense, ids = torch.randn(4, 3), torch.zeros(4, 2, dtype=torch.int64)
    without = model(dense, ids)  # the curves start flat at 0
    assert model.curves is not None
    with torch.no_grad():
        model.curves.values[1] = 0.25  # input 1's curve: 0.25 everywhere
    assert torch.allclose(model(dense, ids) - without, torch.full((4,), 0.25))


def test_only_the_deep_tower_and_cross_layers_decay():
    model = DCNv2(ModelConfig(cardinalities=(50, 5), dense_features=3, deep_layers=(8,)))
    config = TrainConfig(learning_rate=0.1, deep_weight_decay=0.5, cross_weight_decay=0.2)
    optimizer = make_optimizer(model, config)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no data: whatever moves is the decay
    optimizer.step()
    shrink = {"deep.0.weight": 1 - 0.1 * 0.5, "cross.0.linear.weight": 1 - 0.1 * 0.2}
    for name, p in model.named_parameters():
        assert torch.allclose(p, before[name] * shrink.get(name, 1.0)), name


def test_the_fused_optimizer_continues_a_run_saved_by_the_unfused_one():
    """Checkpoints written before the optimizer was fused resume into the same trajectory:
    moments and step count carry over (a lost step count would redo Adam's bias correction)."""
    dense, ids, labels = toy_problem(rows=512)
    config = TrainConfig(learning_rate=1e-2, deep_weight_decay=0.1)
    model_config = ModelConfig(cardinalities=(50, 5), dense_features=3, deep_layers=(8,))

    def step(model, optimizer):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(torch.from_numpy(dense), torch.from_numpy(ids)), torch.from_numpy(labels)
        )
        loss.backward()
        optimizer.step()

    torch.manual_seed(0)
    unfused_model = build_model(model_config)
    unfused = make_optimizer(unfused_model, config, fused=False)
    for _ in range(3):
        step(unfused_model, unfused)
    resumed_model = build_model(model_config)
    resumed_model.load_state_dict(unfused_model.state_dict())
    resumed = make_optimizer(resumed_model, config)
    saved = io.BytesIO()  # through torch.save as a checkpoint goes: no tensor shared
    torch.save(unfused.state_dict(), saved)
    saved.seek(0)
    resumed.load_state_dict(torch.load(saved))
    assert resumed.defaults["fused"] and not unfused.defaults["fused"]
    for _ in range(2):
        step(unfused_model, unfused)
        step(resumed_model, resumed)
    for (name, expected), actual in zip(
        unfused_model.named_parameters(), resumed_model.parameters(), strict=True
    ):
        assert torch.allclose(actual, expected, atol=1e-6), name


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_model_started_at_the_base_rate_predicts_it_before_any_training(architecture):
    dense, ids, _ = toy_problem(rows=2000)
    torch.manual_seed(0)
    model = build_model(ModelConfig(cardinalities=(50, 5), dense_features=3,
                                    architecture=architecture))  # fmt: skip
    untouched = predict_probabilities(model, dense, ids, batch_size=500).mean()
    start_at_base_rate(model, 0.005)
    started = predict_probabilities(model, dense, ids, batch_size=500).mean()
    assert abs(untouched - 0.5) < 0.15  # where an output bias of 0 starts
    assert started == pytest.approx(0.005, rel=0.5)
