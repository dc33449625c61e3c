"""The retraining sensors on a real Dagster instance, with real feature runs where a decision
depends on them (training itself runs in the daemon test, ml_assets_tests/automation)."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from ml_assets.definitions import defs
from ml_assets.defs.ads_ranking.automation import feature_drift, new_impressions
from ml_assets.defs.automation.new_data import LandingCursor
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.resources import ImpressionSource, StorageResource
from ml_assets.ranking.synthetic import SyntheticSpec, generate_day

D1, D2, D3, D4 = "2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"
SETTINGS = {"settle_seconds": 0, "train_days": 2, "holdout_days": 1}


def land(landing, date, rows=400, transform=None):
    frame, _ = generate_day(SyntheticSpec(), date, rows)
    (transform(frame) if transform else frame).write_parquet(landing / f"{date}.parquet")


@pytest.fixture
def landing(tmp_path):
    path = tmp_path / "landing"
    path.mkdir()
    return path


class Ticks:
    """Evaluates a sensor tick by tick, carrying the cursor as the daemon does."""

    def __init__(self, sensor, instance, **resources):
        self.sensor, self.instance, self.resources, self.cursor = sensor, instance, resources, None

    def __call__(self):
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources
        ) as context:
            result = self.sensor(context)
            self.cursor = context.cursor
        return result if isinstance(result, (dg.SkipReason, dg.RunRequest)) else list(result)


def new_data_ticks(instance, landing, **settings):
    return Ticks(
        new_impressions,
        instance,
        source=ImpressionSource(kind="parquet", path=str(landing)),
        automation=AutomationSettings(**{**SETTINGS, **settings}),
    )


def run_features(instance, request, landing=None, **source):
    """Executes a sensor's feature run in-process, tagged as the daemon would tag it."""
    job = defs.resolve_job_def(request.job_name)
    config = {"source": {"config": {"kind": "parquet", "path": str(landing)}}} if landing else {}
    if source:
        config = {"source": {"config": source}}
    return job.execute_in_process(
        instance=instance,
        run_config={"resources": config},
        tags={**request.tags, "dagster/run_key": request.run_key},
        raise_on_error=False,
    )


def test_new_consecutive_days_trigger_one_ingest_and_retrain_run_once(instance, landing, ml_home):
    for day in (D1, D2, D3):
        land(landing, day)
    tick = new_data_ticks(instance, landing)
    (request,) = tick()
    assert request.job_name == "ingest_and_retrain"
    assert request.tags["dagster/asset_partition_range_start"] == D1
    assert request.tags["dagster/asset_partition_range_end"] == D3
    assert request.tags["ml-assets/trigger"] == "new-data"
    window = request.run_config["ops"]["feature_vocabulary"]["config"]
    assert window == {"end_date": D3, "train_days": 2, "holdout_days": 1}
    assert request.run_key.startswith(f"new-data:{D1}..{D3}:")
    # The same files again: nothing, also after a "restart" (a fresh sensor with the cursor).
    assert "no new or changed files" in tick().skip_message
    restarted = new_data_ticks(instance, landing)
    restarted.cursor = tick.cursor
    assert isinstance(restarted(), dg.SkipReason)
    # A re-delivered day is new data: a new run key.
    land(landing, D3, rows=500)
    (again,) = tick()
    assert (
        again.run_key != request.run_key and again.tags["dagster/asset_partition_range_end"] == D3
    )


