"""A real `dagster-daemon` on the production instance configuration (the test session's own
PostgreSQL server): the new-data sensor launches a run that ingests the landed days and publishes
a champion; a tick without new data launches nothing; a backfill over 3 days runs 3 day runs and
one training run, and a materialization of `ranking_model` alone meanwhile waits for the
instance's one Ray slot (pool `ray_clusters`). Runs execute as the daemon launches them: in
their own processes, with a real embedded Ray for training and the local MLflow store."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import mlflow
import pytest
import yaml
from dagster._core.scheduler.instigation import TickStatus

from ml_assets.ranking.synthetic import SyntheticSpec, generate_day
from ml_assets_tests.conftest import VENV_BIN, step_span, stop_process_group

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAYS = [f"2026-11-{d:02d}" for d in range(1, 9)]  # 7 training days, then the holdout
ROWS_PER_DAY = 5000
RUN_CONFIG = {
    "ops": {
        "ranking_model": {"config": {"epochs": 2, "batch_size": 512}},
        # Mechanics, not quality: 35k rows are allowed a looser calibration gate.
        "published_model": {"config": {"calibration_low": 0.85, "calibration_high": 1.15}},
    }
}
DAEMONS = {"SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR"}


def wait_for(what: str, condition, timeout: float, interval: float = 1.0):
    """Polls `condition` (the daemon works asynchronously) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {timeout:.0f}s")


def land_all(landing: Path, days: list[str]) -> None:
    """Writes the days beside the landing folder, then renames that folder over the empty landing
    folder: one atomic rename, so no sensor tick sees only some of the days (a tick that did would
    rightly ingest them without retraining, as their window is incomplete)."""
    staging = landing.with_name(f"{landing.name}.staging")
    staging.mkdir()
    for date in days:
        frame, _ = generate_day(SyntheticSpec(), date, ROWS_PER_DAY)
        frame.write_parquet(staging / f"{date}.parquet")
    staging.rename(landing)  # rename(2) replaces an empty directory


@pytest.fixture
def daemon(postgres_database, tmp_path, monkeypatch):
    """`dagster-daemon run` on a Postgres instance; yields (instance, env, log path)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.production.yaml", home / "dagster.yaml")
    landing = tmp_path / "landing"
    landing.mkdir()
    run_config = tmp_path / "automation_run_config.yaml"
    run_config.write_text(yaml.safe_dump(RUN_CONFIG))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "ml_assets_tests.automation.daemon_defs",
                            "working_directory": str(REPO),
                            "location_name": "ml_assets",
                        }
                    }
                ]
            }
        )
    )
    settings = {
        "DAGSTER_HOME": str(home),
        "ML_ASSETS_HOME": str(tmp_path / "ml_home"),
        "ML_ASSETS_SENSOR_INTERVAL_S": "5",
        "ML_ASSETS_TEST_LANDING": str(landing),
        "ML_ASSETS_TEST_RUN_CONFIG": str(run_config),
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    # The deployment steps that dagster.production.yaml names, with one Ray cluster at a time.
    for pool, limit in (("ray_clusters", "1"), ("model_registry", "1")):
        subprocess.run(
            [str(VENV_BIN / "dagster"), "instance", "concurrency", "set", pool, limit],
            check=True, capture_output=True,
        )  # fmt: skip
    log_path = tmp_path / "daemon.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        cwd=REPO,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with dg.DagsterInstance.get() as instance:

            def healthy():
                if process.poll() is not None:
                    raise RuntimeError(f"dagster-daemon exited: {log_path.read_text()[-3000:]}")
                return DAEMONS <= set(instance.get_daemon_heartbeats())

            wait_for("daemon heartbeats", healthy, timeout=120)
            yield instance, landing, log_path
    finally:
        stop_process_group(process, timeout=60)
        log.close()
    # Nothing of the runs' embedded Rays outlives them (a TrainController once did, 800 MB).
    assert ray_processes_of(home) == []


def ray_processes_of(dagster_home) -> list[str]:
    """Ray processes still running from runs of this instance (found by their DAGSTER_HOME).
    Dagster's own code server is not counted: it ends by itself when its heartbeat stops."""
    import psutil

    left = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            command = " ".join(process.info["cmdline"] or [])
            ours = process.environ().get("DAGSTER_HOME") == str(dagster_home)
        except psutil.Error:
            continue
        if ours and (command.startswith("ray::") or "/ray/" in command):
            left.append(f"{command[:80]} (pid {process.pid})")
    return left


