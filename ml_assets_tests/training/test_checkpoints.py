import dataclasses
import json
import shutil

import pytest
import torch

from ml_assets.ranking.click_task import ClickModelTask
from ml_assets.ranking.configs import ModelConfig, TrainConfig
from ml_assets.ranking.loop import make_optimizer
from ml_assets.ranking.model import build_model
from ml_assets.training.checkpoints import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    SNAPSHOT_FILE,
    checkpoint_problem,
    finished_checkpoint,
    latest_checkpoint,
    set_aside,
)


def write_checkpoint(
    run_dir, name, epochs=2, weight=1.0, snapshot=True, model=None, optimizer=None
):
    """A checkpoint of `epochs`; `model` and `optimizer` (state dicts) stand in for toy ones."""
    directory = run_dir / name
    directory.mkdir(parents=True)
    history = [{"epoch": e, "loss": 0.5} for e in range(epochs)]
    torch.save(
        {
            "model": model or {"w": torch.full((3,), weight), "steps": torch.tensor(4)},
            "optimizer": optimizer or {},
            "epoch": epochs - 1,
            "history": history,
        },
        directory / CHECKPOINT_FILE,
    )
    (directory / HISTORY_FILE).write_text(json.dumps(history))
    if snapshot:
        latest = {"checkpoint_dir_name": name}
        (run_dir / SNAPSHOT_FILE).write_text(json.dumps({"latest_checkpoint_result": latest}))
    return directory


def test_nothing_to_resume_is_no_problem(tmp_path):
    assert checkpoint_problem(tmp_path / "absent") is None
    assert checkpoint_problem(tmp_path) is None


def test_the_snapshot_names_the_latest_checkpoint(tmp_path):
    write_checkpoint(tmp_path, "checkpoint_2026-11-30_07-00-00.000000")
    newer_on_disk = write_checkpoint(
        tmp_path, "checkpoint_2026-11-30_08-00-00.000000", snapshot=False
    )
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "checkpoint_2026-11-30_07-00-00.000000"
    (tmp_path / SNAPSHOT_FILE).unlink()
    assert latest_checkpoint(tmp_path) == newer_on_disk
    assert checkpoint_problem(tmp_path) is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / CHECKPOINT_FILE).write_bytes((d / CHECKPOINT_FILE).read_bytes()[:200]),
         "cannot be loaded"),
        (lambda d: (d / CHECKPOINT_FILE).unlink(), "checkpoint.pt is missing"),
        (lambda d: shutil.rmtree(d), "named by Ray Train's snapshot"),
        (lambda d: torch.save({"model": {}}, d / CHECKPOINT_FILE), "lacks optimizer, epoch"),
    ],
    ids=["truncated", "file missing", "directory missing", "foreign"],
)  # fmt: skip
def test_unusable_checkpoints_say_why(tmp_path, damage, message):
    damage(write_checkpoint(tmp_path, "checkpoint_a"))
    problem = checkpoint_problem(tmp_path)
    assert problem is not None and message in problem


def test_diverged_weights_are_not_resumed(tmp_path):
    write_checkpoint(tmp_path, "checkpoint_a", weight=float("nan"))
    assert "non-finite weights (w)" in (checkpoint_problem(tmp_path) or "")


def test_set_aside_keeps_the_evidence_and_clears_the_way(tmp_path):
    run_dir = tmp_path / "ranking_model-run"
    write_checkpoint(run_dir, "checkpoint_a")
    moved = set_aside(run_dir, "it was truncated")
    assert not run_dir.exists() and moved.name.startswith("ranking_model-run.discarded-")
    assert (moved / "DISCARDED.txt").read_text() == "it was truncated\n"
    assert (moved / "checkpoint_a" / CHECKPOINT_FILE).exists()


def test_a_finished_run_is_recognized(tmp_path):
    write_checkpoint(tmp_path, "checkpoint_a", epochs=3)
    assert finished_checkpoint(tmp_path, epochs=3) == tmp_path / "checkpoint_a"
    assert finished_checkpoint(tmp_path, epochs=4) is None
    assert finished_checkpoint(tmp_path / "absent", epochs=1) is None


def test_lost_workers_are_infrastructure_and_code_errors_are_not():
    import ray.exceptions
    from ray.train import ControllerError, WorkerGroupError
    from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

    from ml_assets.training.driver import is_infrastructure_failure

    killed = WorkerHealthCheckFailedError("A worker health check failed.", RuntimeError("died"))
    peer = RuntimeError("gloo: Connection reset by peer")
    assert is_infrastructure_failure(WorkerGroupError("x", {0: peer, 1: killed}))
    assert is_infrastructure_failure(WorkerGroupError("x", {0: ray.exceptions.NodeDiedError("n")}))
    assert is_infrastructure_failure(ControllerError(RuntimeError("controller died")))
    nan = RuntimeError("loss is NaN")
    assert not is_infrastructure_failure(WorkerGroupError("x", {0: nan, 1: nan}))
    assert not is_infrastructure_failure(ValueError("no such column"))


def write_model_checkpoint(run_dir, model_config, optimizer_of=None):
    """A checkpoint as the worker loop writes it, for `model_config`; `optimizer_of` builds the
    optimizer from the model (default: the loop's own)."""
    model = build_model(model_config)
    optimizer = (optimizer_of or (lambda m: make_optimizer(m, TrainConfig())))(model)
    write_checkpoint(run_dir, "checkpoint_a", epochs=1, model=model.state_dict(),
                     optimizer=optimizer.state_dict())  # fmt: skip


SMALL_MODEL = ModelConfig(cardinalities=(5, 7), dense_features=3, deep_layers=(8,))


def click_task(model_config, train_config=None):
    """The click model's task: a real model and optimizer to check checkpoints against."""
    return ClickModelTask(model_config, train_config or TrainConfig(), (), (), "clicked")


def test_a_checkpoint_of_the_same_model_resumes(tmp_path):
    write_model_checkpoint(tmp_path, SMALL_MODEL)
    assert (
        checkpoint_problem(tmp_path, click_task(SMALL_MODEL, TrainConfig(deep_weight_decay=1.0)))
        is None
    )


def test_a_checkpoint_of_another_model_is_not_resumed(tmp_path):
    # A step retried after a redeploy that changed the model: its weights would not load.
    write_model_checkpoint(tmp_path, dataclasses.replace(SMALL_MODEL, dense_curves=False))
    problem = checkpoint_problem(tmp_path, click_task(SMALL_MODEL))
    assert problem is not None and "another model or optimizer" in problem
    assert "weights: lacks curves." in problem
    wider = dataclasses.replace(SMALL_MODEL, cardinalities=(5, 9))
    assert "has other shapes for embedding.weight" in (
        checkpoint_problem(tmp_path, click_task(wider)) or ""
    )


def test_a_checkpoint_of_another_optimizer_is_not_resumed(tmp_path):
    # The code before per-group weight decay saved Adam with one group.
    write_model_checkpoint(tmp_path, SMALL_MODEL, lambda m: torch.optim.Adam(m.parameters()))
    problem = checkpoint_problem(tmp_path, click_task(SMALL_MODEL))
    groups = [len(g["params"]) for g in make_optimizer(build_model(SMALL_MODEL), TrainConfig())
              .param_groups]  # fmt: skip
    assert len(groups) == 3
    assert problem is not None and f"this code makes {groups}" in problem
    assert f"sizes [{sum(groups)}]" in problem
