"""A pipeline as its automation sees it: the assets it materializes per day, the ones that make
a model from a window of days (the first of them takes the window as config), and the three
jobs over them. The sensors and the schedule (new_data, drift, schedule) are built from it, so
a second pipeline gets the same automation by describing itself, without naming ops."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:  # what define_asset_job returns; dagster does not export the name
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

TRIGGER_TAG = "ml-assets/trigger"
PIPELINE_TAG = "ml-assets/pipeline"


@dataclass(frozen=True)
class Retraining:
    pipeline: str  # tagged on its automated runs, so pipelines never take each other's runs
    daily_assets: tuple[dg.AssetsDefinition, ...]  # ingested and featurized per day
    window_assets: tuple[dg.AssetsDefinition, ...]  # the window's model, trained to published
    daily_job: "UnresolvedAssetJobDefinition"
    train_job: "UnresolvedAssetJobDefinition"
    combined_job: "UnresolvedAssetJobDefinition"

    @property
    def ready_day_asset(self) -> dg.AssetsDefinition:
        """A day is there for training once the last daily asset has its partition."""
        return self.daily_assets[-1]

    @property
    def window_op(self) -> str:
        """The first window asset's op, which takes the window as config (end_date, train_days,
        holdout_days)."""
        return self.window_assets[0].op.name

    def names(self, *, daily: bool = False, window: bool = False) -> list[str]:
        chosen = [*(self.daily_assets if daily else ()), *(self.window_assets if window else ())]
        return [asset.key.to_user_string() for asset in chosen]

    def tags(self, trigger: str) -> dict[str, str]:
        return {TRIGGER_TAG: trigger, PIPELINE_TAG: self.pipeline}


def retraining(
    pipeline: str,
    *,
    daily_assets: Sequence[dg.AssetsDefinition],
    window_assets: Sequence[dg.AssetsDefinition],
    partitions_def: dg.PartitionsDefinition,
    job_prefix: str = "",
) -> Retraining:
    """The pipeline's automation description and its three jobs: `<prefix>daily_features`
    (partitioned), `<prefix>train_and_publish` (one window) and `<prefix>ingest_and_retrain`
    (days in, then the window ending with them, in one run)."""
    daily = dg.AssetSelection.assets(*daily_assets)
    window = dg.AssetSelection.assets(*window_assets)
    return Retraining(
        pipeline=pipeline,
        daily_assets=tuple(daily_assets),
        window_assets=tuple(window_assets),
        daily_job=dg.define_asset_job(
            f"{job_prefix}daily_features",
            selection=daily,
            partitions_def=partitions_def,
            description="Ingest and featurize daily partitions (one run per day, or a range).",
        ),
        train_job=dg.define_asset_job(
            f"{job_prefix}train_and_publish",
            # includes the blocking checks on the window's assets, which gate publishing
            selection=window,
            description="Train, evaluate and publish for one training window.",
        ),
        combined_job=dg.define_asset_job(
            f"{job_prefix}ingest_and_retrain",
            selection=daily | window,
            partitions_def=partitions_def,
            description="New days in, new model out: ingest and featurize a day (or a range of "
            "days), then retrain on the window ending with them, evaluate and publish, in one run.",
        ),
    )