def runs_with(instance, **tags):
    return instance.get_runs(filters=dg.RunsFilter(tags=tags))


def finished(instance, run_id):
    run = instance.get_run_by_id(run_id)
    return run if run is not None and run.is_finished else None


def days_of(run) -> tuple[str, str] | None:
    """The days a run materializes (first, last), from Dagster's partition tags."""
    from ml_assets.cli.backfill import run_days

    return run_days(run.tags)


def sensor_ticks(instance, name):
    state = next(s for s in instance.all_instigator_state() if s.instigator_name == name)
    return instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=50)


def step_events(instance, run_id: str, step: str) -> list:
    return [e for e in instance.all_logs(run_id) if e.step_key == step]


def backfill_ray_step(instance):
    """The backfill's run whose ranking_model step has started, once one has."""
    for run in instance.get_runs():
        if "dagster/backfill" in run.tags and any(
            e.dagster_event_type == dg.DagsterEventType.STEP_START
            for e in step_events(instance, run.run_id, "ranking_model")
        ):
            return run
    return None


def materialize_alone(asset: str, config: dict) -> subprocess.CompletedProcess:
    """`dagster asset materialize` of one asset on the test's instance and code location."""
    run_config = Path(os.environ["DAGSTER_HOME"]) / f"{asset}-alone.yaml"
    run_config.write_text(yaml.safe_dump({"ops": {asset: config}}))
    return subprocess.run(
        [str(VENV_BIN / "dagster"), "asset", "materialize", "--select", asset,
         "-m", "ml_assets_tests.automation.daemon_defs", "-c", str(run_config)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_sensor_retrains_on_new_days_and_a_backfill_trains_once(daemon, capsys):
    instance, landing, log_path = daemon
    timings = {}
    land_all(landing, DAYS)
    landed_at = time.time()

    # The sensor notices the 8 days and launches one ingest-and-retrain run over them.
    (run,) = wait_for(
        "the new-data run", lambda: runs_with(instance, **{"ml-assets/trigger": "new-data"}), 90
    )
    created = instance.get_run_record_by_id(run.run_id).create_timestamp.timestamp()
    timings["landed_to_run_created_s"] = round(created - landed_at, 1)
    assert run.job_name == "ingest_and_retrain"
    assert run.tags["dagster/asset_partition_range_start"] == DAYS[0]
    assert run.tags["dagster/asset_partition_range_end"] == DAYS[-1]
    run = wait_for("the new-data run to finish", lambda: finished(instance, run.run_id), 600, 2)
    assert run.status == dg.DagsterRunStatus.SUCCESS, log_path.read_text()[-3000:]
    record = instance.get_run_record_by_id(run.run_id)
    timings["run_queued_s"] = round(record.start_time - record.create_timestamp.timestamp(), 1)
    timings["run_s"] = round(record.end_time - record.start_time, 1)
    assert instance.get_materialized_partitions(dg.AssetKey("ad_features")) == set(DAYS)
    # The registry named too: an earlier test in this process may have set mlflow's global one.
    registry = f"sqlite:///{Path(os.environ['ML_ASSETS_HOME']) / 'mlflow.db'}"
    client = mlflow.MlflowClient(registry, registry)
    champion = client.get_model_version_by_alias("ads_ctr_ranker", "champion")
    assert str(champion.version) == "1" and champion.tags["dagster.run_id"] == run.run_id
    # The alias moves in the run's last step: the run's end is when the new champion serves.
    timings["landed_to_champion_s"] = round(record.end_time - landed_at, 1)

    # A later tick sees no new data and launches nothing.
    skipped = wait_for(
        "a tick after the run",
        lambda: [
            t
            for t in sensor_ticks(instance, "new_impressions")
            if t.timestamp > created + 1 and t.status == TickStatus.SKIPPED
        ],
        60,
    )
    assert "no new or changed files" in skipped[0].skip_reason
    assert len(runs_with(instance, **{"ml-assets/trigger": "new-data"})) == 1

    # A data scientist backfills 3 days from the CLI: 3 day runs, then one training run.
    started = time.time()
    cli = subprocess.Popen(
        [str(VENV_BIN / "ml-assets"), "backfill", "--from", DAYS[-3], "--to", DAYS[-1],
         "--wait", "--timeout", "600"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # While the backfill's training step holds the instance's only Ray slot, someone
    # materializes ranking_model alone, as the UI's Materialize button does (the implicit asset
    # job, no job tags): its step waits for the pool, and the two never train at once.
    backfill_training = wait_for(
        "the backfill's training step", lambda: backfill_ray_step(instance), 600, 0.5
    )
    alone = materialize_alone("ranking_model", RUN_CONFIG["ops"]["ranking_model"])
    assert alone.returncode == 0, (alone.stdout + alone.stderr)[-3000:]
    stdout, _ = cli.communicate(timeout=700)
    assert cli.returncode == 0, stdout + log_path.read_text()[-3000:]
    timings["backfill_s"] = round(time.time() - started, 1)
    (materialized,) = [
        r for r in instance.get_runs()
        if r.job_name == "__ASSET_JOB" and "dagster/backfill" not in r.tags
    ]  # fmt: skip
    assert {k.to_user_string() for k in materialized.asset_selection} == {"ranking_model"}
    waited = step_events(instance, materialized.run_id, "ranking_model")
    assert any("blocked by limit for pool ray_clusters" in e.message for e in waited)
    waited_start, _ = step_span(instance, materialized.run_id, "ranking_model")
    _, held_until = step_span(instance, backfill_training.run_id, "ranking_model")
    requested = instance.get_run_record_by_id(materialized.run_id).create_timestamp.timestamp()
    assert requested < held_until <= waited_start
    timings["materialize_waited_for_pool_s"] = round(waited_start - requested, 1)
    (backfill,) = instance.get_backfills()
    runs = runs_with(instance, **{"dagster/backfill": backfill.backfill_id})
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    day_runs = sorted((r for r in runs if days_of(r)), key=days_of)
    (training,) = [r for r in runs if not days_of(r)]
    assert [days_of(r) for r in day_runs] == [(day, day) for day in DAYS[-3:]]
    assert all(
        {k.to_user_string() for k in r.asset_selection} == {"raw_impressions", "ad_features"}
        for r in day_runs
    )
    assert {k.to_user_string() for k in training.asset_selection} == {
        "feature_vocabulary", "ranking_model", "model_evaluation", "published_model"
    }  # fmt: skip
    # The training run started after every day run ended, and trained on the backfill's window.
    ends = [instance.get_run_record_by_id(r.run_id).end_time for r in day_runs]
    trained = instance.get_run_record_by_id(training.run_id)
    assert trained.start_time >= max(ends)
    timings["backfill_day_runs_done_s"] = round(max(ends) - started, 1)
    timings["backfill_training_run_s"] = round(trained.end_time - trained.start_time, 1)
    window = instance.get_latest_materialization_event(dg.AssetKey("feature_vocabulary"))
    assert window.run_id == training.run_id
    assert window.asset_materialization.metadata["holdout_dates"].value == f"{DAYS[-1]}..{DAYS[-1]}"
    assert client.get_model_version("ads_ctr_ranker", "2").tags["dagster.run_id"] == training.run_id
    assert "run(s)" in stdout and "window" in stdout
    with capsys.disabled():
        print(f"\nretraining cycle on the daemon: {json.dumps(timings)}")