def test_half_written_and_schema_changed_files_are_skipped_with_the_reason(
    instance, landing, ml_home
):
    good = generate_day(SyntheticSpec(), D1, 400)[0]
    good.write_parquet(landing / "full.parquet")
    data = (landing / "full.parquet").read_bytes()
    (landing / "full.parquet").unlink()
    (landing / f"{D1}.parquet").write_bytes(data[: len(data) // 3])  # a copy cut short
    land(landing, D2, transform=lambda f: f.rename({"C5": "C5_renamed"}))
    tick = new_data_ticks(instance, landing)
    skipped = tick()
    assert isinstance(skipped, dg.SkipReason)
    assert f"{D1}: skipped: " in skipped.skip_message and "half-written" in skipped.skip_message
    assert f"{D2}: skipped: " in skipped.skip_message and "C5" in skipped.skip_message
    cursor = LandingCursor.parse(tick.cursor)
    assert set(cursor.rejected) == {D1, D2} and cursor.handled == {}
    assert "no new or changed files" in tick().skip_message  # said once, not every tick
    # Re-delivered whole, the day is picked up (no retrain: the 3-day window lacks days).
    land(landing, D1)
    (request,) = tick()
    assert request.job_name == "daily_features"
    assert request.tags["dagster/asset_partition_range_start"] == D1


def test_a_tick_checks_a_bounded_number_of_files_and_the_next_tick_goes_on(
    instance, landing, ml_home, monkeypatch
):
    """The cursor is saved only when a tick ends: a tick must end, however many files land."""
    monkeypatch.setattr("ml_assets.defs.automation.new_data.CHECKS_PER_TICK", 2)
    for day in (D1, D2, D3):
        land(landing, day)
    tick = new_data_ticks(instance, landing)
    (first,) = tick()
    assert first.tags["dagster/asset_partition_range_end"] == D2
    assert set(LandingCursor.parse(tick.cursor).handled) == {D1, D2}
    (second,) = tick()
    assert second.tags["dagster/asset_partition_range_start"] == D3
    assert "no new or changed files" in tick().skip_message


def test_with_a_ready_marker_a_day_waits_for_it_however_old_the_file(instance, landing, ml_home):
    """`cp -p` or a slow writer can leave an old-looking half file; the marker decides."""
    land(landing, D1)
    tick = Ticks(
        new_impressions,
        instance,
        source=ImpressionSource(
            kind="parquet", path=str(landing), ready_marker="{date}.parquet._SUCCESS"
        ),
        # Settling would hold the file back an hour: the marker replaces it.
        automation=AutomationSettings(**{**SETTINGS, "settle_seconds": 3600}),
    )
    waiting = tick()
    assert f"{D1}: waits for its ready marker {D1}.parquet._SUCCESS" in waiting.skip_message
    (landing / f"{D1}.parquet._SUCCESS").touch()
    (request,) = tick()
    assert request.tags["dagster/asset_partition_range_start"] == D1


def test_a_cursor_of_the_earlier_fingerprint_format_re_ingests_nothing(instance, landing, ml_home):
    from ml_assets.ranking.landing import scan_landing
    from ml_assets.ranking.sources import FileSourceSpec

    land(landing, D1)
    (landed,) = scan_landing(FileSourceSpec(path=str(landing)), D1)
    stat = (landing / f"{D1}.parquet").stat()
    assert landed.legacy_fingerprint == f"{stat.st_size}-{int(stat.st_mtime * 1e6)}"  # 0.1's
    tick = new_data_ticks(instance, landing)
    tick.cursor = LandingCursor(handled={D1: landed.legacy_fingerprint}).dump()
    assert "no new or changed files" in tick().skip_message
    assert LandingCursor.parse(tick.cursor).handled == {D1: landed.fingerprint}


def test_a_file_still_changing_or_for_today_waits(instance, landing, ml_home):
    land(landing, D1)
    assert "still changing" in new_data_ticks(instance, landing, settle_seconds=3600)().skip_message
    today = dt.datetime.now(dt.UTC).date().isoformat()
    land(landing, today)
    tick = new_data_ticks(instance, landing)
    (request,) = tick()
    assert request.tags["dagster/asset_partition_range_end"] == D1
    assert "partition not yet open" in tick().skip_message
    assert today not in LandingCursor.parse(tick.cursor).handled  # looked at again tomorrow


def test_a_gap_waits_for_the_missing_day_then_retrains(instance, landing, ml_home):
    land(landing, D1)
    land(landing, D3)
    tick = new_data_ticks(instance, landing)
    requests = tick()
    assert [r.job_name for r in requests] == ["daily_features", "daily_features"]
    assert LandingCursor.parse(tick.cursor).waiting_on == []  # D2 is missing: no retrain
    for request in requests:
        assert run_features(instance, request, landing).success
    land(landing, D2)
    (request,) = tick()
    assert request.job_name == "ingest_and_retrain"
    assert request.run_config["ops"]["feature_vocabulary"]["config"]["end_date"] == D3


def test_retrain_follows_feature_runs_only_when_they_all_succeed(instance, landing, ml_home):
    land(landing, D2)
    tick = new_data_ticks(instance, landing)
    (first,) = tick()
    assert run_features(instance, first, landing).success  # D2 is materialized
    for day in (D1, D3):
        land(landing, day)
    features_runs = tick()
    assert [r.job_name for r in features_runs] == ["daily_features"] * 2
    assert LandingCursor.parse(tick.cursor).waiting_on == [r.run_key for r in features_runs]
    for request in features_runs:
        assert run_features(instance, request, landing).success
    (retrain,) = tick()
    assert retrain.job_name == "train_and_publish"
    assert retrain.run_config["ops"]["feature_vocabulary"]["config"]["end_date"] == D3
    assert LandingCursor.parse(tick.cursor).waiting_on == []

    # A failed feature run: no retrain, and the tick says so.
    land(landing, D1, rows=450)
    land(landing, D3, rows=450)
    features_runs = tick()
    (landing / f"{D3}.parquet").unlink()  # the run for D3 now fails at ingest
    results = [run_features(instance, r, landing) for r in features_runs]
    assert [r.success for r in results] == [True, False]
    assert isinstance(tick(), dg.SkipReason)
    assert LandingCursor.parse(tick.cursor).waiting_on == []


def test_synthetic_source_leaves_new_data_to_the_schedule(instance):
    tick = Ticks(
        new_impressions, instance, source=ImpressionSource(), automation=AutomationSettings()
    )
    assert "the retrain schedule brings new synthetic days" in tick().skip_message


def test_drift_sensor_fires_on_shifted_data_and_not_on_the_same_distribution(
    instance, landing, ml_home
):
    synthetic = {"rows_per_day": 4000}
    daily = defs.resolve_job_def("daily_features")
    for day in (D1, D2, D3, D4):
        assert daily.execute_in_process(
            instance=instance,
            partition_key=day,
            run_config={"resources": {"source": {"config": synthetic}}},
        ).success
    tick = Ticks(
        feature_drift,
        instance,
        source=ImpressionSource(**synthetic),
        storage=StorageResource(),
        automation=AutomationSettings(**SETTINGS),
    )
    assert "no training window yet" in tick().skip_message
    window = defs.resolve_job_def("train_and_publish").execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("feature_vocabulary")],
        run_config={
            "ops": {"feature_vocabulary": {"config": {"end_date": D3, "train_days": 2}}},
            "resources": {"source": {"config": synthetic}},
        },
    )
    assert window.success
    same = tick()
    assert same.skip_message.startswith("no drift: max PSI")
    assert "already compared" in tick().skip_message

    # D4 re-delivered with a shifted count feature and a new id space for one categorical.
    def shift(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("I2") * 20, pl.concat_str(pl.lit("v2-"), pl.col("C7")).alias("C7")
        )

    land(landing, D4, rows=4000, transform=shift)
    assert daily.execute_in_process(
        instance=instance,
        partition_key=D4,
        run_config={"resources": {"source": {"config": {"kind": "parquet", "path": str(landing)}}}},
    ).success
    request = tick()
    assert isinstance(request, dg.RunRequest), request
    assert request.tags["ml-assets/trigger"] == "drift"
    assert set(request.tags["ml-assets/drifted"].split(",")) == {"I2", "C7"}
    assert float(request.tags["ml-assets/psi-max"]) > 0.2
    assert request.run_config["ops"]["feature_vocabulary"]["config"]["end_date"] == D4
    assert "already compared" in tick().skip_message  # one retrain per drift episode


