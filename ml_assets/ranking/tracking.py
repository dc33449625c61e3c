"""MLflow records of training runs: params, per-epoch metrics, plots and the packaged model."""

from pathlib import Path

import mlflow
import polars as pl

from ml_assets.ranking.serving import log_click_model
from ml_assets.training.records import EpochRecord
from ml_assets.training.tracking import log_epochs, log_png

MODEL_NAME_IN_RUN = "model"


def log_training_run(
    *,
    experiment_id: str,
    run_name: str,
    params: dict,
    tags: dict,
    history: list[EpochRecord],
    model_dir: Path,
    loss_curve_png: bytes,
    input_example: pl.DataFrame,
) -> tuple[str, str]:
    """Create the run with everything a reviewer needs; returns (run id, model URI)."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        log_epochs(history)
        log_png(loss_curve_png, "plots/loss_curve.png")
        info = log_click_model(MODEL_NAME_IN_RUN, model_dir, input_example)
        return run.info.run_id, info.model_uri


def log_evaluation(run_id: str, metrics: dict[str, float], plots: dict[str, bytes]) -> None:
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        for name, png in plots.items():
            log_png(png, f"plots/{name}.png")
