"""Everything the retrieval pipeline adds to the code location: its assets, check, jobs,
schedule and request source, from the platform's factories."""

import dagster as dg

from ml_assets.defs.automation.retraining import retraining
from ml_assets.defs.automation.schedule import retrain_schedule
from ml_assets.defs.partitions import daily_partitions
from ml_assets.defs.retrieval.evaluation import beats_popularity, retrieval_evaluation
from ml_assets.defs.retrieval.ingest import RequestSource, ad_requests
from ml_assets.defs.retrieval.publish import published_retrieval_model
from ml_assets.defs.retrieval.training import retrieval_model

RETRIEVAL = retraining(
    "retrieval",
    daily_assets=[ad_requests],
    # retrieval_model, first, takes the window as config
    window_assets=[retrieval_model, retrieval_evaluation, published_retrieval_model],
    partitions_def=daily_partitions,
    job_prefix="retrieval_",
)
retrieval_daily_retrain = retrain_schedule(RETRIEVAL, name="retrieval_daily_retrain")
RESOURCES = {"retrieval_source": RequestSource()}


def retrieval_definitions() -> dg.Definitions:
    # No new-data or drift sensor: both read a file source of impressions (the `source`
    # resource); the request source is synthetic, and the schedule brings its new days.
    return dg.Definitions(
        assets=[ad_requests, retrieval_model, retrieval_evaluation, published_retrieval_model],
        asset_checks=[beats_popularity],
        jobs=[RETRIEVAL.daily_job, RETRIEVAL.train_job, RETRIEVAL.combined_job],
        schedules=[retrieval_daily_retrain],
    )
