"""Jobs over the asset graph: daily features (partitioned), train-to-publish (per window), and
both in one run for automated retraining on new days."""

import dagster as dg

from ml_assets.defs.ads_ranking.evaluation.assets import model_evaluation
from ml_assets.defs.ads_ranking.features.assets import ad_features, feature_vocabulary
from ml_assets.defs.ads_ranking.ingest.assets import raw_impressions
from ml_assets.defs.ads_ranking.publish.assets import published_model
from ml_assets.defs.ads_ranking.training.assets import ranking_model
from ml_assets.defs.partitions import daily_partitions

DAILY_ASSETS = [raw_impressions, ad_features]
WINDOW_ASSETS = [feature_vocabulary, ranking_model, model_evaluation, published_model]


def asset_names(assets) -> list[str]:
    return [a.key.to_user_string() for a in assets]


daily_features_job = dg.define_asset_job(
    "daily_features",
    selection=dg.AssetSelection.assets(*DAILY_ASSETS),
    partitions_def=daily_partitions,
    description="Ingest and featurize daily partitions (one run per day, or a range).",
)

train_and_publish_job = dg.define_asset_job(
    "train_and_publish",
    # includes the blocking checks on model_evaluation, which gate publishing
    selection=dg.AssetSelection.assets(*WINDOW_ASSETS),
    description="Fit the vocabulary, train, evaluate and publish for one training window.",
)

ingest_and_retrain_job = dg.define_asset_job(
    "ingest_and_retrain",
    selection=dg.AssetSelection.assets(*DAILY_ASSETS, *WINDOW_ASSETS),
    partitions_def=daily_partitions,
    description="New days in, new model out: ingest and featurize a day (or a range of days), "
    "then retrain on the window ending with them, evaluate and publish, in one run.",
)
