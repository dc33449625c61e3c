"""Ray Train on a real local Ray with real failures: a SIGKILLed worker mid-epoch, and a corrupt
checkpoint left by an earlier attempt; and the priority the training workers run at."""

import contextlib
import threading
import time

import psutil
import pytest

from ml_assets.ranking.configs import TrainConfig
from ml_assets.ranking.distributed import fit_distributed
from ml_assets.ranking.sample_data import encoded_synthetic_days
from ml_assets.ray.scaling import WorkerPlan
from ml_assets.training.checkpoints import CHECKPOINT_FILE
from ml_assets_tests.ranking.chaos import KillWorkerAfterCheckpoint
from ml_assets_tests.training.test_checkpoints import write_checkpoint

pytestmark = pytest.mark.slow

PLAN = WorkerPlan(num_workers=2, cpus_per_worker=0.5, threads_per_worker=1, use_gpu=False)
EPOCHS = 3


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return encoded_synthetic_days(tmp_path_factory.mktemp("data"), rows=80_000)


def fit(data, storage, run_name, epochs=EPOCHS, max_failures=1, **options):
    schema, files, model_config = data
    return fit_distributed(
        files,
        model_config=model_config,
        train_config=TrainConfig(epochs=epochs, batch_size=1024, seed=0),
        plan=PLAN,
        dense=schema.dense,
        categorical=schema.categorical,
        label=schema.label,
        checkpoint_root=storage,
        run_name=run_name,
        max_failures=max_failures,
        **options,
    )


def test_a_killed_worker_resumes_from_the_last_checkpoint(data, local_ray, tmp_path, capsys):
    calm = fit(data, tmp_path, "calm")
    killer = KillWorkerAfterCheckpoint(tmp_path, "killed", after=1)
    killer.start()
    disturbed = fit(data, tmp_path, "killed")
    killer.join(timeout=5)

    assert killer.killed_pid is not None and killer.killed_at is not None
    assert [r.epoch for r in disturbed.history] == list(range(EPOCHS))
    assert disturbed.restarts == 1
    # Resumed from the checkpoint written before the kill: only the epoch in flight was redone.
    assert disturbed.resumed_from_epoch == killer.checkpoints_at_kill >= 1
    kept, redone = disturbed.history[: killer.checkpoints_at_kill], disturbed.history[1:]
    assert all(r.finished_at < killer.killed_at for r in kept)
    assert all(r.started_at > killer.killed_at for r in redone[killer.checkpoints_at_kill - 1 :])
    # And it ends where an undisturbed run ends: the redone epoch draws the same permutation of
    # the same shard (the same final loss to 4 decimals was seen); the margin is for a streamed
    # window, whose redone epoch would see the files in another order.
    final_calm, final_disturbed = calm.history[-1].loss, disturbed.history[-1].loss
    assert abs(final_disturbed - final_calm) < 0.02, (final_calm, final_disturbed)
    assert calm.restarts == 0 and calm.resumed_from_epoch == 0
    with capsys.disabled():
        print(f"\nworker kill: final loss {final_disturbed:.4f} vs undisturbed {final_calm:.4f}")


def test_a_corrupt_checkpoint_is_reported_and_training_restarts_clean(data, local_ray, tmp_path):
    run_dir = tmp_path / "corrupt"
    damaged = write_checkpoint(run_dir, "checkpoint_2026-11-30_07-00-00.000000", epochs=1)
    (damaged / CHECKPOINT_FILE).write_bytes((damaged / CHECKPOINT_FILE).read_bytes()[:100])
    outcome = fit(data, tmp_path, "corrupt", epochs=2)
    assert outcome.discarded_checkpoint is not None
    assert "cannot be loaded" in outcome.discarded_checkpoint
    assert "training restarts from scratch" in outcome.discarded_checkpoint
    assert [r.epoch for r in outcome.history] == [0, 1] and outcome.restarts == 0
    (aside,) = tmp_path.glob("corrupt.discarded-*")
    assert "cannot be loaded" in (aside / "DISCARDED.txt").read_text()
    assert outcome.checkpoint_dir.parent == run_dir  # a fresh run, in the usual place


def test_a_streamed_window_sees_every_row_once_per_epoch_and_learns(data, local_ray, tmp_path):
    """Streaming (the path of windows too large to cache): a fixed object-store budget and the
    files in a new order each epoch. Both must still hand every row to the trainers each epoch."""
    outcome = fit(data, tmp_path, "streamed", epochs=2, cache_below_bytes=0,
                  stream_budget_bytes=64 * 2**20)  # fmt: skip
    assert [r.samples for r in outcome.history] == [80_000, 80_000]
    assert outcome.history[1].loss < outcome.history[0].loss < 0.6


class RayWorkerNiceness(threading.Thread):
    """The niceness of Ray's worker processes on this host, by the actor class in their process
    title, polled while a fit runs until both kinds asked for have been seen."""

    def __init__(self, kinds: tuple[str, ...], timeout: float = 300):
        super().__init__(daemon=True)
        self.kinds, self.timeout = kinds, timeout
        self.seen: dict[str, set[int]] = {}

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and set(self.seen) != set(self.kinds):
            for process in psutil.process_iter(["cmdline"]):
                title = " ".join(process.info["cmdline"] or ())
                for kind in self.kinds:
                    if title.startswith(f"ray::{kind}"):
                        with contextlib.suppress(psutil.Error):
                            self.seen.setdefault(kind, set()).add(process.nice())
            time.sleep(0.2)  # polling other processes' state


def test_the_trainers_run_at_nice_0_and_rays_helpers_at_rays_default(data, local_ray, tmp_path):
    watch = RayWorkerNiceness(("RayTrainWorker", "TrainController"))
    watch.start()
    outcome = fit(data, tmp_path, "niceness", epochs=1)
    watch.join(timeout=5)
    assert len(outcome.history) == 1
    assert watch.seen == {"RayTrainWorker": {0}, "TrainController": {15}}
