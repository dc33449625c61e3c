"""Property-based fuzzing (Hypothesis) of what users and files hand the platform: the day-file
readers, the file pattern, run configs, profiles and memory sizes. Each may refuse, but only with
its documented error, which names the problem; nothing else may escape, and nothing stored changes.
Derandomized, so CI runs the same examples every time."""

import string
from pathlib import Path

import polars as pl
import pytest
import typer
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_assets.cli.cluster import _memory_gib
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.run_config import checked_config_for, load_run_config
from ml_assets.errors import DataValidationError
from ml_assets.ranking.schema import CRITEO_CATEGORICAL, CRITEO_DENSE, LABEL
from ml_assets.ranking.sources import FileSourceSpec, check_file_pattern, read_file_day
from ml_assets.ray.profiles import ProfileError, load_profile

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
DAY = "2026-11-01"
CELL = st.one_of(
    st.just(""), st.integers(-5, 10**6).map(str), st.text(string.printable, max_size=6),
    st.sampled_from(["nan", "inf", "-inf", '"', '"a\tb"', "1e309", "\x00"]),
)  # fmt: skip


def day_file(tmp_path: Path, name: str, content: bytes) -> FileSourceSpec:
    fmt = {"tsv": "criteo_tsv", "csv": "csv", "parquet": "parquet"}[name.rsplit(".", 1)[1]]
    (tmp_path / f"{DAY}.{name.rsplit('.', 1)[1]}").write_bytes(content)
    return FileSourceSpec(
        path=str(tmp_path), format=fmt, file_pattern="{date}." + name.rsplit(".", 1)[1]
    )


def read_or_refuse(spec: FileSourceSpec) -> None:
    """A frame of exactly the canonical columns, finite dense values and 0/1 labels; or a
    DataValidationError that names the day."""
    try:
        frame = read_file_day(spec, DAY)
    except DataValidationError as error:
        assert DAY in str(error)
        return
    assert frame.columns == [LABEL, *CRITEO_DENSE, *CRITEO_CATEGORICAL]
    assert frame.get_column(LABEL).is_in([0, 1]).all()
    for name in CRITEO_DENSE:
        assert frame.get_column(name).drop_nulls().is_finite().all()


@FUZZ
@given(rows=st.lists(st.lists(CELL, min_size=36, max_size=42), min_size=1, max_size=6))
def test_criteo_tsv_rows_are_read_whole_or_refused(tmp_path_factory, rows):
    tmp_path = tmp_path_factory.mktemp("tsv")
    text = "".join("\t".join(row) + "\n" for row in rows)
    read_or_refuse(day_file(tmp_path, "day.tsv", text.encode()))


@FUZZ
@given(content=st.binary(max_size=400))
def test_arbitrary_bytes_in_any_format_are_refused_cleanly(tmp_path_factory, content):
    tmp_path = tmp_path_factory.mktemp("bytes")
    for name in ("day.tsv", "day.csv", "day.parquet"):
        read_or_refuse(day_file(tmp_path, name, content))


@FUZZ
@given(
    labels=st.lists(st.sampled_from(["0", "1", "2", "", "x", "1.0"]), min_size=1, max_size=5),
    dense=st.lists(CELL, min_size=5, max_size=5),
)
def test_csv_and_parquet_with_named_columns_are_read_or_refused(tmp_path_factory, labels, dense):
    tmp_path = tmp_path_factory.mktemp("named")
    columns = {LABEL: labels}
    for i, name in enumerate(CRITEO_DENSE):
        columns[name] = [dense[(i + j) % len(dense)] for j in range(len(labels))]
    for name in CRITEO_CATEGORICAL:
        columns[name] = ["a"] * len(labels)
    frame = pl.DataFrame(columns)
    frame.write_parquet(tmp_path / f"{DAY}.parquet")
    read_or_refuse(FileSourceSpec(path=str(tmp_path), format="parquet"))
    frame.write_csv(tmp_path / f"{DAY}.csv")
    read_or_refuse(FileSourceSpec(path=str(tmp_path), format="csv", file_pattern="{date}.csv"))


@FUZZ
@given(pattern=st.text(string.printable, max_size=30) | st.builds(
    lambda a, b: f"{a}{{date}}{b}", st.text(string.printable, max_size=12),
    st.text(string.printable, max_size=12),
))  # fmt: skip
def test_a_file_pattern_is_refused_or_confined_to_the_source_folder(tmp_path_factory, pattern):
    root = tmp_path_factory.mktemp("source")
    try:
        check_file_pattern(pattern)
    except ValueError as error:
        assert "file_pattern" in str(error)
        return
    file = FileSourceSpec(path=str(root), file_pattern=pattern).file_for(DAY)
    assert file.resolve().is_relative_to(root.resolve()) and DAY in str(file)


