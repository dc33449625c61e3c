"""ad_features (per day) and feature_vocabulary (per training window)."""

import time

import dagster as dg
from pydantic import Field

from ml_assets.defs.ads_ranking import GROUP, OWNERS
from ml_assets.defs.ads_ranking.ingest.assets import IMPRESSIONS_FILE, raw_impressions
from ml_assets.defs.metadata import table
from ml_assets.defs.partitions import PER_DAY, daily_partitions
from ml_assets.defs.resources import ImpressionSource, StorageResource, write_parquet_atomically
from ml_assets.defs.training_step import window_end
from ml_assets.defs.window import require_partition_files, window_dates

FEATURES_FILE = "features.parquet"
VOCABULARY_FILE = "vocabulary.json"


# How missing days of the window get materialized, for require_partition_files' message.
MATERIALIZE_DAYS = (
    "`ml-assets run --from {first} --to {last}` runs raw_impressions and ad_features for them, "
    "or a backfill in the UI"
)


def features_file(storage: StorageResource, date: str):
    return storage.partition_dir("ad_features", date) / FEATURES_FILE


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=PER_DAY,
    deps=[raw_impressions],
    group_name=GROUP,
    owners=OWNERS,
    code_version="1",
    kinds={"polars", "parquet"},
    description=(
        "Model-ready features per day (polars): log1p of non-negative dense counts, nulls kept "
        "(encoding turns them into missing flags), categorical nulls as an explicit missing "
        "token. Re-materializing a day overwrites it atomically."
    ),
)
def ad_features(
    context: dg.AssetExecutionContext, source: ImpressionSource, storage: StorageResource
) -> dg.MaterializeResult:
    from ml_assets.errors import DataValidationError
    from ml_assets.ranking.features import transform
    from ml_assets.storage import read_parquet

    schema = source.feature_schema
    rows = 0
    started = time.perf_counter()
    for date in context.partition_keys:
        raw_file = storage.partition_dir("raw_impressions", date) / IMPRESSIONS_FILE
        if not raw_file.exists():
            raise DataValidationError(
                partition=date,
                column=None,
                problem=f"raw_impressions has no data for this day ({raw_file} is missing)",
                fix=f"materialize raw_impressions for {date} first",
            )
        raw = read_parquet(raw_file).lazy()
        present = raw.collect_schema().names()
        missing = [c for c in schema.columns if c not in present]
        if missing:
            raise DataValidationError(
                partition=date,
                column=missing[0],
                problem=f"raw_impressions lacks {', '.join(missing[:8])} of the source schema",
                fix=f"the source config changed since {date} was ingested: re-materialize "
                "raw_impressions for that day",
            )
        features = transform(raw, schema)
        write_parquet_atomically(features, features_file(storage, date))
        rows += features.height
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "rows_per_second": round(rows / seconds) if seconds else 0,
            "seconds": round(seconds, 2),
            "path": dg.MetadataValue.path(str(features_file(storage, context.partition_keys[-1]))),
        }
    )


class VocabularyConfig(dg.Config):
    end_date: str = Field(
        default="",
        description="Last holdout day, YYYY-MM-DD. Empty: in a backfill, the backfill's last "
        "day; otherwise the latest day with ad_features.",
    )
    train_days: int = Field(
        ge=1, default=7, description="Days of training data before the holdout."
    )
    holdout_days: int = Field(ge=1, default=1, description="Days after training held out for eval.")
    min_count: int = Field(
        ge=1,
        default=10,
        description="A categorical value needs this many rows to get its own id; rarer ones "
        "share the out-of-vocabulary id (fewer rare ids, less overfitting).",
    )
    max_size: int = Field(ge=1, default=100_000, description="At most this many ids per feature.")


@dg.asset(
    deps=[ad_features],
    group_name=GROUP,
    owners=OWNERS,
    code_version="1",
    kinds={"polars"},
    description=(
        "Per-feature vocabularies (values seen at least min_count times) and dense statistics "
        "over the training window, plus the window itself: which days train and which later "
        "days are held out. Cached on its own so training never refits it."
    ),
)
def feature_vocabulary(
    context: dg.AssetExecutionContext,
    config: VocabularyConfig,
    source: ImpressionSource,
    storage: StorageResource,
) -> dg.MaterializeResult:
    from ml_assets.ranking.vocabulary import fit_vocabulary

    end_date = config.end_date or window_end(context, ad_features.key)
    train_dates, holdout_dates = window_dates(end_date, config.train_days, config.holdout_days)
    files = {d: features_file(storage, d) for d in train_dates + holdout_dates}
    require_partition_files(files, "ad_features", MATERIALIZE_DAYS)
    started = time.perf_counter()
    vocabulary = fit_vocabulary(
        [files[d] for d in train_dates],
        source.feature_schema,
        train_dates=train_dates,
        holdout_dates=holdout_dates,
        min_count=config.min_count,
        max_size=config.max_size,
    )
    path = storage.run_dir("feature_vocabulary", context.run_id) / VOCABULARY_FILE
    vocabulary.save(path)
    sizes = [
        {"feature": f, "ids": len(v), "row_coverage": vocabulary.coverage[f]}
        for f, v in vocabulary.values.items()
    ]
    return dg.MaterializeResult(
        value=str(path),
        metadata={
            "train_dates": f"{train_dates[0]}..{train_dates[-1]}",
            "holdout_dates": f"{holdout_dates[0]}..{holdout_dates[-1]}",
            "dagster/row_count": vocabulary.rows,
            "total_ids": sum(len(v) for v in vocabulary.values.values()),
            "vocabulary_sizes": table(sizes, ["feature", "ids", "row_coverage"]),
            "seconds": round(time.perf_counter() - started, 2),
            "path": dg.MetadataValue.path(str(path)),
        },
    )
