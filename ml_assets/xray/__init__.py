"""X-Ray: what happened on a Ray cluster, kept after the cluster is gone (no Dagster imports)."""
