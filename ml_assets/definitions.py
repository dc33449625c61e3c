"""The code location's single entry point (workspace.yaml and `dg` load this module)."""

import os

import dagster as dg

from ml_assets import environment
from ml_assets.defs.ads_ranking.pipeline import ads_ranking_definitions
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.cluster_check import ray_cluster_check
from ml_assets.defs.ray_resource import ray_cluster_api_resource, ray_cluster_resource
from ml_assets.defs.resources import (
    ImpressionSource,
    MlflowResource,
    StorageResource,
    StoredValuesIOManager,
)
from ml_assets.defs.retrieval.pipeline import RESOURCES as RETRIEVAL_RESOURCES
from ml_assets.defs.retrieval.pipeline import retrieval_definitions
from ml_assets.environment import S3_SETTINGS


def build_resources(ray_mode: str, profile: str | None = None) -> dict:
    """Resources for the current environment (ML_ASSETS_ENV), decided here and nowhere else."""
    environment.environment()  # fail fast on an unknown environment name
    kuberay = ray_mode == "kuberay"
    # Read when the resource is used, so the UI shows the setting's name, never its value.
    mlflow = (
        MlflowResource(tracking_uri=dg.EnvVar(environment.MLFLOW_TRACKING_URI))
        if environment.mlflow_tracking_uri()
        else MlflowResource()
    )
    storage = build_storage()
    return {
        "ray_cluster": ray_cluster_resource(ray_mode, profile),
        **({"ray_cluster_api": ray_cluster_api_resource(profile)} if kuberay else {}),
        "source": ImpressionSource(),
        "storage": storage,
        # Values handed between steps live beside the data where the deployment names a root;
        # locally Dagster's own default ($DAGSTER_HOME/storage) keeps them.
        **({"io_manager": StoredValuesIOManager(storage=storage)} if storage.base_path else {}),
        "mlflow_tracking": mlflow,
        "automation": AutomationSettings(),
    }


def build_storage() -> StorageResource:
    """The storage root and its S3 endpoint and credentials, each read from its environment
    variable when the resource is used (the UI shows the variable's name, never a secret)."""
    if not environment.storage_root():
        return StorageResource()
    endpoint, key, secret = S3_SETTINGS
    fields = {
        "base_path": environment.STORAGE_ROOT,
        "s3_endpoint_url": endpoint,
        "access_key_id": key,
        "secret_access_key": secret,
    }
    return StorageResource(
        **{field: dg.EnvVar(name) for field, name in fields.items() if os.environ.get(name)}
    )


def platform_sensors(ray_mode: str) -> list:
    """The cleanup sensor, where ephemeral clusters exist."""
    if ray_mode != "kuberay":
        return []
    from ml_assets.defs.ray_cleanup import orphaned_ray_clusters

    return [orphaned_ray_clusters]


def build_definitions(
    ray_mode: str | None = None, profile: str | None = None, resources: dict | None = None
) -> dg.Definitions:
    """The code location: the platform's jobs, sensors and resources, and every pipeline's
    definitions; by default as ML_ASSETS_RAY says (the CLI's --profile overrides). `resources`
    replaces single resources, e.g. a file source for a deployment or a test."""
    mode = ray_mode or environment.ray_mode()
    platform = dg.Definitions(
        jobs=[ray_cluster_check],
        sensors=platform_sensors(mode),
        resources={**build_resources(mode, profile), **RETRIEVAL_RESOURCES, **(resources or {})},
    )
    return dg.Definitions.merge(platform, ads_ranking_definitions(), retrieval_definitions())


defs = build_definitions()
