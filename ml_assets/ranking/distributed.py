"""The click model on the platform's distributed training (training.driver)."""

from pathlib import Path

import numpy as np

from ml_assets.ranking.click_task import ClickModelTask
from ml_assets.ranking.configs import ModelConfig, TrainConfig
from ml_assets.ray.scaling import WorkerPlan
from ml_assets.training.driver import fit
from ml_assets.training.records import TrainingOutcome


def fit_distributed(
    train_files: list[Path],
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    plan: WorkerPlan,
    dense: tuple[str, ...],
    categorical: tuple[str, ...],
    label: str,
    checkpoint_root: Path,
    run_name: str,
    max_failures: int = 1,
    chunk_batches: int = 16,
    cache_below_bytes: int = 2 * 2**30,
    id_counts: np.ndarray | None = None,
    validation_files: list[Path] | None = None,
    stream_budget_bytes: int = 512 * 2**20,
    base_rate: float | None = None,
) -> TrainingOutcome:
    """Train the click model over Parquet files of encoded rows (`training.driver.fit` says how).

    `id_counts` (training rows per embedding row) turns on the per-id priors and the feature
    gates' penalty where `train_config` sets them. `validation_files` add a holdout log loss and
    AUC to every epoch's record. `base_rate`, the window's click rate, is where the model's
    output starts.
    """
    task = click_task(model_config, train_config, dense, categorical, label, id_counts, base_rate)
    return fit(
        task,
        train_files,
        plan=plan,
        checkpoint_root=checkpoint_root,
        run_name=run_name,
        max_failures=max_failures,
        chunk_batches=chunk_batches,
        cache_below_bytes=cache_below_bytes,
        validation_files=validation_files,
        stream_budget_bytes=stream_budget_bytes,
    )


def click_task(
    model_config: ModelConfig,
    train_config: TrainConfig,
    dense: tuple[str, ...],
    categorical: tuple[str, ...],
    label: str,
    id_counts: np.ndarray | None = None,
    base_rate: float | None = None,
) -> ClickModelTask:
    """The click model's task for the connected Ray."""
    import ray

    return ClickModelTask(
        model_config=model_config,
        loop=train_config,
        dense=dense,
        categorical=categorical,
        label=label,
        # Into the object store once, rather than pickled into every worker's task.
        id_counts=None if id_counts is None else ray.put(np.asarray(id_counts)),
        base_rate=base_rate,
    )
