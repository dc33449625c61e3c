"""The drift sensor (the ads pipeline's `feature_drift`, the retrieval pipeline's
`request_drift`): retrains when the newest days no longer look like the training data.

It compares the newest `drift_days` of the pipeline's daily data after the last training window
(the days no model has trained or been evaluated on) with that window, column by column, with
the population stability index (ml_assets.drift), and requests the pipeline's train job
on the window ending with the newest day when any column's PSI reaches `psi_threshold`. A
sensor, not a declarative condition: the decision needs the data itself, not only asset state.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from ml_assets import environment
from ml_assets.defs.automation.retraining import Retraining
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.resources import StorageResource
from ml_assets.defs.window import days_between
from ml_assets.drift import DriftColumns, feature_drift
from ml_assets.storage import content_version


def _days(span: str) -> tuple[str, str]:
    first, _, last = span.partition("..")
    return first, last or first


def _read(files, columns: list[str], max_rows: int):
    """Every k-th row, about `max_rows` in all, streamed: the sensor runs in the code server,
    which must never hold a whole window (the row count comes from the Parquet footers)."""
    import polars as pl

    from ml_assets.storage import scan_parquet

    scan = scan_parquet(list(files))
    rows = scan.select(pl.len()).collect().item()
    stride = max(1, -(-rows // max_rows))
    return scan.select(columns).gather_every(stride).collect(engine="streaming")


DayFile = Callable[[StorageResource, str], Path]  # a day's features file in storage
Columns = Callable[[Any], DriftColumns]  # the columns to compare, given the source resource


def drift_sensor(
    retraining: Retraining, *, name: str, day_file: DayFile, source_key: str, columns: Columns
) -> dg.SensorDefinition:
    """The pipeline's drift sensor: `day_file` finds a day of its daily data, `columns`
    names the columns to compare, given the pipeline's source resource (`source_key`)."""

    @dg.sensor(
        name=name,
        job=retraining.train_job,
        minimum_interval_seconds=environment.sensor_interval_seconds(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={source_key, "storage", "automation"},
        description="Retrains when a feature of the newest days drifts from the last training "
        "window (population stability index at or above the configured threshold).",
    )
    # Called directly (a test), Dagster also passes the required resources as arguments; the
    # daemon passes only the context. The context has them either way.
    def sensor(context: dg.SensorEvaluationContext, **_also_in_the_context):
        resources = context.resources
        return compare_with_the_window(
            context, retraining, day_file, columns(getattr(resources, source_key)),
            resources.storage, resources.automation,
        )  # fmt: skip

    return sensor


def compare_with_the_window(
    context,
    retraining: Retraining,
    day_file: DayFile,
    compared: DriftColumns,
    storage: StorageResource,
    automation: AutomationSettings,
):
    """One tick: see the module docstring."""
    window_asset = retraining.window_assets[0].key
    daily = retraining.ready_day_asset.key
    event = context.instance.get_latest_materialization_event(window_asset)
    if event is None or event.asset_materialization is None:
        return dg.SkipReason(
            f"no training window yet ({window_asset.to_user_string()} never materialized)"
        )
    metadata = event.asset_materialization.metadata
    train_first, train_last = _days(str(metadata["train_dates"].value))
    _, holdout_last = _days(str(metadata["holdout_dates"].value))
    materialized = context.instance.get_materialized_partitions(daily)
    newer = sorted(day for day in materialized if day > holdout_last)
    if not newer:
        return dg.SkipReason(
            f"no {daily.to_user_string()} days after the last window (ends {holdout_last})"
        )
    recent = newer[-automation.drift_days :]
    files = {day: day_file(storage, day) for day in recent}
    # Re-materializing a day rewrites its file: a new version is new data to look at.
    evaluated = ",".join(f"{d}@{content_version(f)}" for d, f in files.items() if f.exists())
    cursor = f"{event.run_id}|{evaluated}"
    if cursor == context.cursor:
        return dg.SkipReason(f"{', '.join(recent)} already compared with the window")
    columns = [*compared.dense, *compared.categorical]
    reference = _read(
        [day_file(storage, d) for d in days_between(train_first, train_last)],
        columns,
        automation.drift_sample_rows,
    )
    report = feature_drift(
        reference,
        _read(files.values(), columns, automation.drift_sample_rows),
        compared,
        threshold=automation.psi_threshold,
        bins=automation.psi_bins,
    )
    context.log.info(f"{', '.join(recent)} vs {train_first}..{train_last}: {report.summary()}")
    if not report.crossed:
        context.update_cursor(cursor)
        return dg.SkipReason(f"no drift: {report.summary()}")
    end = recent[-1]
    missing = automation.missing_days(end, materialized)
    if missing:
        return dg.SkipReason(
            f"drift ({report.summary()}), but the window ending {end} lacks "
            f"{daily.to_user_string()} for "
            f"{', '.join(missing)}: materialize them and a later tick retrains"
        )  # the cursor stays: the next tick looks again
    context.update_cursor(cursor)
    return dg.RunRequest(
        run_key=f"drift:{cursor}",
        run_config=automation.run_config(retraining.names(window=True), end, retraining.window_op),
        tags={
            **retraining.tags("drift"),
            "ml-assets/psi-max": f"{report.max_psi:.4f}",
            "ml-assets/drifted": ",".join(report.drifted[:5]),
        },
    )
