"""Hyperparameter search over any training task's loop settings with Ray Tune, on the Ray the
driver is connected to (the step's own cluster, like its training).

Each trial trains one model in one process on the rows in memory (no Ray Train: its per-run
start-up costs tens of seconds on a few cores, more than a small trial's whole training), and
reports the validation metric after every epoch. ASHA stops the trials that trail their peers at
each rung, so the budget goes to the promising ones. The number of epochs can be one of the
searched settings: a trial's learning rate then decays over its own epochs, as it would in a
training run with that setting. The shipped defaults are always the first trial, and ASHA never
stops it, so the search never picks something worse than them on its own validation rows.

The experiment lives under the storage the caller names (a local path or a bucket). Run again
with the same name, the search resumes: finished trials are kept, unfinished and errored ones go
on from their last epoch's checkpoint. ASHA's rung records are not among what Tune keeps, so
after a resume it compares trials only on what they report from then on, and stops fewer.

Imports Ray and torch, never Dagster.
"""

import dataclasses
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from ml_assets.training.config import LoopConfig
from ml_assets.training.driver import read_rows, steps_per_worker
from ml_assets.training.epoch import train_one_epoch
from ml_assets.training.task import Arrays, TrainingTask

STATE_FILE = "trial.pt"
ROW_LOSSES_FILE = "row_losses.npy"  # the last epoch's per-row validation losses
# A trial replaces the defaults only when it beats them by this many standard errors of the
# paired per-row difference on the validation rows: the best of many noisy scores is biased
# low (the winner's curse), most of all on a small validation day.
MIN_Z = 2.0


@dataclass(frozen=True)
class SearchBudget:
    trials: int = 12
    time_budget_s: float | None = None  # None: until every trial has finished or stopped
    grace_epochs: int = 1  # epochs every trial gets before ASHA may stop it
    reduction_factor: int = 3  # ASHA keeps the best 1/reduction_factor at each rung
    cpus_per_trial: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError(f"a search needs at least 1 trial, got trials={self.trials}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be positive, got {self.time_budget_s}")
        if self.reduction_factor < 2:
            raise ValueError(f"reduction_factor must be at least 2, got {self.reduction_factor}")


def check_ranges(
    ranges: dict[str, list[float]], tunable: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    """`ranges` (name -> [low, high]) checked against what a model family lets tune; empty means
    all of `tunable` at its default range. A setting whose default range is whole numbers (the
    epochs) is searched over the whole numbers in [low, high], any other log-uniformly."""
    unknown = sorted(set(ranges) - set(tunable))
    if unknown:
        raise ValueError(
            f"cannot tune {', '.join(unknown)}; the settings that can be tuned are "
            f"{', '.join(sorted(tunable))}"
        )
    checked = {}
    for name, bounds in ranges.items():
        if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1]:
            raise ValueError(
                f"the search range of {name} must be [low, high] with 0 < low <= high (it is "
                f"searched on a log scale), got {list(bounds)}"
            )
        if all(isinstance(bound, int) for bound in tunable[name]):
            if not all(float(bound).is_integer() for bound in bounds):
                raise ValueError(
                    f"{name} is a whole number: its search range must be two whole numbers, "
                    f"got {list(bounds)}"
                )
            bounds = [int(bound) for bound in bounds]
        checked[name] = (bounds[0], bounds[1])
    return checked or dict(tunable)


