"""Storage by URI on a real S3-compatible server (SeaweedFS, started by the `s3_server` fixture):
what the pipeline writes lands in the bucket whole or not at all, and comes back the same."""

import dagster as dg
import polars as pl
import pytest
import s3fs
import torch
from upath import UPath

from ml_assets import environment
from ml_assets.atomic import atomic_path
from ml_assets.definitions import build_resources
from ml_assets.defs.resources import StorageResource, StoredValuesIOManager
from ml_assets.ranking.schema import FeatureSchema
from ml_assets.ranking.vocabulary import Vocabulary, fit_vocabulary
from ml_assets.storage import (
    local_copy,
    object_keys,
    open_root,
    read_parquet,
    remove_tree,
    resolve,
    scan_parquet,
    upload_tree,
)
from ml_assets.training.checkpoints import CHECKPOINT_FILE, checkpoint_problem, set_aside


def bucket_keys(s3_server, root: str) -> set[str]:
    """Every object under `root`, as a separate client sees it on the server."""
    folder = UPath(root, **s3_server.filesystem().storage_options)
    prefix = root.removeprefix("s3://")
    return {key.removeprefix(prefix + "/") for key in object_keys(folder)}


def test_parquet_and_a_vocabulary_round_trip_through_the_bucket(s3_server, s3_root, tmp_path):
    root = open_root(s3_root)
    frame = pl.DataFrame({"label": [0, 1, 0, 1], "C1": ["a", "a", "b", "a"], "I1": [1.0] * 4})
    day = root / "ad_features" / "date=2026-11-01" / "features.parquet"
    with atomic_path(day) as temporary:
        frame.write_parquet(temporary)
    assert read_parquet(day).equals(frame)
    assert scan_parquet([day, day]).select(pl.len()).collect().item() == 8
    schema = FeatureSchema(label="label", dense=("I1",), categorical=("C1",))
    vocabulary = fit_vocabulary(
        [day], schema, train_dates=["2026-11-01"], holdout_dates=[], min_count=2, max_size=10
    )
    assert vocabulary.values["C1"] == ["a"]
    vocabulary.save(root / "feature_vocabulary" / "run-1" / "vocabulary.json")
    # A URI handed over as text, as assets pass it, reads back with the root's options.
    handed_over = str(root / "feature_vocabulary" / "run-1" / "vocabulary.json")
    assert handed_over.startswith("s3://")
    assert Vocabulary.load(resolve(handed_over, root)).values == vocabulary.values
    assert bucket_keys(s3_server, s3_root) == {
        "ad_features/date=2026-11-01/features.parquet",
        "feature_vocabulary/run-1/vocabulary.json",
    }
    assert not any(tmp_path.iterdir())  # nothing was staged beside the test's own files


def test_a_failed_write_uploads_nothing_and_keeps_the_stored_object(s3_server, s3_root):
    root = open_root(s3_root)
    target = root / "raw_impressions" / "date=2026-11-01" / "impressions.parquet"
    with atomic_path(target) as temporary:
        pl.DataFrame({"x": [1, 2]}).write_parquet(temporary)
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="validation failed"), atomic_path(target) as temporary:
        pl.DataFrame({"x": [3]}).write_parquet(temporary)
        raise RuntimeError("validation failed")
    assert target.read_bytes() == before
    fresh = root / "raw_impressions" / "date=2026-11-02" / "impressions.parquet"
    with pytest.raises(RuntimeError), atomic_path(fresh) as temporary:
        temporary.write_bytes(b"half a file")
        raise RuntimeError("cut off")
    assert not fresh.exists()
    assert bucket_keys(s3_server, s3_root) == {
        "raw_impressions/date=2026-11-01/impressions.parquet"
    }


def test_folders_copy_in_and_out_and_are_removed(s3_server, s3_root, tmp_path):
    root = open_root(s3_root)
    local = tmp_path / "model"
    (local / "nested").mkdir(parents=True)
    (local / "weights.pt").write_bytes(b"w" * 1000)
    (local / "nested" / "config.json").write_text("{}")
    upload_tree(local, root / "ranking_model" / "run-1")
    with local_copy(root / "ranking_model" / "run-1") as copy:
        assert (copy / "weights.pt").read_bytes() == b"w" * 1000
        assert (copy / "nested" / "config.json").read_text() == "{}"
        downloaded = copy
    assert not downloaded.exists()  # the download is temporary
    remove_tree(root / "ranking_model" / "run-1")
    remove_tree(root / "never-written")  # nothing there is fine
    assert bucket_keys(s3_server, s3_root) == set()


