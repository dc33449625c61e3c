"""Daily partitions of impressions and features, and how backfills split them into runs."""

import dagster as dg

from ml_assets import environment

# Where the data starts ($ML_ASSETS_PARTITIONS_START, default 2026-01-01): synthetic data exists
# for any day; for files, partitions without a file fail with a clear error.
PARTITIONS_START = environment.partitions_start()

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START)

# A backfill runs the daily assets one day per run: a bad day fails alone and is retried alone,
# and days run in parallel up to the run coordinator's limit. The training window assets are not
# partitioned, so a backfill that includes them runs them once, after every day of its range:
# one run and one Ray cluster per backfill, not one per day.
PER_DAY = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
