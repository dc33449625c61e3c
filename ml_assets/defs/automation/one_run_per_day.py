"""One run per day between the `new_impressions` sensor and the `daily_retrain` schedule.

Both ingest a day and retrain on the window ending with it. Dagster's run keys deduplicate only
within one sensor or one schedule, so each looks for the other's run of the day first, and the
first to fire wins:
- the schedule skips a day that a sensor run covers, unless that run failed or was canceled;
- the sensor takes a file as handled when a schedule run of its day, not failed, was created
  after the file last changed (so that run read this file); a file re-delivered later is new
  data and gets its run.

Each looks at the instance when it is evaluated. A file that settles in the same few seconds
as the schedule fires can still get both runs: the second re-ingests the same bytes and its
challenger is gated against the first's, which costs a training run and loses nothing.
"""

import datetime as dt

import dagster as dg

from ml_assets.defs.automation.retraining import PIPELINE_TAG, TRIGGER_TAG

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"
FAILED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _end_of(day: str) -> dt.datetime:
    """Runs for a day start after it ends: the sensor waits for the day to be over."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC) + dt.timedelta(1)


def sensor_run_covering(instance, pipeline: str, day: str) -> dg.DagsterRun | None:
    """The pipeline's sensor run whose days include `day`, unless it failed or was canceled."""
    tags = {TRIGGER_TAG: "new-data", PIPELINE_TAG: pipeline}
    runs = instance.get_runs(filters=dg.RunsFilter(tags=tags, created_after=_end_of(day)))
    return next(
        (
            run
            for run in runs
            if run.status not in FAILED
            and run.tags.get(RANGE_START_TAG, "~") <= day <= run.tags.get(RANGE_END_TAG, "")
        ),
        None,
    )


def schedule_run_since(instance, pipeline: str, day: str, changed: float) -> dg.DagsterRun | None:
    """The pipeline's schedule run of `day` created after `changed` (seconds since the epoch),
    unless it failed or was canceled."""
    after = max(_end_of(day), dt.datetime.fromtimestamp(changed, dt.UTC))
    tags = {TRIGGER_TAG: "schedule", PIPELINE_TAG: pipeline, PARTITION_TAG: day}
    runs = instance.get_runs(filters=dg.RunsFilter(tags=tags, created_after=after))
    return next((run for run in runs if run.status not in FAILED), None)
