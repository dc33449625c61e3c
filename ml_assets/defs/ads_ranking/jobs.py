"""The ads ranking pipeline as its automation sees it (`retraining`), and its three jobs: daily
features (partitioned), train-to-publish (per window), and both in one run for automated
retraining on new days."""

from ml_assets.defs.ads_ranking.evaluation.assets import model_evaluation
from ml_assets.defs.ads_ranking.features.assets import ad_features, feature_vocabulary
from ml_assets.defs.ads_ranking.ingest.assets import raw_impressions
from ml_assets.defs.ads_ranking.publish.assets import published_model
from ml_assets.defs.ads_ranking.training.assets import ranking_model
from ml_assets.defs.automation.retraining import retraining
from ml_assets.defs.partitions import daily_partitions

ADS_RANKING = retraining(
    "ads_ranking",
    daily_assets=[raw_impressions, ad_features],
    # feature_vocabulary, first, takes the window as config
    window_assets=[feature_vocabulary, ranking_model, model_evaluation, published_model],
    partitions_def=daily_partitions,
)
daily_features_job = ADS_RANKING.daily_job
train_and_publish_job = ADS_RANKING.train_job
ingest_and_retrain_job = ADS_RANKING.combined_job
