import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import defs

ROOT = Path(__file__).resolve().parents[2]
ASSETS = {
    "raw_impressions",
    "ad_features",
    "feature_vocabulary",
    "ranking_model",
    "model_evaluation",
    "published_model",
}
RETRIEVAL_ASSETS = {
    "ad_requests",
    "retrieval_model",
    "retrieval_evaluation",
    "published_retrieval_model",
}


def test_definitions_load_with_the_pipeline():
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS | RETRIEVAL_ASSETS
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert checks == {
        ("model_evaluation", "beats_base_rate"),
        ("model_evaluation", "calibrated"),
        ("model_evaluation", "calibrated_per_slice"),
        ("model_evaluation", "no_leakage"),
        ("retrieval_evaluation", "beats_popularity"),
    }
    assert all(graph.get_check_spec(k).blocking for k in graph.asset_check_keys)
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "daily_features",
        "train_and_publish",
        "ingest_and_retrain",
    }
    assert set(defs.resources or {}) == {
        "ray_cluster",
        "source",
        "storage",
        "mlflow_tracking",
        "automation",
        "retrieval_source",
    }
    assert {s.name for s in defs.sensors or ()} == {
        "new_impressions",
        "feature_drift",
        "request_drift",
    }
    assert {s.name for s in defs.schedules or ()} == {"daily_retrain", "retrieval_daily_retrain"}


def test_dependencies_follow_the_design():
    graph = defs.resolve_asset_graph()

    def parents(name):
        return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}

    assert parents("ad_features") == {"raw_impressions"}
    assert parents("feature_vocabulary") == {"ad_features"}
    assert parents("ranking_model") == {"ad_features", "feature_vocabulary", "raw_impressions"}
    assert parents("model_evaluation") == {"ranking_model", "ad_features", "raw_impressions"}
    assert parents("published_model") == {"model_evaluation", "ranking_model", "raw_impressions"}
    for name in ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.description and node.group_name == "ads_ranking" and node.kinds
        assert node.owners == ["team:ads-ranking"]
    # What code alone defines carries a code version; ingested data and registry moves do not.
    versioned = {n for n in ASSETS if graph.get(dg.AssetKey(n)).code_version is not None}
    assert versioned == {"ad_features", "feature_vocabulary", "ranking_model", "model_evaluation"}
    assert parents("retrieval_model") == {"ad_requests"}
    assert parents("retrieval_evaluation") == {"retrieval_model", "ad_requests"}
    assert parents("published_retrieval_model") == {"retrieval_evaluation", "retrieval_model"}
    for name in RETRIEVAL_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "ads_retrieval" and node.owners == ["team:ads-retrieval"]
    daily = {"raw_impressions", "ad_features"}
    for name in ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert (node.partitions_def is not None) == (name in daily)
        # Backfills run the daily assets one day per run; the window assets run once.
        if name in daily:
            assert node.backfill_policy == dg.BackfillPolicy.multi_run(1)


def test_every_step_on_a_ray_cluster_is_in_the_ray_pool():
    """The pool, not a job's tags, limits the clusters: it holds however a run was launched."""
    from ml_assets.defs.ray_resource import RAY_POOL

    ray_steps = {
        (job.name, op.name): op.pool
        for job in defs.resolve_all_job_defs()
        for op in job.graph.iterate_op_defs()
        if "ray_cluster" in op.required_resource_keys
    }
    assert {op for _, op in ray_steps} == {"ranking_model", "retrieval_model", "check_ray_cluster"}
    assert set(ray_steps.values()) == {RAY_POOL}
    assert not any(job.tags for job in defs.resolve_all_job_defs())


