"""Bad input fails the right asset with an error naming partition, column and fix, and leaves
earlier outputs untouched. Real Dagster instance, real files; no Ray needed here."""

import hashlib
import json

import dagster as dg
import polars as pl
import pytest

from ml_assets.defs.ads_ranking.features.assets import ad_features, feature_vocabulary
from ml_assets.defs.ads_ranking.ingest.assets import raw_impressions
from ml_assets.defs.resources import ImpressionSource, StorageResource
from ml_assets.ranking.synthetic import SyntheticSpec, generate_day

DAY1, DAY2 = "2026-11-02", "2026-11-03"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def step_error(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures, "expected a failed step"
    return str(failures[0].step_failure_data.error)


@pytest.fixture
def file_source(tmp_path):
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    frame, _ = generate_day(SyntheticSpec(), DAY1, 2000)
    frame.write_parquet(source_dir / f"{DAY1}.parquet")
    return source_dir, frame


def materialize_day(instance, storage, source, day):
    return dg.materialize(
        [raw_impressions, ad_features],
        partition_key=day,
        resources={"source": source, "storage": storage},
        instance=instance,
        raise_on_error=False,
    )


def test_bad_files_fail_ingest_and_keep_earlier_outputs(tmp_path, instance, file_source):
    source_dir, frame = file_source
    storage = StorageResource(base_path=str(tmp_path / "storage"))
    source = ImpressionSource(kind="parquet", path=str(source_dir))
    assert materialize_day(instance, storage, source, DAY1).success
    raw_file = storage.partition_dir("raw_impressions", DAY1) / "impressions.parquet"
    features_file = storage.partition_dir("ad_features", DAY1) / "features.parquet"
    before = digest(raw_file), digest(features_file)

    # A missing partition: no file for DAY2.
    error = step_error(materialize_day(instance, storage, source, DAY2))
    assert f"partition {DAY2}" in error and "no source file" in error and "Fix:" in error

    # Non-0/1 labels, null labels, a missing column, an empty day: each names what is wrong.
    cases = {
        "outside {0, 1}": frame.with_columns(pl.col("label").cast(pl.Int64) * 2),
        "null": frame.with_columns(pl.lit(None, pl.Int8).alias("label")),
        "lacks 1 configured column(s): C5": frame.drop("C5"),
        "has no rows": frame.head(0),
    }
    for expected, bad in cases.items():
        bad.write_parquet(source_dir / f"{DAY1}.parquet")
        error = step_error(materialize_day(instance, storage, source, DAY1))
        assert f"partition {DAY1}" in error and expected in error, error
        assert "Fix:" in error
        # The failed run overwrote nothing that an earlier run stored.
        assert (digest(raw_file), digest(features_file)) == before


def test_window_with_missing_features_fails_vocabulary_with_the_dates(tmp_path, instance):
    storage = StorageResource(base_path=str(tmp_path / "storage"))
    source = ImpressionSource(rows_per_day=2000)
    resources = {"source": source, "storage": storage}
    assert dg.materialize(
        [raw_impressions, ad_features], partition_key=DAY1, resources=resources, instance=instance
    ).success
    result = dg.materialize(
        [feature_vocabulary],
        selection=[feature_vocabulary],
        resources=resources,
        instance=instance,
        run_config={
            "ops": {
                "feature_vocabulary": {
                    "config": {"end_date": DAY2, "train_days": 1, "holdout_days": 1}
                }
            }
        },
        raise_on_error=False,
    )
    error = step_error(result)
    assert f"partition {DAY2}" in error and "ad_features is not materialized" in error
    assert f"ml-assets run --from {DAY2} --to {DAY2}" in error


def vocabulary_over_two_days(instance, resources) -> str:
    """Features for DAY1 and DAY2, then a vocabulary training on DAY1 with DAY2 held out."""
    for day in (DAY1, DAY2):
        dg.materialize(
            [raw_impressions, ad_features],
            partition_key=day,
            resources=resources,
            instance=instance,
        )
    result = dg.materialize(
        [feature_vocabulary],
        resources=resources,
        instance=instance,
        run_config={"ops": {"feature_vocabulary": {"config": {"train_days": 1}}}},
    )
    return result.output_for_node("feature_vocabulary")


def test_vocabulary_defaults_to_the_latest_materialized_day(tmp_path, instance):
    storage = StorageResource(base_path=str(tmp_path / "storage"))
    resources = {"source": ImpressionSource(rows_per_day=2000), "storage": storage}
    path = vocabulary_over_two_days(instance, resources)
    vocabulary = json.loads(open(path).read())
    assert vocabulary["train_dates"] == [DAY1] and vocabulary["holdout_dates"] == [DAY2]
    assert set(vocabulary["values"]) == {f"C{i}" for i in range(1, 27)}


@pytest.mark.slow
def test_vocabulary_lacking_a_feature_fails_training_by_name(tmp_path, instance, ml_home):
    """A real local Ray starts for the step; the step fails on the vocabulary before training."""
    from ml_assets.defs.ads_ranking.training.assets import ranking_model
    from ml_assets.defs.ray_resource import LocalRayCluster
    from ml_assets.defs.resources import MlflowResource

    storage = StorageResource(base_path=str(tmp_path / "storage"))
    resources = {
        "source": ImpressionSource(rows_per_day=2000),
        "storage": storage,
        "ray_cluster": LocalRayCluster(num_cpus=2),
        "mlflow_tracking": MlflowResource(),
    }
    path = vocabulary_over_two_days(instance, resources)
    vocabulary = json.loads(open(path).read())
    del vocabulary["values"]["C3"]
    open(path, "w").write(json.dumps(vocabulary))

    failed = dg.materialize(
        [feature_vocabulary, ranking_model],
        selection=[ranking_model],
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    error = step_error(failed)
    assert "column 'C3'" in error and "re-materialize feature_vocabulary" in error
    assert not list((tmp_path / "storage").glob("ranking_model/*"))  # no model was written
