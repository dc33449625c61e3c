"""Everything the ads ranking pipeline adds to the code location."""

import dagster as dg

from ml_assets.defs.ads_ranking.automation import daily_retrain, feature_drift, new_impressions
from ml_assets.defs.ads_ranking.evaluation.assets import (
    beats_base_rate,
    calibrated,
    calibrated_per_slice,
    model_evaluation,
    no_leakage,
)
from ml_assets.defs.ads_ranking.features.assets import ad_features, feature_vocabulary
from ml_assets.defs.ads_ranking.ingest.assets import raw_impressions
from ml_assets.defs.ads_ranking.jobs import (
    daily_features_job,
    ingest_and_retrain_job,
    train_and_publish_job,
)
from ml_assets.defs.ads_ranking.publish.assets import published_model
from ml_assets.defs.ads_ranking.training.assets import ranking_model


def ads_ranking_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            raw_impressions,
            ad_features,
            feature_vocabulary,
            ranking_model,
            model_evaluation,
            published_model,
        ],
        asset_checks=[beats_base_rate, calibrated, calibrated_per_slice, no_leakage],
        jobs=[daily_features_job, train_and_publish_job, ingest_and_retrain_job],
        schedules=[daily_retrain],
        sensors=[new_impressions, feature_drift],
    )
