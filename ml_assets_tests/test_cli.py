"""`ml-assets` commands for real: the installed entry point, a real Dagster instance, real files.

The Kubernetes commands (`cluster ls/down`) run against the test API server in
`kube/test_cli_cluster.py`; `models` and `reproduce` against a real registry in the end-to-end test.
"""

import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from ml_assets.cli import app
from ml_assets_tests.conftest import VENV_BIN
from ml_assets_tests.xray.test_report import a_record

runner = CliRunner()
COMMANDS = [[], ["demo"], ["run"], ["backfill"], ["cluster"], ["cluster", "plan"],
            ["cluster", "ls"], ["cluster", "down"], ["xray"], ["models"],
            ["reproduce"], ["models", "promote"], ["models", "rollback"]]  # fmt: skip


@pytest.fixture
def dagster_home(tmp_path, monkeypatch, ml_home):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_the_installed_command_runs_and_explains_itself():
    result = subprocess.run(
        [str(VENV_BIN / "ml-assets"), "--help"], capture_output=True, text=True, check=True
    )
    for command in {c[0] for c in COMMANDS if c}:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_cluster_plan_prints_a_valid_raycluster_with_the_overrides():
    result = invoke("cluster", "plan", "--profile", "gpu-l4", "--workers", "3", "--memory", "48Gi")
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.stdout[result.stdout.index("apiVersion") :])
    (group,) = manifest["spec"]["workerGroupSpecs"]
    assert manifest["kind"] == "RayCluster" and group["replicas"] == 3
    assert group["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "48Gi"
    assert "3 GPUs (quota 4)" in result.output


def test_memory_quantities_are_read_as_kubernetes_reads_them():
    from ml_assets.cli.cluster import _memory_gib

    assert _memory_gib("32Gi") == 32 and _memory_gib("512Mi") == 0.5 and _memory_gib("16") == 16
    assert _memory_gib("32G") == 32e9 / 2**30  # SI: 29.8 GiB, not 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "gpu-b200"], "no cluster profile 'gpu-b200'"),
        (["--profile", "gpu-l4", "--workers", "5"], "above its quota of 4"),
        (["--profile", "gpu-l4", "--gpu-type", "nvidia-b300"], "unknown GPU type"),
        (["--profile", "cpu-small", "--memory", "lots"], "is not a size"),
        (["--profile", "cpu-small", "--memory", "1e400Gi"], "is not a positive size"),
        (["--profile", "cpu-small", "--memory", "-1Gi"], "is not a positive size"),
        (["--profile", "cpu-small", "--gpus", "2"], "without a GPU type"),
    ],
)
def test_cluster_plan_refuses_what_cannot_run(args, message):
    result = invoke("cluster", "plan", *args)
    assert result.exit_code == 2 and message in result.output and "fix:" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partition", "2026-11-01", "--from", "2026-11-01", "--to", "2026-11-02"], "exclude"),
        (["--from", "2026-11-01"], "go together"),
        (["--partition", "11/01/2026"], "is not a date"),
        (["--from", "2026-11-05", "--to", "2026-11-01"], "is after"),
        (["no_such_asset", "--partition", "2026-11-01"], "unknown asset(s): no_such_asset"),
        (["raw_impressions"], "are daily assets"),
        (["raw_impressions", "--partition", "1999-01-01"], "outside the daily partitions"),
        (["ranking_model", "--profile", "gpu-b200"], "no cluster profile 'gpu-b200'"),
        (["ranking_model", "--config", "/no/such.yaml"], "does not exist"),
    ],
)
def test_run_refuses_bad_arguments_before_running_anything(dagster_home, args, message):
    result = invoke("run", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not dagster_home.exists()  # nothing ran, no instance was even created


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ops: [unclosed", "is not valid YAML"),
        ("- a\n- b\n", "not a mapping"),
        ("ops: [1]", "`ops:` holds a value of type list"),
        ("resorces: {}", "unknown section(s) 'resorces'"),
        ("ops: {feature_vocabulary: {config: {train_days: x}}}", "does not fit these assets"),
        ("ops: {feature_vocabulary: {config: {train_dayz: 1}}}", 'unexpected config entry "train'),
    ],
)
def test_run_refuses_a_bad_config_file(dagster_home, tmp_path, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    result = invoke("run", "feature_vocabulary", "--config", str(config))
    assert result.exit_code == 2 and message in result.output, result.output
    assert not dagster_home.exists()  # nothing ran, no instance was even created


def test_run_materializes_days_then_the_window(dagster_home, tmp_path):
    import dagster as dg

    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "resources": {"source": {"config": {"rows_per_day": 2000}}},
                "ops": {"feature_vocabulary": {"config": {"train_days": 1}}},
            }
        )
    )
    days = invoke("run", "raw_impressions", "ad_features", "--from", "2026-11-01",
                  "--to", "2026-11-02", "--config", str(config))  # fmt: skip
    assert days.exit_code == 0, days.output
    assert "2026-11-02: raw_impressions, ad_features ok" in days.output
    window = invoke("run", "feature_vocabulary", "--config", str(config))
    assert window.exit_code == 0, window.output
    with dg.DagsterInstance.get() as instance:
        partitions = instance.get_materialized_partitions(dg.AssetKey("ad_features"))
        assert partitions == {"2026-11-01", "2026-11-02"}
        vocabulary = instance.get_latest_materialization_event(dg.AssetKey("feature_vocabulary"))
        assert vocabulary is not None
        runs = instance.get_run_records(dg.RunsFilter(tags={"ml-assets/cli": "run"}))
        assert len(runs) == 3 and all(r.dagster_run.is_success for r in runs)


