"""ad_requests: one day of ad requests, each with the ad its user engaged with."""

import dataclasses
import hashlib
import json
from pathlib import Path

import dagster as dg
from pydantic import Field

from ml_assets.defs.partitions import PER_DAY, daily_partitions
from ml_assets.defs.resources import StorageResource, write_parquet_atomically
from ml_assets.defs.retrieval import GROUP, OWNERS

REQUESTS_FILE = "requests.parquet"


class RequestSource(dg.ConfigurableResource):
    """Where ad requests come from: a synthetic world of users and ads with a known affinity
    (ml_assets.retrieval.world), so retrieval quality has a known ceiling."""

    seed: int = Field(default=11, description="Seed of the world; each day's draws add its date.")
    users: int = Field(ge=2, default=5_000, description="Users in the world.")
    ads: int = Field(ge=2, default=1_000, description="Ads in the catalog.")
    rows_per_day: int = Field(ge=1, default=50_000, description="Requests per day.")

    def world(self):
        from ml_assets.retrieval.world import RetrievalSpec, RetrievalWorld

        return RetrievalWorld(RetrievalSpec(seed=self.seed, users=self.users, ads=self.ads))


def catalog_file(storage: StorageResource, source: RequestSource) -> Path:
    """The source's ad catalog (id, category, advertiser) as a file that a Ray driver on any
    pod reads. A world's catalog never changes, so each world's is written once, named by it."""
    import polars as pl

    from ml_assets.retrieval.world import AD_COLUMNS

    world = source.world()
    spec = json.dumps(dataclasses.asdict(world.spec), sort_keys=True)
    path = storage.root / "ad_catalog" / f"{hashlib.sha256(spec.encode()).hexdigest()[:16]}.parquet"
    if not path.exists():
        columns = dict(zip(AD_COLUMNS, world.catalog.T, strict=True))
        write_parquet_atomically(pl.DataFrame(columns), path)
    return path


def requests_file(storage: StorageResource, day: str) -> Path:
    return storage.partition_dir("ad_requests", day) / REQUESTS_FILE


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=PER_DAY,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"polars", "parquet"},
    description="Daily ad requests (user id, segment, region) with the ad each engaged with "
    "(ad id, category, advertiser), from the request source.",
)
def ad_requests(
    context: dg.AssetExecutionContext, retrieval_source: RequestSource, storage: StorageResource
) -> dg.MaterializeResult:
    world = retrieval_source.world()
    rows = 0
    for date in context.partition_keys:
        frame = world.requests(date, retrieval_source.rows_per_day)
        write_parquet_atomically(frame, requests_file(storage, date))
        rows += frame.height
        context.log.info(f"{date}: {frame.height:,} requests")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "path": dg.MetadataValue.path(
                str(storage.partition_dir("ad_requests", context.partition_keys[-1]))
            ),
        }
    )
