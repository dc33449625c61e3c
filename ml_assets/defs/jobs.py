"""Jobs over the asset graph: daily features (partitioned) and train-to-publish (per window)."""

import dagster as dg

from ml_assets.defs.evaluation.assets import model_evaluation
from ml_assets.defs.features.assets import ad_features, feature_vocabulary
from ml_assets.defs.ingest.assets import raw_impressions
from ml_assets.defs.partitions import daily_partitions
from ml_assets.defs.publish.assets import published_model
from ml_assets.defs.training.assets import ranking_model

daily_features_job = dg.define_asset_job(
    "daily_features",
    selection=dg.AssetSelection.assets(raw_impressions, ad_features),
    partitions_def=daily_partitions,
    description="Ingest and featurize daily partitions (one run per day, or a range).",
)

train_and_publish_job = dg.define_asset_job(
    "train_and_publish",
    selection=dg.AssetSelection.assets(
        feature_vocabulary, ranking_model, model_evaluation, published_model
    ),  # includes the blocking checks on model_evaluation, which gate publishing
    description="Fit the vocabulary, train, evaluate and publish for one training window.",
)