def test_dg_checks_and_lists_the_code_location(tmp_path):
    """The project as `dg` sees it (pyproject's [tool.dg]): the definitions validate, and the
    listing shows every asset with its owners and dependencies."""
    env = {**os.environ, "VIRTUAL_ENV": sys.prefix, "DAGSTER_HOME": str(tmp_path)}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env['PATH']}"
    dg_cli = os.path.join(os.path.dirname(sys.executable), "dg")
    checked = subprocess.run(
        [dg_cli, "check", "defs"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = subprocess.run(
        [dg_cli, "list", "defs", "--json"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert listed.returncode == 0, listed.stderr
    assets = {a["asset_key"]: a for a in json.loads(listed.stdout)["assets"]}
    assert set(assets) == ASSETS | RETRIEVAL_ASSETS
    assert set(assets["model_evaluation"]["dependency_keys"]) == {
        "ranking_model", "ad_features", "raw_impressions"
    }  # fmt: skip
    assert all(assets[name]["owners"] == [{"team": "ads-ranking"}] for name in ASSETS)
    assert all(assets[n]["owners"] == [{"team": "ads-retrieval"}] for n in RETRIEVAL_ASSETS)


def test_code_location_loads_without_heavy_libraries():
    """Loading the definitions must not import ray, torch, mlflow or kubernetes."""
    code = (
        "import sys, ml_assets.definitions; "
        "print(','.join(m for m in ('ray', 'torch', 'mlflow', 'kubernetes') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_environment_is_refused(monkeypatch):
    from ml_assets import environment

    monkeypatch.setenv("ML_ASSETS_ENV", "staging")
    try:
        environment.environment()
    except ValueError as error:
        assert "ML_ASSETS_ENV='staging'" in str(error) and "local" in str(error)
    else:
        raise AssertionError("expected a ValueError")


def test_kuberay_mode_is_configuration_not_code():
    """The same module, with ML_ASSETS_RAY=kuberay, loads the ephemeral-cluster resource and the
    cleanup sensor, still without importing the heavy libraries."""
    code = (
        "import sys, ml_assets.definitions as d; "
        "print(type(d.defs.resources['ray_cluster']).__name__, "
        "d.defs.resources['ray_cluster_api'].namespace, "
        "','.join(s.name for s in d.defs.sensors), "
        "[m for m in ('ray', 'torch', 'mlflow', 'kubernetes') if m in sys.modules])"
    )
    env = {**os.environ, "ML_ASSETS_RAY": "kuberay", "ML_ASSETS_RAY_PROFILE": "gpu-l4"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == [
        "KubeRayEphemeralCluster",
        "ml-assets",
        "orphaned_ray_clusters,new_impressions,feature_drift,request_drift",
        "[]",
    ]


def test_in_a_pod_the_kuberay_resource_takes_its_pod_as_the_clusters_owner(monkeypatch, caplog):
    """The run pod's downward-API variables make it the owner of its clusters; a pod in another
    namespace than the clusters cannot own them, and the step says so instead of having the
    garbage collector delete each cluster as it is created."""
    import logging

    from ml_assets.defs.ray_resource import ray_cluster_resource

    pod = {"ML_ASSETS_POD_NAME": "dagster-run-1-x", "ML_ASSETS_POD_UID": "0a1b-2c3d"}
    for name, value in {**pod, "ML_ASSETS_POD_NAMESPACE": "ml-assets"}.items():
        monkeypatch.setenv(name, value)
    cluster = ray_cluster_resource("kuberay", profile="dev")
    log = logging.getLogger("kuberay-test")
    context = type("Context", (), {"log": log})()
    owner = cluster._owner_pod(context, "ml-assets")
    assert owner is not None and (owner.name, owner.uid) == ("dagster-run-1-x", "0a1b-2c3d")
    monkeypatch.setenv("ML_ASSETS_POD_NAMESPACE", "dagster")
    with caplog.at_level(logging.WARNING, logger="kuberay-test"):
        assert ray_cluster_resource("kuberay")._owner_pod(context, "ml-assets") is None
    assert "ML_ASSETS_RAY_NAMESPACE" in caplog.text
    for name in pod:
        monkeypatch.delenv(name)
    assert ray_cluster_resource("kuberay")._owner_pod(context, "ml-assets") is None


def test_unknown_ray_mode_is_refused(monkeypatch):
    from ml_assets.defs.ray_resource import ray_cluster_resource

    try:
        ray_cluster_resource("kubernetes")
    except ValueError as error:
        assert "'kubernetes'" in str(error) and "kuberay" in str(error)
    else:
        raise AssertionError("expected a ValueError")


def test_per_slice_calibration_check_blocks_a_segment_that_is_far_off():
    from ml_assets.defs.ads_ranking.evaluation.assets import calibrated_per_slice

    thresholds = {"slice_calibration_floor": 0.7, "slice_calibration_ceiling": 1.4,
                  "slice_min_clicks": 200}  # fmt: skip
    evaluation = {
        "thresholds": thresholds,
        "slice_feature": "C1",
        "calibration_by_slice": {
            "x": {"rows": 9000, "clicks": 2000, "calibration": 1.01},
            "y": {"rows": 4000, "clicks": 900, "calibration": 0.55},
        },
    }
    result = calibrated_per_slice(model_evaluation=evaluation)
    assert not result.passed and "C1=y: 0.550" in (result.description or "")
    evaluation["calibration_by_slice"]["y"]["calibration"] = 0.95
    assert calibrated_per_slice(model_evaluation=evaluation).passed


def test_the_mlflow_server_comes_from_mlflow_tracking_uri_and_production_requires_one(
    monkeypatch, tmp_path
):
    import dagster as dg

    from ml_assets.definitions import build_resources

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    assert build_resources("local")["mlflow_tracking"].resolved_tracking_uri.startswith("sqlite:")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.ml-assets:5000")
    resources = build_resources("local")
    with dg.build_resources({"mlflow_tracking": resources["mlflow_tracking"]}) as built:
        assert built.mlflow_tracking.resolved_tracking_uri == "http://mlflow.ml-assets:5000"
    monkeypatch.setenv("ML_ASSETS_ENV", "production")
    for local in ("sqlite:////tmp/mlflow.db", ""):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", local)
        with pytest.raises(ValueError, match="production needs MLFLOW_TRACKING_URI set"):
            build_resources("local")


def test_using_the_local_registry_leaves_the_deployments_mlflow_setting_alone(
    monkeypatch, tmp_path
):
    """mlflow exports the URI it is given as MLFLOW_TRACKING_URI; in a long-lived process the
    next definitions load would take one run's local store for the deployment's server."""
    from ml_assets.definitions import build_resources

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("ML_ASSETS_HOME", str(tmp_path))
    build_resources("local")["mlflow_tracking"].client().search_registered_models()
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert build_resources("local")["mlflow_tracking"].tracking_uri == ""  # still the local one


ASSET_JOB = type(dg.define_asset_job("probe"))  # what define_asset_job returns (not exported)


def defined_under(package) -> dict[str, set[str]]:
    """Every asset, check, job, sensor and schedule bound to a module-level name under
    `package`, by kind: what a file added there defines."""
    import importlib
    import pkgutil

    found: dict[str, set[str]] = {"assets": set(), "checks": set(), "jobs": set(),
                                  "sensors": set(), "schedules": set()}  # fmt: skip
    for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        for value in vars(importlib.import_module(module_info.name)).values():
            if isinstance(value, dg.AssetChecksDefinition):
                found["checks"] |= {key.name for key in value.check_keys}
            elif isinstance(value, dg.AssetsDefinition):
                found["assets"] |= {key.to_user_string() for key in value.keys}
            elif isinstance(value, dg.JobDefinition | ASSET_JOB):
                found["jobs"].add(value.name)
            elif isinstance(value, dg.SensorDefinition):
                found["sensors"].add(value.name)
            elif isinstance(value, dg.ScheduleDefinition):
                found["schedules"].add(value.name)
    return found


def test_nothing_defined_under_defs_is_left_out_of_the_code_location():
    # Pipelines are wired explicitly (Definitions.merge of each pipeline's definitions): a
    # definition in a new file under defs/ that nobody wired would be silently missing.
    import ml_assets.defs
    from ml_assets.definitions import build_definitions

    # Read from the Definitions' own lists: resolving them would need an instance's context.
    location = build_definitions("kuberay")  # the mode with every sensor
    assets = [a for a in location.assets or [] if isinstance(a, dg.AssetsDefinition)]
    checks = [c for c in location.asset_checks or [] if isinstance(c, dg.AssetChecksDefinition)]
    wired = {
        "assets": {key.to_user_string() for a in assets for key in a.keys},
        "checks": {key.name for c in checks for key in c.check_keys},
        "jobs": {job.name for job in location.jobs or []},
        "sensors": {sensor.name for sensor in location.sensors or []},
        "schedules": {schedule.name for schedule in location.schedules or []},
    }
    found = defined_under(ml_assets.defs)
    assert found["assets"] >= ASSETS and found["sensors"]  # the walk sees the pipeline
    for kind, names in found.items():
        assert names <= wired[kind], f"{kind} defined under defs/ but not in the code location"
