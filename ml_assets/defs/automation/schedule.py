"""Schedule `daily_retrain`: the floor under the sensors. Every morning it ingests yesterday and
retrains on the window ending with it, whether or not a sensor fired; with the synthetic source
it is what brings new days at all. A day the sensor has a run for is skipped
(`one_run_per_day`). Stopped by default: turn it on in the UI (Automation) or with
`dagster schedule start daily_retrain`."""

import datetime as dt

import dagster as dg

from ml_assets.defs.ads_ranking.jobs import (
    DAILY_ASSETS,
    WINDOW_ASSETS,
    asset_names,
    ingest_and_retrain_job,
)
from ml_assets.defs.automation.one_run_per_day import sensor_run_covering
from ml_assets.defs.automation.settings import TRIGGER_TAG, AutomationSettings


@dg.schedule(
    name="daily_retrain",
    job=ingest_and_retrain_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="06:00 UTC: ingest yesterday, retrain on the window ending with it, publish.",
)
def daily_retrain(context: dg.ScheduleEvaluationContext, automation: AutomationSettings):
    yesterday = (context.scheduled_execution_time.date() - dt.timedelta(days=1)).isoformat()
    taken = sensor_run_covering(context.instance, yesterday)
    if taken is not None:
        return dg.SkipReason(
            f"{yesterday} is in run {taken.run_id} of the new_impressions sensor, which ingests "
            "it and retrains on its window"
        )
    return dg.RunRequest(
        run_key=f"daily:{yesterday}",
        partition_key=yesterday,
        run_config=automation.run_config(asset_names([*DAILY_ASSETS, *WINDOW_ASSETS]), yesterday),
        tags={TRIGGER_TAG: "schedule"},
    )
