"""The platform's training driver with a model it has never heard of: a linear regression task
written here, trained by real Ray Train on a local Ray, from kept shards and from a stream."""

import dataclasses
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from ml_assets.ray.scaling import WorkerPlan
from ml_assets.training.checkpoints import CHECKPOINT_FILE
from ml_assets.training.config import LoopConfig
from ml_assets.training.driver import fit
from ml_assets.training.task import Arrays, Batch, TrainingTask

pytestmark = pytest.mark.slow

PLAN = WorkerPlan(num_workers=2, cpus_per_worker=0.5, threads_per_worker=1, use_gpu=False)
WEIGHTS = (2.0, -3.0)
NOISE = 0.1


@dataclass
class LinearRegressionTask(TrainingTask[LoopConfig]):
    loop: LoopConfig
    inputs: int = 2
    name: str = "linear_regression"

    @property
    def columns(self) -> tuple[str, ...]:
        return (*(f"x{i}" for i in range(self.inputs)), "y")

    def build_model(self) -> nn.Module:
        return nn.Linear(self.inputs, 1)

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=self.loop.learning_rate)

    def to_arrays(self, columns: dict[str, np.ndarray]) -> Arrays:
        x = np.stack([columns[f"x{i}"] for i in range(self.inputs)], axis=1)
        return x.astype(np.float32), np.asarray(columns["y"], dtype=np.float32)

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = batch
        return nn.functional.mse_loss(model(x).squeeze(1), y), None

    def example_batch(self, size: int, device: torch.device) -> Batch:
        return torch.zeros(size, self.inputs, device=device), torch.zeros(size, device=device)

    @torch.no_grad()
    def validate(self, model: nn.Module, arrays: Arrays) -> dict[str, float]:
        x, y = arrays
        error = model(torch.from_numpy(x)).squeeze(1) - torch.from_numpy(y)
        return {"mse": float((error**2).mean())}


def write_rows(path, rows, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = x @ np.array(WEIGHTS) + rng.normal(scale=NOISE, size=rows)
    pq.write_table(pa.table({"x0": x[:, 0], "x1": x[:, 1], "y": y}), path, row_group_size=4096)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rows")
    train = [write_rows(directory / f"day{d}.parquet", 10_000, d) for d in range(2)]
    return train, [write_rows(directory / "holdout.parquet", 5_000, 99)]


def train(files, root, run_name, task=None, **options):
    train_files, holdout = files
    task = task or LinearRegressionTask(LoopConfig(epochs=3, batch_size=256, learning_rate=0.05))
    return fit(task, train_files, plan=PLAN, checkpoint_root=root, run_name=run_name,
               validation_files=holdout, **options)  # fmt: skip


@pytest.mark.parametrize("cache_below_bytes", [2**30, 0], ids=["kept shards", "streamed"])
def test_a_task_the_platform_never_saw_trains_on_ray_train(
    files, local_ray, tmp_path, cache_below_bytes
):
    outcome = train(files, tmp_path, "fit", cache_below_bytes=cache_below_bytes)
    assert [record.epoch for record in outcome.history] == [0, 1, 2]
    # Every row once per epoch, over both workers (20,000 split evenly: no remainder to drop).
    assert [record.samples for record in outcome.history] == [20_000] * 3
    assert outcome.history[-1].loss < outcome.history[0].loss
    mse = [record.validation["mse"] for record in outcome.history]
    assert mse[-1] < 2 * NOISE**2, mse  # down to about the noise's variance
    assert outcome.history[-1].to_dict()["validation_mse"] == mse[-1]
    state = torch.load(outcome.checkpoint_dir / CHECKPOINT_FILE, weights_only=True)
    assert state["task"]["name"] == "linear_regression"
    weights = state["model"]["weight"].squeeze(0).tolist()
    assert weights == pytest.approx(WEIGHTS, abs=0.05)
    assert outcome.restarts == 0 and outcome.discarded_checkpoint is None
    # A retried step whose training had finished: the same records, read back, nothing trained.
    again = train(files, tmp_path, "fit", cache_below_bytes=cache_below_bytes)
    assert again.checkpoint_dir == outcome.checkpoint_dir and again.history == outcome.history


def test_a_checkpoint_of_another_model_is_set_aside(files, local_ray, tmp_path):
    wider = LinearRegressionTask(LoopConfig(epochs=1, batch_size=256), inputs=1)
    train(files, tmp_path, "changed", task=wider)
    task = LinearRegressionTask(LoopConfig(epochs=2, batch_size=256, learning_rate=0.05))
    outcome = train(files, tmp_path, "changed", task=task)
    assert outcome.discarded_checkpoint is not None
    assert "another model or optimizer" in outcome.discarded_checkpoint
    assert "has other shapes for weight" in outcome.discarded_checkpoint
    assert [record.epoch for record in outcome.history] == [0, 1]
    assert list(tmp_path.glob("changed.discarded-*"))


def test_epoch_records_survive_their_json_form():
    from ml_assets.training.records import EpochRecord

    record = EpochRecord(epoch=1, started_at=1.0, loop_started_at=0.5, finished_at=2.0, loss=0.3,
                         samples=100, seconds=1.0, samples_per_second=100.0, wait_fraction=0.1,
                         curve=[(50, 0.4), (100, 0.2)], validation={"auc": 0.7})  # fmt: skip
    flat = record.to_dict()
    assert flat["validation_auc"] == 0.7 and "validation" not in flat
    assert EpochRecord.from_dict(flat) == record
    assert dataclasses.replace(record, validation={}).to_dict().keys() == flat.keys() - {
        "validation_auc"
    }
