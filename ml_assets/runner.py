"""Runs the pipeline's jobs against a real Dagster instance (what the CLI and e2e tests drive).

In-process execution records every run, materialization and check in the instance, so the UI
(`dagster dev`) shows what the CLI did.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

FINGERPRINT_TAG = "ml_assets/fingerprint"
REPO_ROOT = Path(__file__).resolve().parents[1]


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME, else a project-local `.dagster_home` with the repo's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    template = REPO_ROOT / "dagster.yaml"
    if not (home / "dagster.yaml").exists() and template.exists():
        shutil.copyfile(template, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


@dataclass
class PipelineRequest:
    """One end-to-end run: the window, the source and the hyperparameters."""

    end_date: str
    train_days: int = 5
    holdout_days: int = 1
    source: dict = field(default_factory=dict)  # ImpressionSource config
    training: dict = field(default_factory=dict)  # TrainingConfig
    evaluation: dict = field(default_factory=dict)  # EvaluationConfig
    promotion: dict = field(default_factory=dict)  # PromotionConfig
    extra_resources: dict = field(default_factory=dict)  # resource key -> config
    log_level: str = "INFO"  # Dagster console log level of the runs

    def dates(self) -> list[str]:
        from ml_assets.defs.window import window_dates

        train, holdout = window_dates(self.end_date, self.train_days, self.holdout_days)
        return train + holdout

    def loggers_config(self) -> dict:
        return {"console": {"config": {"log_level": self.log_level}}}

    def resources_config(self) -> dict:
        config = {k: {"config": v} for k, v in self.extra_resources.items()}
        if self.source:
            config["source"] = {"config": self.source}
        return config

    def training_run_config(self) -> dict:
        from ml_assets.defs.ads_ranking.evaluation.assets import model_evaluation
        from ml_assets.defs.ads_ranking.jobs import ADS_RANKING
        from ml_assets.defs.ads_ranking.publish.assets import published_model
        from ml_assets.defs.ads_ranking.training.assets import ranking_model

        window = {
            "end_date": self.end_date,
            "train_days": self.train_days,
            "holdout_days": self.holdout_days,
        }
        ops = {
            ADS_RANKING.window_op: {"config": window},
            ranking_model.op.name: {"config": self.training},
            model_evaluation.op.name: {"config": self.evaluation},
            published_model.op.name: {"config": self.promotion},
        }
        return {"ops": ops, "resources": self.resources_config(), "loggers": self.loggers_config()}

    def fingerprint(self) -> str:
        payload = json.dumps(
            [
                self.end_date,
                self.train_days,
                self.holdout_days,
                self.source,
                self.training,
                self.evaluation,
                self.promotion,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def materialize_partitions(
    instance: dg.DagsterInstance,
    request: PipelineRequest,
    *,
    force: bool = False,
    on_day: Callable[[str, bool], None] | None = None,
    definitions: dg.Definitions | None = None,
) -> list[str]:
    """raw_impressions + ad_features for every day of the window; returns the days run.

    Days already materialized are skipped unless `force`: re-running is idempotent anyway.
    `definitions` replaces the code location's own (`ml_assets.definitions.defs`).
    """
    from ml_assets.defs.ads_ranking.jobs import ADS_RANKING

    job = (definitions or _code_location()).resolve_job_def(ADS_RANKING.daily_job.name)
    done = set() if force else instance.get_materialized_partitions(ADS_RANKING.ready_day_asset.key)
    ran = []
    for day in request.dates():
        skipped = day in done
        if not skipped:
            result = job.execute_in_process(
                instance=instance,
                partition_key=day,
                run_config={
                    "resources": request.resources_config(),
                    "loggers": request.loggers_config(),
                },
                raise_on_error=True,
            )
            assert result.success
            ran.append(day)
        if on_day is not None:
            on_day(day, skipped)
    return ran


def previous_identical_run(instance: dg.DagsterInstance, request: PipelineRequest):
    from ml_assets.defs.ads_ranking.jobs import ADS_RANKING

    records = instance.get_run_records(
        dg.RunsFilter(
            job_name=ADS_RANKING.train_job.name,
            statuses=[dg.DagsterRunStatus.SUCCESS],
            tags={FINGERPRINT_TAG: request.fingerprint()},
        ),
        limit=1,
    )
    return records[0].dagster_run if records else None


def train_and_publish(
    instance: dg.DagsterInstance,
    request: PipelineRequest,
    *,
    raise_on_error: bool = True,
    definitions: dg.Definitions | None = None,
) -> dg.ExecuteInProcessResult:
    from ml_assets.defs.ads_ranking.jobs import ADS_RANKING

    job = (definitions or _code_location()).resolve_job_def(ADS_RANKING.train_job.name)
    return job.execute_in_process(
        instance=instance,
        run_config=request.training_run_config(),
        tags={FINGERPRINT_TAG: request.fingerprint()},
        raise_on_error=raise_on_error,
    )


def _code_location() -> dg.Definitions:
    from ml_assets.definitions import defs

    return defs


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    """The latest materialization's metadata of an asset, as plain values."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}
