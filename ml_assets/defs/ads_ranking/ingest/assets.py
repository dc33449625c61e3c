"""raw_impressions: one day of ad impressions, ingested from the configured source and validated."""

import time

import dagster as dg

from ml_assets.defs.ads_ranking import GROUP, OWNERS
from ml_assets.defs.partitions import PER_DAY, daily_partitions
from ml_assets.defs.resources import ImpressionSource, StorageResource, write_parquet_atomically

IMPRESSIONS_FILE = "impressions.parquet"
TRUTH_FILE = "truth.parquet"  # synthetic only: the true click probability, never a feature


def read_raw_days(storage: StorageResource, days: list[str]):
    """The raw impressions of these days, in day order, as one polars frame."""
    import polars as pl

    from ml_assets.storage import read_parquet

    folder = "raw_impressions"
    return pl.concat(
        [read_parquet(storage.partition_dir(folder, d) / IMPRESSIONS_FILE) for d in days]
    )


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=PER_DAY,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"polars", "parquet"},
    description=(
        "Daily ad impressions (click label, dense counts, categorical ids) from the configured "
        "source: the synthetic generator with a known ground truth, or Parquet/CSV/Criteo TSV "
        "files per day. Validated at ingest: missing files, missing columns, empty days and "
        "non-0/1 labels fail here, before anything downstream runs."
    ),
)
def raw_impressions(
    context: dg.AssetExecutionContext, source: ImpressionSource, storage: StorageResource
) -> dg.MaterializeResult:
    import polars as pl

    rows = clicks = 0
    started = time.perf_counter()
    for date in context.partition_keys:
        frame, truth = source.read_day(date)
        directory = storage.partition_dir("raw_impressions", date)
        write_parquet_atomically(frame, directory / IMPRESSIONS_FILE)
        if truth is not None:
            write_parquet_atomically(pl.DataFrame([truth]), directory / TRUTH_FILE)
        elif (directory / TRUTH_FILE).exists():
            (directory / TRUTH_FILE).unlink()  # a stale truth file would mislabel real data
        rows += frame.height
        clicks += int(frame.get_column(source.feature_schema.label).sum())
        context.log.info(f"{date}: {frame.height:,} impressions ingested from {source.kind}")
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "ctr": clicks / rows,
            "source": source.kind,
            "path": dg.MetadataValue.path(
                str(storage.partition_dir("raw_impressions", context.partition_keys[-1]))
            ),
            "seconds": round(seconds, 2),
        }
    )