def test_an_unusable_checkpoint_in_the_bucket_is_set_aside_whole(s3_server, s3_root):
    root = open_root(s3_root)
    run = root / "ray_train" / "ranking_model-run-abc"
    checkpoint = run / "checkpoint_2026-12-03_10-00-00.000000"
    with atomic_path(checkpoint / CHECKPOINT_FILE) as temporary:
        torch.save({"model": {"w": torch.tensor([float("nan")])}, "optimizer": {}, "epoch": 0,
                    "history": []}, temporary)  # fmt: skip
    problem = checkpoint_problem(run)
    assert problem is not None and "non-finite weights" in problem
    moved = set_aside(run, problem)
    keys = bucket_keys(s3_server, s3_root)
    assert not [key for key in keys if key.startswith(f"ray_train/{run.name}/")]
    assert checkpoint_problem(run) is None  # nothing left there to resume from
    assert f"ray_train/{moved.name}/{checkpoint.name}/{CHECKPOINT_FILE}" in keys
    assert f"ray_train/{moved.name}/DISCARDED.txt" in keys


def test_a_long_lived_process_sees_what_another_one_wrote_after_it_first_looked(s3_root):
    """A code server lists a folder, then a run pod writes into it: the next listing has it."""
    import subprocess
    import sys

    root = open_root(s3_root)
    (root / "xray" / "run-1" / "xray.json").write_text("{}")
    assert [p.name for p in open_root(s3_root).joinpath("xray").glob("*")] == ["run-1"]
    write = f"from ml_assets.storage import open_root; (open_root({s3_root!r}) / 'xray' / 'run-2' / 'xray.json').write_text('{{}}')"  # noqa: E501
    subprocess.run([sys.executable, "-c", write], check=True)
    assert sorted(p.name for p in open_root(s3_root).joinpath("xray").glob("*")) == [
        "run-1",
        "run-2",
    ]


def test_wrong_credentials_are_refused_by_the_server(s3_server, s3_root):
    root = open_root(s3_root)
    with atomic_path(root / "a.txt") as temporary:
        temporary.write_text("kept")
    wrong = open_root(s3_root, endpoint_url=s3_server.endpoint, key="intruder", secret="guess")
    with pytest.raises(PermissionError):
        (wrong / "a.txt").read_text()
    anonymous = s3fs.S3FileSystem(  # unsigned requests, from a client of its own
        anon=True, endpoint_url=s3_server.endpoint, skip_instance_cache=True
    )
    with pytest.raises(PermissionError):
        anonymous.cat_file(f"{s3_root.removeprefix('s3://')}/a.txt")


def test_an_unsupported_scheme_and_a_local_root_in_production_are_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"gs://.*use a local folder or s3://bucket/prefix"):
        open_root("gs://bucket/prefix")
    monkeypatch.setenv("ML_ASSETS_ENV", "production")
    monkeypatch.setenv(environment.STORAGE_ROOT, "/var/lib/ml_assets")
    with pytest.raises(ValueError, match="ML_ASSETS_STORAGE_ROOT set to a bucket"):
        environment.storage_root()
    monkeypatch.delenv(environment.STORAGE_ROOT)
    with pytest.raises(ValueError, match="not unset: pods share no disk"):
        environment.storage_root()


def test_storage_settings_are_read_from_the_environment_by_name(s3_root, monkeypatch):
    monkeypatch.setenv(environment.STORAGE_ROOT, s3_root)
    resources = build_resources("local")
    storage = resources["storage"]
    # Unresolved, the fields are the variables' names: the UI and run config never show values.
    for field, name in (
        ("base_path", "ML_ASSETS_STORAGE_ROOT"),
        ("s3_endpoint_url", "AWS_ENDPOINT_URL"),
        ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ):
        value = getattr(storage, field)
        assert isinstance(value, dg.EnvVar) and value.env_var_name == name
    assert isinstance(resources["io_manager"], StoredValuesIOManager)


def test_values_handed_between_steps_live_in_the_bucket(s3_server, s3_root, instance):
    """Dagster's stored values go through the IO manager on the storage root, so a step in
    another pod loads what this one returned."""

    @dg.asset
    def window() -> dict:
        return {"vocabulary": f"{s3_root}/feature_vocabulary/run-1/vocabulary.json"}

    @dg.asset
    def model(window: dict) -> str:
        return window["vocabulary"].replace("vocabulary.json", "model")

    storage = StorageResource(base_path=s3_root)
    result = dg.materialize(
        [window, model],
        instance=instance,
        resources={"io_manager": StoredValuesIOManager(storage=storage)},
    )
    assert result.output_for_node("model").endswith("run-1/model")
    run = result.run_id
    assert bucket_keys(s3_server, s3_root) == {
        "dagster/window.pickle", f"dagster/window.runs/{run}.pickle",
        "dagster/model.pickle", f"dagster/model.runs/{run}.pickle",
    }  # fmt: skip


def test_an_objects_version_changes_with_its_bytes_even_within_one_second(s3_root):
    """The bucket's LastModified has whole seconds: two writes in one second must still differ
    (the drift sensor looks again at a day whose file changed); the same bytes again do not."""
    from ml_assets.storage import content_version

    day = open_root(s3_root) / "day.parquet"
    day.write_bytes(b"first")
    first = content_version(day)
    day.write_bytes(b"other")
    second = content_version(day)
    day.write_bytes(b"other")
    assert first != second == content_version(day)
