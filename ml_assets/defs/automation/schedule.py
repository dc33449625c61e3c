"""The retrain schedule (the ads pipeline's `daily_retrain`): the floor under the sensors. Every
morning it ingests yesterday and retrains on the window ending with it, whether or not a sensor
fired; with the synthetic source it is what brings new days at all. A day the new-data sensor
has a run for is skipped (`one_run_per_day`). Stopped by default: turn it on in the UI
(Automation) or with `dagster schedule start <name>`."""

import datetime as dt

import dagster as dg

from ml_assets.defs.automation.one_run_per_day import sensor_run_covering
from ml_assets.defs.automation.retraining import Retraining
from ml_assets.defs.automation.settings import AutomationSettings


def retrain_schedule(retraining: Retraining, *, name: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=retraining.combined_job,
        cron_schedule="0 6 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="06:00 UTC: ingest yesterday, retrain on the window ending with it, publish.",
    )
    def schedule(context: dg.ScheduleEvaluationContext, automation: AutomationSettings):
        yesterday = (context.scheduled_execution_time.date() - dt.timedelta(days=1)).isoformat()
        taken = sensor_run_covering(context.instance, retraining.pipeline, yesterday)
        if taken is not None:
            return dg.SkipReason(
                f"{yesterday} is in run {taken.run_id} of the pipeline's new-data sensor, which "
                "ingests it and retrains on its window"
            )
        assets = retraining.names(daily=True, window=True)
        return dg.RunRequest(
            run_key=f"daily:{yesterday}",
            partition_key=yesterday,
            run_config=automation.run_config(assets, yesterday, retraining.window_op),
            tags=retraining.tags("schedule"),
        )

    return schedule
