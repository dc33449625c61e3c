"""Everything the retrieval pipeline adds to the code location: its assets, check, jobs,
schedule, drift sensor and request source, from the platform's factories."""

import dagster as dg

from ml_assets.defs.automation.drift import drift_sensor
from ml_assets.defs.automation.retraining import retraining
from ml_assets.defs.automation.schedule import retrain_schedule
from ml_assets.defs.partitions import daily_partitions
from ml_assets.defs.retrieval.evaluation import beats_popularity, retrieval_evaluation
from ml_assets.defs.retrieval.ingest import RequestSource, ad_requests, requests_file
from ml_assets.defs.retrieval.publish import published_retrieval_model
from ml_assets.defs.retrieval.training import retrieval_model
from ml_assets.drift import DriftColumns
from ml_assets.retrieval.world import AD_COLUMNS, USER_COLUMNS

RETRIEVAL = retraining(
    "retrieval",
    daily_assets=[ad_requests],
    # retrieval_model, first, takes the window as config
    window_assets=[retrieval_model, retrieval_evaluation, published_retrieval_model],
    partitions_def=daily_partitions,
    job_prefix="retrieval_",
)
retrieval_daily_retrain = retrain_schedule(RETRIEVAL, name="retrieval_daily_retrain")
# Who asks and what they engage with: a new audience or a shifted catalog moves these.
REQUEST_COLUMNS = DriftColumns(categorical=(*USER_COLUMNS, *AD_COLUMNS))
request_drift = drift_sensor(
    RETRIEVAL,
    name="request_drift",
    day_file=requests_file,
    source_key="retrieval_source",
    columns=lambda source: REQUEST_COLUMNS,
)
RESOURCES = {"retrieval_source": RequestSource()}


def retrieval_definitions() -> dg.Definitions:
    # No new-data sensor: it watches a file source's landing folder, and the request source is
    # synthetic; the schedule brings its new days.
    return dg.Definitions(
        assets=[ad_requests, retrieval_model, retrieval_evaluation, published_retrieval_model],
        asset_checks=[beats_popularity],
        jobs=[RETRIEVAL.daily_job, RETRIEVAL.train_job, RETRIEVAL.combined_job],
        schedules=[retrieval_daily_retrain],
        sensors=[request_drift],
    )
