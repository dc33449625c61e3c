"""Daily partitions of impressions and features."""

import dagster as dg

# Synthetic data exists for any day; for files, partitions without a file fail with a clear error.
PARTITIONS_START = "2026-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START)
