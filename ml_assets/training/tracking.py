"""A training run's epochs and plots in the active MLflow run, whatever the model."""

import io

import mlflow

from ml_assets.training.records import EpochRecord


def log_epochs(history: list[EpochRecord]) -> None:
    for record in history:
        mlflow.log_metrics(
            {
                "train_loss": record.loss,
                "samples_per_second": record.samples_per_second,
                "data_wait_fraction": record.wait_fraction,
                **{f"validation_{name}": value for name, value in record.validation.items()},
            },
            step=record.epoch,
        )


def log_png(png: bytes, artifact_file: str) -> None:
    import numpy as np
    from PIL import Image

    mlflow.log_image(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), artifact_file)