def test_daily_schedule_ingests_yesterday_and_retrains_on_its_window(tmp_path, instance):
    from ml_assets.defs.ads_ranking.automation import daily_retrain

    run_config = tmp_path / "run.yaml"
    run_config.write_text("ops:\n  ranking_model:\n    config:\n      epochs: 1\n")
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2026, 11, 9, 6, tzinfo=dt.UTC),
        resources={"automation": AutomationSettings(run_config_file=str(run_config))},
        repository_def=defs.get_repository_def(),
    )
    (request,) = daily_retrain.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-08" and request.run_key == "daily:2026-11-08"
    ops = request.run_config["ops"]
    assert ops["feature_vocabulary"]["config"] == {
        "end_date": "2026-11-08",
        "train_days": 7,
        "holdout_days": 1,
    }
    assert ops["ranking_model"]["config"] == {"epochs": 1}  # the automation run config
    assert request.tags["ml-assets/trigger"] == "schedule"


def schedule_tick(instance, day: str):
    """The daily_retrain schedule evaluated at 06:00 UTC of `day`."""
    from ml_assets.defs.ads_ranking.automation import daily_retrain

    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime.combine(
            dt.date.fromisoformat(day), dt.time(6), dt.UTC
        ),
        resources={"automation": AutomationSettings(**SETTINGS)},
        repository_def=defs.get_repository_def(),
    )
    return daily_retrain.evaluate_tick(context)


def create_run(instance, request, job_name="ingest_and_retrain"):
    """The run the daemon creates for a request, tagged as it tags it (queued, not executed:
    the decisions below read only the instance's run records)."""
    tags = {**request.tags, "dagster/run_key": request.run_key}
    if request.partition_key:
        tags["dagster/partition"] = request.partition_key
    job = defs.resolve_job_def(request.job_name or job_name)
    return instance.create_run_for_job(job, run_config=request.run_config, tags=tags)


def test_the_schedule_skips_a_day_the_sensors_run_covers_unless_that_run_failed(
    instance, landing, ml_home
):
    for day in (D1, D2, D3):
        land(landing, day)
    (request,) = new_data_ticks(instance, landing)()
    run = create_run(instance, request)
    for day_after in (D3, D4):  # the schedule's yesterday: D2, then D3, both in the run's range
        skipped = schedule_tick(instance, day_after)
        assert skipped.run_requests == [] and run.run_id in skipped.skip_message
    instance.report_run_failed(run)
    (retry,) = schedule_tick(instance, D4).run_requests
    assert retry.partition_key == D3 and retry.tags["ml-assets/trigger"] == "schedule"