def test_run_reports_a_failing_run_with_exit_code_1(dagster_home, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump({"resources": {"source": {"config": {"kind": "parquet",
                                                            "path": str(tmp_path / "none")}}}})
    )  # fmt: skip
    result = invoke("run", "raw_impressions", "--partition", "2026-11-01", "--config", str(config))
    assert result.exit_code == 1 and "failed" in result.output


def test_xray_shows_a_record_and_writes_its_html(ml_home, tmp_path):
    record = a_record()
    record.save(ml_home / "xray" / record.run_id / record.step)
    shown = invoke("xray", record.run_id[:8], "--html", str(tmp_path / "r.html"))
    assert shown.exit_code == 0, shown.output
    assert "ranking_model on mla-ranking-model-0c0ffee0-ab12cd" in shown.output
    assert "training_finished" in shown.output and "9,001" in shown.output
    assert "<title>X-Ray ranking_model 0c0ffee0</title>" in (tmp_path / "r.html").read_text()


def test_xray_of_an_unknown_run_fails_with_exit_code_1(ml_home):
    result = invoke("xray", "deadbeef")
    assert result.exit_code == 1 and "no X-Ray record for run 'deadbeef'" in result.output


def test_reproduce_refuses_a_version_that_is_not_a_number(ml_home):
    result = invoke("reproduce", "latest")
    assert result.exit_code == 2 and "is not a number" in result.output


def test_models_lists_a_local_sqlite_registry(ml_home, monkeypatch):
    """The demo's registry (SQLite) returns versions as ints, a server as strings."""
    from mlflow import MlflowClient

    from ml_assets.environment import local_mlflow_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    uri = local_mlflow_tracking_uri()
    ml_home.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri, uri)
    run = client.create_run(client.create_experiment("cli-test"))
    client.log_metric(run.info.run_id, "holdout_model_auc", 0.8123)
    client.create_registered_model("ads_ctr_ranker")
    version = client.create_model_version(
        "ads_ctr_ranker",
        source=str(ml_home / "model"),
        run_id=run.info.run_id,
        tags={"train_dates": "['2026-11-01', '2026-11-02']", "gate.promoted": "True"},
    )
    client.set_registered_model_alias("ads_ctr_ranker", "champion", version.version)
    result = invoke("models")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ 1 "))
    assert "champion" in row and "0.8123" in row and "2026-11-01..2026-11-02" in row
    assert invoke("models", "--name", "no_such_model").exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-08", "--to", "2026-11-06"], "is after --to"),
        (["--from", "2026-11-06", "--to", "2035-01-01"], "outside the daily partitions"),
        (["--from", "yesterday", "--to", "2026-11-06"], "is not a date"),
    ],
)
def test_backfill_refuses_bad_ranges(dagster_home, args, message):
    result = invoke("backfill", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_backfill_refuses_per_asset_config(dagster_home, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("ops:\n  ranking_model:\n    config:\n      epochs: 1\n")
    result = invoke(
        "backfill", "--from", "2026-11-06", "--to", "2026-11-08", "--config", str(config)
    )
    assert result.exit_code == 2 and "keep only `resources:`" in result.output


def test_backfill_submits_days_and_one_window_to_the_instance(dagster_home):
    import dagster as dg

    result = invoke("backfill", "--from", "2026-11-06", "--to", "2026-11-08")
    assert result.exit_code == 0, result.output
    assert "3 day run(s), then one training run" in result.output
    assert "no dagster-daemon serves this instance" in result.output  # none runs in this test
    with dg.DagsterInstance.get() as instance:
        (backfill,) = instance.get_backfills()
        target = backfill.asset_backfill_data.target_subset
    days = {k.to_user_string(): sorted(v.get_partition_keys())
            for k, v in target.partitions_subsets_by_asset_key.items()}  # fmt: skip
    assert days == {
        "raw_impressions": ["2026-11-06", "2026-11-07", "2026-11-08"],
        "ad_features": ["2026-11-06", "2026-11-07", "2026-11-08"],
    }
    assert {k.to_user_string() for k in target.non_partitioned_asset_keys} == {
        "feature_vocabulary", "ranking_model", "model_evaluation", "published_model"
    }  # fmt: skip
    assert backfill.backfill_id in result.output