def search(
    task: TrainingTask,
    train_files: list[str],
    validation_files: list[str],
    *,
    filesystem,
    ranges: dict[str, tuple[float, float]],
    budget: SearchBudget,
    storage_path: str,
    name: str,
    metric: str = "log_loss",
    mode: str = "min",
) -> dict:
    """Searches `ranges` of `task.loop` for the best `metric` (one of `task.validate`'s) on
    `validation_files` after `task.loop.epochs` epochs on `train_files` (a trial's own number,
    where `ranges` has the epochs). For a loss (`mode` min) the defaults are kept unless the best
    trial beats them beyond noise (MIN_Z). Returns JSON: every trial's settings, per-epoch metric
    and status, the chosen settings, wall and trial-core seconds, and whether it resumed an
    earlier search."""
    import ray
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    # A trial no node can hold would wait for placement until the time budget, or forever.
    largest = max(
        (node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]), default=0.0
    )
    if budget.cpus_per_trial > largest:
        raise ValueError(
            f"a trial asks for {budget.cpus_per_trial:g} CPUs and no node of the Ray cluster has "
            f"more than {largest:g}: lower cpus_per_trial, or use a cluster with larger nodes"
        )
    # ASHA compares trials at the same point of their learning-rate schedules, counted in epochs
    # of the longest one: where the epochs are searched, a short trial has decayed its rate
    # further by its first epoch than a long one has, and would look better there than it is.
    longest = max(task.loop.epochs, int(ranges.get("epochs", (0, 0))[1]))
    train = read_rows(task, train_files, filesystem)
    validation = read_rows(task, validation_files, filesystem)
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial,
            task=task,
            train=train,
            validation=validation,
            threads=max(1, math.floor(budget.cpus_per_trial)),
            longest=longest,
        ),
        {"cpu": budget.cpus_per_trial},
    )
    experiment = f"{storage_path.rstrip('/')}/{name}"
    # Every trial checkpoint forces a snapshot of the experiment's state (num_to_keep=1), which
    # Tune warns about each time; those snapshots are what let a killed search resume each
    # trial from its last epoch, and they are small.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    defaults = {key: getattr(task.loop, key) for key in ranges}
    started = time.time()
    resumed = tune.Tuner.can_restore(experiment, storage_filesystem=filesystem)
    if resumed:
        tuner = tune.Tuner.restore(
            experiment, trainable, resume_errored=True, storage_filesystem=filesystem
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={
                key: tune.randint(int(low), int(high) + 1)
                if _whole(task.loop, key)
                else tune.loguniform(low, high)
                for key, (low, high) in ranges.items()
            },
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                num_samples=budget.trials,
                time_budget_s=budget.time_budget_s,
                # Rungs by what the trial reports of its own schedule: Tune restarts
                # training_iteration at 1 for a trial resumed from its checkpoint, which would
                # put its rungs late.
                scheduler=KeepingDefaultsASHA(
                    defaults,
                    time_attr="schedule",
                    max_t=longest,
                    grace_period=min(budget.grace_epochs, longest),
                    reduction_factor=budget.reduction_factor,
                ),
                search_alg=BasicVariantGenerator(
                    points_to_evaluate=[defaults], random_state=budget.seed
                ),
                # Short folder names: the settings are in each trial's params.json.
                trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage_path,
                storage_filesystem=filesystem,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=1,  # a status table now and then: the search's progress in the step log
            ),
        )
    grid = tuner.fit()
    # Numbered in the order Tune created them, so trial 0 is the defaults (points_to_evaluate).
    results = sorted(
        (grid[index] for index in range(len(grid))), key=lambda result: Path(result.path).name
    )
    trials = [_trial_record(result, metric, task.loop) for result in results]
    for number, trial in enumerate(trials):
        trial["trial"] = number
    chosen = _choose(trials, mode)
    if mode == "min" and chosen["trial"] != 0 and trials[0]["status"] == "completed":
        chosen = _unless_noise(chosen, trials[0], results[chosen["trial"]], results[0])
    return {
        "metric": metric,
        "mode": mode,
        "epochs": task.loop.epochs,
        "trials": trials,
        "chosen": chosen,
        "defaults": defaults,
        "seconds": round(time.time() - started, 1),
        "trial_core_seconds": round(
            sum(trial["seconds"] for trial in trials) * budget.cpus_per_trial, 1
        ),
        "stopped_early": sum(trial["status"] == "stopped" for trial in trials),
        "resumed": resumed,
    }


def _whole(loop: LoopConfig, key: str) -> bool:
    """Whether the loop's setting is a whole number (the epochs): searched over the integers,
    and reported as one."""
    return isinstance(getattr(loop, key), int)


class KeepingDefaultsASHA(ASHAScheduler):
    """ASHA that never stops the trial of the shipped defaults (its rungs still record it): the
    chosen trial replaces the defaults only when it beats their finished run beyond noise, so
    that run must finish. A defaults trial stopped at a rung would leave the best of the rest
    chosen unchallenged, however small its lead on the validation day."""

    def __init__(self, defaults: dict, **asha):
        super().__init__(**asha)
        self._defaults = defaults

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        return TrialScheduler.CONTINUE if trial.config == self._defaults else action