def test_another_pipelines_runs_do_not_cover_this_pipelines_days(instance, landing, ml_home):
    """The pipeline tag keeps two pipelines' automation apart: the ads sensor's run covers D2
    for the ads schedule only; a second pipeline's schedule (the same factories, another
    description) still runs its own D2."""
    from ml_assets.defs.ads_ranking.jobs import ADS_RANKING
    from ml_assets.defs.automation.retraining import retraining
    from ml_assets.defs.automation.schedule import retrain_schedule
    from ml_assets.defs.partitions import daily_partitions

    for day in (D1, D2, D3):
        land(landing, day)
    (request,) = new_data_ticks(instance, landing)()
    assert request.tags["ml-assets/pipeline"] == "ads_ranking"
    run = create_run(instance, request)
    assert run.run_id in schedule_tick(instance, D3).skip_message
    other = retraining("other", daily_assets=ADS_RANKING.daily_assets,
                       window_assets=ADS_RANKING.window_assets, partitions_def=daily_partitions,
                       job_prefix="other_")  # fmt: skip
    schedule = retrain_schedule(other, name="other_retrain")
    location = dg.Definitions(
        assets=[*other.daily_assets, *other.window_assets],
        jobs=[other.daily_job, other.train_job, other.combined_job],
        schedules=[schedule],
        resources=defs.resources,
    )
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime.combine(dt.date.fromisoformat(D3), dt.time(6), dt.UTC),
        resources={"automation": AutomationSettings(**SETTINGS)},
        repository_def=location.get_repository_def(),
    )
    (own,) = schedule.evaluate_tick(context).run_requests
    assert own.partition_key == D2 and own.tags["ml-assets/pipeline"] == "other"


def test_the_sensor_leaves_a_day_the_schedule_ran_on_that_file_and_runs_a_redelivered_one(
    instance, landing, ml_home
):
    for day in (D1, D2, D3):
        land(landing, day)
    (scheduled,) = schedule_tick(instance, D4).run_requests  # D3's file had landed before it
    create_run(instance, scheduled)
    tick = new_data_ticks(instance, landing)
    requests = tick()
    assert requests and all(r.tags["dagster/asset_partition_range_end"] < D3 for r in requests)
    assert D3 in LandingCursor.parse(tick.cursor).handled
    land(landing, D3, rows=500)  # re-delivered after the schedule's run was created
    (again,) = tick()
    assert again.tags["dagster/asset_partition_range_end"] == D3


@pytest.mark.parametrize("where", ["local", "bucket"])
def test_the_retrieval_pipelines_drift_sensor_retrains_it_when_its_audience_changes(
    instance, ml_home, where, request, monkeypatch
):
    """The same drift sensor, built for another pipeline: its daily asset, its request columns,
    its own source resource and train job. Its window comes from an existing model's record.
    Its days are read where the deployment keeps them: a local folder, or a bucket of a real S3
    server."""
    from ml_assets import environment
    from ml_assets.definitions import build_definitions, build_storage
    from ml_assets.defs.retrieval.ingest import RequestSource
    from ml_assets.defs.retrieval.pipeline import request_drift

    if where == "bucket":
        monkeypatch.setenv(environment.STORAGE_ROOT, request.getfixturevalue("s3_root"))
    source = RequestSource(users=400, ads=100, rows_per_day=3000)
    daily = build_definitions("local").resolve_job_def("retrieval_daily_features")

    def requests(day: str, world: RequestSource) -> None:
        config = {"resources": {"retrieval_source": {"config": world.model_dump()}}}
        assert daily.execute_in_process(
            instance=instance, partition_key=day, run_config=config
        ).success

    for day in (D1, D2, D3, D4):
        requests(day, source)
    tick = Ticks(request_drift, instance, retrieval_source=source, storage=build_storage(),
                 automation=AutomationSettings(**SETTINGS))  # fmt: skip
    assert "no training window yet (retrieval_model never materialized)" in tick().skip_message
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "retrieval_model", metadata={"train_dates": f"{D1}..{D2}", "holdout_dates": D3}
        )
    )
    assert tick().skip_message.startswith("no drift: max PSI")

    # D4 again, from another audience: other users, with other tastes.
    requests(D4, source.model_copy(update={"seed": 99}))
    request = tick()
    assert isinstance(request, dg.RunRequest), request
    assert request.job_name in (None, "retrieval_train_and_publish")
    assert request.tags["ml-assets/pipeline"] == "retrieval"
    assert "user_id" in request.tags["ml-assets/drifted"].split(","), request.tags
    config = request.run_config["ops"]["retrieval_model"]["config"]
    assert config == {"end_date": D4, "train_days": 2, "holdout_days": 1}
    assert "already compared" in tick().skip_message
