"""retrieval_evaluation: the model's top K on the held-out days against popularity (and against
each request's true top K where the source knows it), with a blocking check."""

import dagster as dg
from pydantic import Field

from ml_assets.defs.resources import StorageResource, write_parquet_atomically
from ml_assets.defs.retrieval import GROUP, OWNERS
from ml_assets.defs.retrieval.ingest import RequestSource, ad_requests, requests_file


class RetrievalEvaluationConfig(dg.Config):
    resamples: int = Field(ge=10, default=500, description="Paired bootstrap resamples.")


@dg.asset(
    deps=[ad_requests],
    group_name=GROUP,
    owners=OWNERS,
    code_version="1",
    kinds={"pytorch"},
    description="Hit rate@K (the engaged ad among the K retrieved) of the model and of the "
    "popularity baseline on the held-out requests, paired; with a synthetic source also "
    "recall@K and NDCG@K against each request's true top K.",
)
def retrieval_evaluation(
    context: dg.AssetExecutionContext,
    config: RetrievalEvaluationConfig,
    retrieval_model: dict,
    retrieval_source: RequestSource,
    storage: StorageResource,
) -> dg.MaterializeResult:
    import numpy as np
    import polars as pl

    from ml_assets.promotion import paired_bootstrap
    from ml_assets.retrieval.evaluation import KnownTruth
    from ml_assets.retrieval.metrics import gap_closed, popularity_top_k
    from ml_assets.retrieval.serving import LoadedRetrievalModel
    from ml_assets.retrieval.world import USER_COLUMNS, top_k
    from ml_assets.storage import read_parquet

    k = retrieval_model["k"]
    loaded = LoadedRetrievalModel.load(storage.path(retrieval_model["model_dir"]))
    holdout = pl.concat(
        [read_parquet(requests_file(storage, d)) for d in retrieval_model["holdout_dates"]]
    )
    training_ads = np.concatenate([
        read_parquet(requests_file(storage, d)).get_column("ad_id").to_numpy()
        for d in retrieval_model["train_dates"]
    ])  # fmt: skip
    users = holdout.select(USER_COLUMNS).to_numpy()
    engaged = holdout.get_column("ad_id").to_numpy()
    popular = popularity_top_k(training_ads, len(loaded.ad_ids), k)
    scores = loaded.scores(users)  # (requests, ads), for the hits and for the truth's metrics
    retrieved = loaded.ad_ids[top_k(scores, k)]
    model_hits = (retrieved == engaged[:, None]).any(axis=1).astype(np.float64)
    popularity_hits = np.isin(engaged, loaded.ad_ids[popular]).astype(np.float64)
    change = paired_bootstrap(model_hits, popularity_hits, resamples=config.resamples)
    figures = {
        "model_hit_rate": float(model_hits.mean()),
        "popularity_hit_rate": float(popularity_hits.mean()),
        "hit_rate_vs_popularity": change.point,
        "hit_rate_vs_popularity_ci_low": change.low,
        "hit_rate_vs_popularity_ci_high": change.high,
    }
    world = retrieval_source.world()  # the synthetic source knows each request's true top K
    truth = KnownTruth.of(world, users[:, 0], k)
    mine = truth.judge_scores(scores).means()
    baseline = truth.judge_popularity(training_ads).means()
    figures |= {
        "model_recall": mine["recall"],
        "popularity_recall": baseline["recall"],
        "recall_gap_closed": gap_closed(mine["recall"], baseline["recall"]),
        "model_ndcg": mine["ndcg"],
        "popularity_ndcg": baseline["ndcg"],
    }
    hits_file = storage.run_dir("retrieval_evaluation", context.run_id) / "hits.parquet"
    write_parquet_atomically(pl.DataFrame({"hit": model_hits}), hits_file)
    context.log.info(
        f"hit rate@{k} {figures['model_hit_rate']:.4f} vs popularity "
        f"{figures['popularity_hit_rate']:.4f} ({change.point:+.1%}, 95% CI {change.low:+.1%}.."
        f"{change.high:+.1%}); recall@{k} {mine['recall']:.3f} vs {baseline['recall']:.3f}"
    )
    return dg.MaterializeResult(
        value={
            **figures,
            "k": k,
            "requests": len(engaged),
            "hits": str(hits_file),
            "holdout_dates": retrieval_model["holdout_dates"],
            "train_dates": retrieval_model["train_dates"],
        },  # fmt: skip
        metadata={
            **{name: dg.MetadataValue.float(v) for name, v in figures.items()},
            "dagster/row_count": len(engaged),
        },  # fmt: skip
    )


@dg.asset_check(
    asset=retrieval_evaluation,
    blocking=True,
    description="The model retrieves the engaged ad more often than popularity does, with the "
    "paired bootstrap's 95% interval above zero.",
)
def beats_popularity(retrieval_evaluation: dict) -> dg.AssetCheckResult:
    low = retrieval_evaluation["hit_rate_vs_popularity_ci_low"]
    point = retrieval_evaluation["hit_rate_vs_popularity"]
    return dg.AssetCheckResult(
        passed=bool(low > 0),
        description=f"hit rate {point:+.1%} against popularity, 95% CI low {low:+.1%}",
        metadata={"relative_change": point, "ci_low": low},
    )
