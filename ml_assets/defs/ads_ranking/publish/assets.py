"""published_model: MLflow Model Registry versions with champion/challenger aliases."""

import hashlib

import dagster as dg
from pydantic import Field

from ml_assets.defs.ads_ranking import GROUP, OWNERS, REGISTERED_MODEL
from ml_assets.defs.ads_ranking.ingest.assets import raw_impressions, read_raw_days
from ml_assets.defs.publish_step import publication_result
from ml_assets.defs.resources import MlflowResource, StorageResource, write_parquet_atomically
from ml_assets.model_registry import CHALLENGER, register_challenger, settle


class PromotionConfig(dg.Config):
    registered_model_name: str = Field(
        default=REGISTERED_MODEL, description="MLflow Model Registry name to publish to."
    )
    min_relative_ne_gain: float = Field(
        ge=0,
        default=0.001,
        description="Challenger NE must beat the champion's by this (relative).",
    )
    max_auc_drop: float = Field(ge=0, default=0.0005, description="Largest tolerated AUC decrease.")
    calibration_low: float = Field(gt=0, default=0.95, description="Lowest overall calibration.")
    calibration_high: float = Field(gt=0, default=1.05, description="Highest overall calibration.")
    bootstrap_resamples: int = Field(
        ge=1, default=200, description="Paired bootstrap resamples for the NE interval."
    )


@dg.asset(
    # the holdout's raw rows, when evaluation did not keep them, to score the champion on
    deps=[raw_impressions],
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow"},
    # One champion move at a time across all runs (the instance's pool limit is 1); the
    # re-read before the alias moves covers instances configured otherwise.
    pool="model_registry",
    description=(
        "Registers the evaluated model as a new version with alias `challenger`; moves "
        "`champion` to it only when it beats the current champion on the same holdout (paired "
        "bootstrap on NE, AUC and calibration limits), its training window is not older than "
        "the champion's, and no other run moved `champion` meanwhile. Roll back with "
        "`ml-assets models rollback`."
    ),
)
def published_model(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    model_evaluation: dict,
    ranking_model: dict,
    storage: StorageResource,
    mlflow_tracking: MlflowResource,
) -> dg.MaterializeResult:
    from ml_assets.ranking.gate import GatePolicy, decide_promotion, serving_skew
    from ml_assets.ranking.serving import predict_with_their_own_code
    from ml_assets.storage import local_file, read_parquet

    client = mlflow_tracking.client()
    name = config.registered_model_name
    train_end = max(model_evaluation["train_dates"])
    tags = {"dagster.run_id": context.run_id, "train_dates": str(model_evaluation["train_dates"])}
    version, champion = register_challenger(
        client, name, ranking_model["model_uri"], train_end=train_end, tags=tags
    )
    context.log.info(f"registered {name} version {version} as {CHALLENGER}")

    predictions = read_parquet(storage.path(model_evaluation["predictions"]))
    labels = predictions.get_column("label").to_numpy()
    probabilities = predictions.get_column("probability").to_numpy()
    # One frame of holdout rows for everything scored here; its hash is recorded.
    holdout_raw = model_evaluation.get("holdout_raw")
    if holdout_raw is None:  # an evaluation from before the rows were kept with it
        holdout_raw = storage.run_dir("published_model", context.run_id) / "holdout_raw.parquet"
        write_parquet_atomically(
            read_raw_days(storage, model_evaluation["holdout_dates"]), holdout_raw
        )
    uri = mlflow_tracking.resolved_tracking_uri
    with local_file(storage.path(holdout_raw)) as rows:
        with rows.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        client.set_model_version_tag(name, version, "gate.holdout_sha256", digest)
        # The logged model, loaded as a server loads it (a fresh interpreter, its own code),
        # must score as the evaluation did: training/serving skew stops a model. The champion
        # is scored on exactly the same rows (a paired comparison), with its own code too.
        uris = [ranking_model["model_uri"]]
        if champion is not None:
            uris.append(f"models:/{name}/{champion}")
        served, *champion_scores = predict_with_their_own_code(uris, rows, uri)
        gap, skew = serving_skew(probabilities, served)
        client.set_model_version_tag(name, version, "gate.serving_max_abs_diff", f"{gap:.3g}")
        champion_probabilities = champion_scores[0] if champion_scores else None
    policy = GatePolicy(**config.model_dump(exclude={"registered_model_name"}))
    decision = decide_promotion(policy, labels, probabilities, champion_probabilities)
    settled = settle(
        client, name, version, champion, decision, train_end=train_end,
        by=f"dagster run {context.run_id}", hold=skew,
    )  # fmt: skip
    return publication_result(
        context, name, settled, decision.figures,
        serving_max_abs_diff=dg.MetadataValue.float(gap),
        mlflow_tracking_uri=mlflow_tracking.resolved_tracking_uri,
    )  # fmt: skip