def _trial(
    params: dict,
    *,
    task: TrainingTask,
    train: Arrays,
    validation: Arrays,
    threads: int,
    longest: int,
) -> None:
    """One trial: the task with `params` in its loop, trained epoch by epoch in this process."""
    from ray import tune

    torch.set_num_threads(threads)
    validation = tuple(np.array(column) for column in validation)  # writable: torch reads it
    loop = dataclasses.replace(task.loop, **params)
    trial_task = dataclasses.replace(task, loop=loop)  # pyright: ignore[reportArgumentType]
    torch.manual_seed(loop.seed)
    model = trial_task.build_model()
    trial_task.initialize(model)
    optimizer = trial_task.make_optimizer(model)
    start_epoch = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # a resumed search: go on after the last finished epoch
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / STATE_FILE, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"] + 1
    total_steps = steps_per_worker(len(train[0]), loop, 1, loop.batch_size)
    for epoch in range(start_epoch, loop.epochs):
        rng = np.random.default_rng([loop.seed, epoch])
        train_one_epoch(
            model,
            optimizer,
            trial_task.batches(train, loop.batch_size, rng),
            loop,
            loss=trial_task.loss,
            epoch=epoch,
            total_steps=total_steps,
        )
        scores = trial_task.validate(model, validation)
        with tempfile.TemporaryDirectory() as directory:
            torch.save(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
                Path(directory) / STATE_FILE,
            )
            losses = trial_task.row_losses(model, validation) if epoch == loop.epochs - 1 else None
            if losses is not None:
                np.save(Path(directory) / ROW_LOSSES_FILE, losses)
            tune.report(
                # schedule: how far through its learning-rate schedule the trial is, in epochs
                # of the search's longest one.
                {"epoch": epoch + 1, "schedule": (epoch + 1) * longest / loop.epochs, **scores},
                checkpoint=tune.Checkpoint.from_directory(directory),
            )


def _trial_record(result, metric: str, loop: LoopConfig) -> dict:
    history = result.metrics_dataframe
    curve = [] if history is None or metric not in history else [
        float(value)
        for value in history.drop_duplicates("epoch", keep="last").sort_values("epoch")[metric]
    ]  # fmt: skip
    last = result.metrics or {}
    params = {
        key: int(value) if _whole(loop, key) else float(value)
        for key, value in (result.config or {}).items()
    }
    if result.error is not None:
        status = "errored"
    elif len(curve) >= params.get("epochs", loop.epochs):
        status = "completed"
    else:
        status = "stopped"  # by ASHA, or by the time budget
    return {
        "params": params,
        "curve": curve,
        "final": curve[-1] if curve else None,
        "status": status,
        "seconds": float(last.get("time_total_s", 0.0)),
        "error": str(result.error)[-2000:] if result.error is not None else "",
    }


def _choose(trials: list[dict], mode: str) -> dict:
    """The completed trial with the best final metric."""
    completed = [trial for trial in trials if trial["status"] == "completed"]
    if not completed:
        raise RuntimeError(
            f"none of the {len(trials)} trial(s) finished its epochs within the search's budget; "
            "raise the time budget, or lower the trials or the epochs"
        )
    best = (min if mode == "min" else max)(completed, key=lambda trial: trial["final"])
    return {"trial": best["trial"], "params": best["params"], "final": best["final"]}


def _unless_noise(chosen: dict, defaults: dict, chosen_result, defaults_result) -> dict:
    """`chosen`, or the defaults when its lead over them on the validation rows is within
    MIN_Z standard errors of the paired per-row loss difference (where the task has row
    losses). Says which, and by how much, under `versus_defaults`."""
    losses = [_row_losses(result) for result in (chosen_result, defaults_result)]
    if losses[0] is None or losses[1] is None:
        return chosen
    difference = losses[1] - losses[0]  # > 0 where the chosen trial does better
    z = float(difference.mean() / (difference.std(ddof=1) / math.sqrt(len(difference)) or 1))
    versus = {"lead": float(difference.mean()), "z": z, "min_z": MIN_Z}
    if z >= MIN_Z:
        return chosen | {"versus_defaults": versus}
    kept = {"trial": 0, "params": defaults["params"], "final": defaults["final"]}
    return kept | {"versus_defaults": versus | {"best_trial": chosen["trial"]}}


def _row_losses(result) -> np.ndarray | None:
    if result.checkpoint is None:
        return None
    with result.checkpoint.as_directory() as directory:
        path = Path(directory) / ROW_LOSSES_FILE
        return np.load(path) if path.exists() else None
