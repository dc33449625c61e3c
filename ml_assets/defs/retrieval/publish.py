"""published_retrieval_model: the retrieval model's registry versions, champion and challenger,
gated by the platform's paired bootstrap on hit rate@K against the champion."""

import dagster as dg
from pydantic import Field

from ml_assets.defs.publish_step import publication_result
from ml_assets.defs.resources import MlflowResource, StorageResource
from ml_assets.defs.retrieval import GROUP, OWNERS, REGISTERED_MODEL
from ml_assets.defs.retrieval.ingest import requests_file
from ml_assets.model_registry import CHALLENGER, register_challenger, settle


class RetrievalPromotionConfig(dg.Config):
    registered_model_name: str = Field(
        default=REGISTERED_MODEL, description="MLflow Model Registry name to publish to."
    )
    min_relative_gain: float = Field(
        ge=0, default=0.005, description="Hit rate@K must beat the champion's by this (relative)."
    )
    bootstrap_resamples: int = Field(ge=10, default=500, description="Paired resamples.")


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"mlflow"},
    pool="model_registry",
    description="Registers the evaluated retrieval model (its ad embeddings in it) as a new "
    "version with alias `challenger`; moves `champion` to it only when its hit rate@K beats "
    "the champion's on the same held-out requests (paired bootstrap), its window is not older "
    "than the champion's, and no other run moved `champion` meanwhile.",
)
def published_retrieval_model(
    context: dg.AssetExecutionContext,
    config: RetrievalPromotionConfig,
    retrieval_evaluation: dict,
    retrieval_model: dict,
    storage: StorageResource,
    mlflow_tracking: MlflowResource,
) -> dg.MaterializeResult:
    import mlflow
    import numpy as np
    import polars as pl

    from ml_assets.promotion import GateMetric, decide
    from ml_assets.retrieval.world import USER_COLUMNS
    from ml_assets.storage import read_parquet

    client = mlflow_tracking.client()
    name = config.registered_model_name
    train_end = max(retrieval_model["train_dates"])
    version, champion = register_challenger(
        client, name, retrieval_model["model_uri"], train_end=train_end,
        tags={"dagster.run_id": context.run_id},
    )  # fmt: skip
    context.log.info(f"registered {name} version {version} as {CHALLENGER}")
    hits = read_parquet(storage.path(retrieval_evaluation["hits"])).get_column("hit").to_numpy()
    k = retrieval_evaluation["k"]
    figures = {"challenger_hit_rate": float(hits.mean())}
    metric = None
    if champion is not None:
        # The champion retrieves for the same held-out requests, with its own packaged code.
        holdout = pl.concat([read_parquet(requests_file(storage, d))
                             for d in retrieval_evaluation["holdout_dates"]])  # fmt: skip
        scorer = mlflow.pyfunc.load_model(f"models:/{name}/{champion}")
        retrieved = np.asarray(scorer.predict(holdout.select(USER_COLUMNS).to_pandas()))
        engaged = holdout.get_column("ad_id").to_numpy()
        champion_hits = (retrieved == engaged[:, None]).any(axis=1).astype(np.float64)
        figures["champion_hit_rate"] = float(champion_hits.mean())
        metric = GateMetric("hit_rate", f"hit rate@{k}", hits, champion_hits,
                            higher_is_better=True)  # fmt: skip
    decision = decide(metric, min_relative_gain=config.min_relative_gain,
                      resamples=config.bootstrap_resamples, vetoes=[], figures=figures)  # fmt: skip
    settled = settle(client, name, version, champion, decision, train_end=train_end,
                     by=f"dagster run {context.run_id}")  # fmt: skip
    return publication_result(context, name, settled, decision.figures)
