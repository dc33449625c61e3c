"""`ml-assets cluster ls` and `cluster down` against the real API server."""

import dagster as dg
import pytest
import yaml
from typer.testing import CliRunner

from ml_assets.cli import app
from ml_assets.xray.record import load_records
from ml_assets_tests.kube.conftest import apply, delete_rayclusters, list_rayclusters
from ml_assets_tests.kube.test_cleanup_sensor import cluster_for, run_with_status

runner = CliRunner()


@pytest.fixture
def cli_env(kuberay_env, admin, tmp_path, monkeypatch):
    """The operator is off (the session's default): these commands are about the API objects,
    which go afterwards (without the operator, nothing else deletes them)."""
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: whole values in the table
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    from ml_assets.runner import ensure_dagster_home

    ensure_dagster_home()
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        delete_rayclusters(admin)


def test_ls_shows_owner_run_asset_and_gpus(cli_env, admin):
    gpu = cluster_for(run_with_status(cli_env, dg.DagsterRunStatus.STARTED), "g1", "gpu-l4")
    apply(admin, [gpu])
    result = runner.invoke(app, ["cluster", "ls"])
    assert result.exit_code == 0, result.output
    name = gpu["metadata"]["name"]
    assert name in result.output and "ranking_model" in result.output
    assert gpu["metadata"]["labels"]["ml-assets.io/run-id"][:8] in result.output
    assert "RayClusters in ml-assets (1)" in result.output
    row = next(line for line in result.output.splitlines() if name in line)
    assert "│ 2 " in row  # 2 workers x 1 L4


def test_down_deletes_one_by_name_and_refuses_unknown_names(cli_env, admin):
    cluster = cluster_for(run_with_status(cli_env, dg.DagsterRunStatus.STARTED), "d1")
    apply(admin, [cluster])
    name = cluster["metadata"]["name"]
    result = runner.invoke(app, ["cluster", "down", name])
    assert result.exit_code == 0 and f"deleted RayCluster ml-assets/{name}" in result.output
    assert list_rayclusters(admin) == []
    missing = runner.invoke(app, ["cluster", "down", name])
    assert missing.exit_code == 2 and f"no RayCluster {name!r}" in missing.output


def test_down_orphans_deletes_only_clusters_whose_run_ended(cli_env, admin):
    ended = cluster_for(run_with_status(cli_env, dg.DagsterRunStatus.CANCELED), "o1")
    live = cluster_for(run_with_status(cli_env, dg.DagsterRunStatus.STARTED), "o2")
    apply(admin, [ended, live])
    result = runner.invoke(app, ["cluster", "down", "--orphans"])
    assert result.exit_code == 0, result.output
    assert (
        "ended (CANCELED)" in result.output and "1 orphaned RayCluster(s) deleted" in result.output
    )
    assert list_rayclusters(admin) == [live["metadata"]["name"]]


@pytest.mark.parametrize("args", [["cluster", "down"], ["cluster", "down", "x", "--orphans"]])
def test_down_needs_exactly_one_target(cli_env, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "either a cluster NAME or --orphans" in result.output


def test_ls_against_an_unreachable_api_server_fails_with_exit_code_1(
    cli_env, tmp_path, monkeypatch
):
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "
        "'https://127.0.0.1:9'}}]\nusers: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(dead))
    result = runner.invoke(app, ["cluster", "ls"])
    assert result.exit_code == 1 and "cannot list RayClusters in ml-assets" in result.output


def test_run_with_a_profile_sends_the_ray_steps_to_a_cluster_of_that_profile(
    cli_env, admin, real_operator, ml_home, tmp_path
):
    """`ml-assets run --profile`: the same assets, switched to kuberay by the flag alone. The
    cpu-small profile (9 CPUs) does not fit the 2-core node: the run fails with the scheduler's
    reason within the unschedulable timeout, and its cluster is gone."""
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "resources": {"source": {"config": {"rows_per_day": 2000}}},
                "ops": {"feature_vocabulary": {"config": {"train_days": 1}}},
            }
        )
    )
    days = runner.invoke(app, ["run", "raw_impressions", "ad_features", "--from", "2026-11-01",
                               "--to", "2026-11-02", "--config", str(config)])  # fmt: skip
    assert days.exit_code == 0, days.output
    # The cluster is created when ranking_model's Ray work starts, after the window is built.
    result = runner.invoke(app, ["run", "feature_vocabulary", "ranking_model",
                                 "--profile", "cpu-small", "--config", str(config)])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "on profile cpu-small (kuberay)" in result.output
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_records(dg.RunsFilter(tags={"ml-assets/cli": "run"}), limit=1)[0]
        errors = "\n".join(
            entry.dagster_event.event_specific_data.error.to_string()
            for entry in instance.all_logs(run.dagster_run.run_id)
            if entry.dagster_event is not None and entry.dagster_event.is_failure
            and getattr(entry.dagster_event.event_specific_data, "error", None)
        )  # fmt: skip
    assert "cannot be placed" in errors and "Insufficient cpu" in errors, errors
    (record,) = load_records(ml_home / "xray", run.dagster_run.run_id)
    assert record.profile == "cpu-small" and record.outcome == "failed"
    assert record.cluster.startswith("mla-") and "ready" not in record.timeline
    assert record.step == "ranking_model"  # the cluster of the step whose Ray work it ran
    assert list_rayclusters(admin) == []
