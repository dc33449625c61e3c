"""What automated retraining does: the window it trains on, when a landed file counts, the drift
threshold, and the run config every automated run gets."""

import dagster as dg
from pydantic import Field

from ml_assets.defs.run_config import config_for, load_run_config
from ml_assets.defs.window import window_dates


class AutomationSettings(dg.ConfigurableResource):
    """Shared by the new-data sensor, the drift sensor and the daily schedule."""

    train_days: int = Field(ge=1, default=7, description="Training days of an automated retrain.")
    holdout_days: int = Field(
        ge=1, default=1, description="Later days held out for evaluation in an automated retrain."
    )
    settle_seconds: float = Field(
        ge=0,
        default=60.0,
        description="A landed file must be unchanged this long before it is read: a writer may "
        "still be appending to it.",
    )
    psi_threshold: float = Field(
        gt=0,
        default=0.2,
        description="Retrain when any feature's population stability index (new days vs the "
        "last training window) reaches this. 0.1 is a moderate shift, 0.25 a large one.",
    )
    drift_days: int = Field(
        ge=1, default=1, description="How many of the newest days the drift sensor compares."
    )
    psi_bins: int = Field(ge=2, default=10, description="Bins per feature for the PSI.")
    drift_sample_rows: int = Field(
        ge=1,
        default=200_000,
        description="At most this many rows of the training window are read as the reference.",
    )
    run_config_file: str = Field(
        default="",
        description="YAML run config applied to every automated run (same format as "
        "`ml-assets run --config`): hyperparameters, promotion thresholds, resources.",
    )

    def window(self, end_date: str) -> list[str]:
        """Every day (training, then holdout) of the window that ends on `end_date`."""
        train, holdout = window_dates(end_date, self.train_days, self.holdout_days)
        return train + holdout

    def missing_days(self, end_date: str, available) -> list[str]:
        """Days of the window ending on `end_date` that are not in `available`: a retrain on
        it would fail until they are materialized."""
        return [day for day in self.window(end_date) if day not in available]

    def run_config(
        self, asset_names: list[str], end_date: str | None = None, window_asset: str = ""
    ) -> dict:
        """The run config of an automated run of these assets; a retrain's window ends on
        `end_date`, which the sensor checked is complete, and `window_asset` takes it."""
        base = load_run_config(self.run_config_file) if self.run_config_file else {}
        config = config_for(base, asset_names)
        if end_date is not None and window_asset in asset_names:
            ops = dict(config.get("ops") or {})
            window = dict(ops.get(window_asset) or {})
            window["config"] = {
                **(window.get("config") or {}),
                "end_date": end_date,
                "train_days": self.train_days,
                "holdout_days": self.holdout_days,
            }
            ops[window_asset] = window
            config = {**config, "ops": ops}
        return config