RUN_CONFIG_NAMES = ["resources", "ops", "execution", "loggers", "config", "feature_vocabulary",
                    "ranking_model", "source", "storage", "epochs", "train_days", "kind",
                    "rows_per_day", "end_date", "in_process", "other"]  # fmt: skip
YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=True),
              st.text(max_size=8), st.sampled_from(RUN_CONFIG_NAMES)),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(RUN_CONFIG_NAMES) | st.integers(0, 3), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@pytest.fixture(scope="module")
def asset_job():
    from ml_assets.definitions import defs

    return defs.resolve_implicit_global_asset_job_def()


@FUZZ
@given(document=st.one_of(
    YAML_VALUES.map(lambda value: yaml.safe_dump(value).encode()),
    st.text(max_size=60).map(str.encode),
    st.binary(max_size=60),
))  # fmt: skip
def test_a_run_config_is_refused_by_name_or_fits_the_assets_it_is_for(
    tmp_path_factory, asset_job, document
):
    """What `ml-assets run --config` and the automation sensors read: a ValueError that names
    the file or the misfit, or config that Dagster accepts for the run's assets."""
    file = tmp_path_factory.mktemp("config") / "run.yaml"
    file.write_bytes(document)
    keys = [key for key in asset_job.asset_layer.executable_asset_keys
            if key.to_user_string() in ("feature_vocabulary", "ranking_model")]  # fmt: skip
    try:
        config = load_run_config(file)
        checked = checked_config_for(asset_job, keys, config)
    except ValueError as error:
        assert str(file) in str(error) or "does not fit these assets" in str(error)
        return
    assert set(checked.get("ops") or {}) <= {"feature_vocabulary", "ranking_model"}
    automated = AutomationSettings(run_config_file=str(file)).run_config(
        ["feature_vocabulary"], end_date=DAY, window_asset="feature_vocabulary"
    )
    assert automated["ops"]["feature_vocabulary"]["config"]["end_date"] == DAY


@FUZZ
@given(
    name=st.text(string.printable, min_size=1, max_size=20),
    document=st.one_of(
        st.text(string.printable, max_size=80),
        st.dictionaries(
            st.sampled_from(["name", "workers", "worker_cpu", "worker_memory_gib", "image",
                             "namespace", "quota", "gpu_type", "spot", "other"]),
            st.one_of(st.integers(-3, 10**4), st.text(max_size=8), st.none(), st.booleans(),
                      st.floats(allow_nan=True)),
        ).map(yaml.safe_dump),
    ),
)  # fmt: skip
def test_a_profile_loads_valid_or_fails_with_a_profile_error(tmp_path_factory, name, document):
    directory = tmp_path_factory.mktemp("profiles")
    (directory / "fuzzed.yaml").write_text(document)
    for asked in (name, "fuzzed"):
        try:
            profile = load_profile(asked, directory)
        except ProfileError as error:
            assert "fix:" in str(error)
            continue
        assert profile.name == asked and profile.workers >= 0


@FUZZ
@given(text=st.text(string.printable, max_size=12) | st.from_regex(
    r"-?\d{1,4}(\.\d{1,3})?(e\d{1,3})?(Ki|Mi|Gi|Ti|k|M|G|T|m)?", fullmatch=True
))  # fmt: skip
def test_a_memory_size_is_a_positive_finite_gib_or_a_usage_error(text):
    try:
        gib = _memory_gib(text)
    except typer.Exit as refused:
        assert refused.exit_code == 2
        return
    assert 0 < gib < float("inf")


def test_a_refused_day_leaves_the_stored_partition_as_it_was(tmp_path, instance):
    """Ingest of garbage fails the run; the partition written before keeps its bytes."""
    import dagster as dg

    from ml_assets.defs.ads_ranking.ingest.assets import IMPRESSIONS_FILE, raw_impressions
    from ml_assets.defs.resources import ImpressionSource, StorageResource
    from ml_assets.ranking.synthetic import SyntheticSpec, generate_day

    landing = tmp_path / "landing"
    landing.mkdir()
    generate_day(SyntheticSpec(), DAY, 300)[0].write_parquet(landing / f"{DAY}.parquet")
    resources = {
        "source": ImpressionSource(kind="parquet", path=str(landing)),
        "storage": StorageResource(base_path=str(tmp_path / "storage")),
    }
    assert dg.materialize([raw_impressions], partition_key=DAY, resources=resources,
                          instance=instance).success  # fmt: skip
    stored = tmp_path / "storage" / "raw_impressions" / f"date={DAY}" / IMPRESSIONS_FILE
    before = stored.read_bytes()
    (landing / f"{DAY}.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    again = dg.materialize([raw_impressions], partition_key=DAY, resources=resources,
                           instance=instance, raise_on_error=False)  # fmt: skip
    assert not again.success
    assert stored.read_bytes() == before


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
