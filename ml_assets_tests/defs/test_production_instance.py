"""The production instance configuration against a real PostgreSQL server (the session's own)."""

import shutil
from pathlib import Path

import dagster as dg

from ml_assets.defs.ads_ranking.ingest.assets import raw_impressions
from ml_assets.defs.resources import ImpressionSource, StorageResource

PRODUCTION_YAML = Path(__file__).resolve().parents[2] / "dagster.production.yaml"


def test_production_instance_stores_runs_in_postgres(postgres_server, postgres_database, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_YAML, home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert concurrency.pool_config.default_pool_limit == 1  # published_model's pool
        result = dg.materialize(
            [raw_impressions],
            partition_key="2026-11-01",
            resources={
                "source": ImpressionSource(rows_per_day=1000),
                "storage": StorageResource(base_path=str(tmp_path / "storage")),
            },
            instance=instance,
        )
        assert result.success
    # The run and its materialization are rows in the Postgres database itself.
    with postgres_server.connect(postgres_database) as db:
        cursor = db.cursor()
        cursor.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchone() == ("SUCCESS",)
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
            (result.run_id, "ASSET_MATERIALIZATION"),
        )
        assert cursor.fetchone() == (1,)


def test_the_local_instance_runs_one_run_and_one_champion_move_at_a_time(tmp_path):
    from ml_assets.defs.ads_ranking.publish.assets import published_model

    shutil.copy(PRODUCTION_YAML.with_name("dagster.yaml"), tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 1
        assert concurrency.pool_config.default_pool_limit == 1
    assert published_model.op.pool == "model_registry"
