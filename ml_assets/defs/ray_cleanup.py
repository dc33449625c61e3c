"""The sensor that deletes RayClusters nobody will delete any more.

A step deletes its own cluster in a `finally`; this catches what a `finally` cannot: a run worker
killed with SIGKILL, a node lost under it, a delete that kept failing. A cluster goes when the
Dagster run that created it has ended (any status) or when it is older than `max_age` whatever
its run says. A live run's cluster is never touched.
"""

from datetime import UTC, datetime

import dagster as dg

from ml_assets.defs.kuberay_resource import RayClusterApi
from ml_assets.environment import positive_setting
from ml_assets.ray.cluster_spec import LABEL_PREFIX, MANAGED_BY

MAX_AGE_HOURS_ENV = "ML_ASSETS_RAY_CLUSTER_MAX_AGE_HOURS"
DEFAULT_MAX_AGE_HOURS = 12.0


def max_age_hours() -> float:
    return positive_setting(MAX_AGE_HOURS_ENV, DEFAULT_MAX_AGE_HOURS)


def _age_hours(cluster: dict, now: datetime) -> float:
    created = datetime.strptime(cluster["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    return (now - created.replace(tzinfo=UTC)).total_seconds() / 3600


def why_orphaned(
    cluster: dict, instance: dg.DagsterInstance, now: datetime, max_age_hours: float
) -> str | None:
    """Why this cluster should go, or None when its run may still use it."""
    meta = cluster["metadata"]
    run_id = (meta.get("annotations") or {}).get(f"{LABEL_PREFIX}/run-id") or meta["labels"].get(
        f"{LABEL_PREFIX}/run-id"
    )
    age = _age_hours(cluster, now)
    if age > max_age_hours:
        return f"older than {max_age_hours:g} h ({age:.1f} h)"
    run = instance.get_run_by_id(run_id) if run_id else None
    if run is not None and run.is_finished:
        return f"run {run_id} ended ({run.status.value})"
    return None


@dg.sensor(
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Deletes ephemeral RayClusters whose Dagster run has ended, or that are older "
    f"than ${MAX_AGE_HOURS_ENV} hours (default {DEFAULT_MAX_AGE_HOURS:g}).",
)
def orphaned_ray_clusters(
    context: dg.SensorEvaluationContext, ray_cluster_api: RayClusterApi
) -> dg.SkipReason:
    from kubernetes.client import ApiException

    max_age = max_age_hours()
    namespace = ray_cluster_api.namespace
    client = ray_cluster_api.client()
    now = datetime.now(UTC)
    items = client.list(
        namespace=namespace, label_selector=f"app.kubernetes.io/managed-by={MANAGED_BY}"
    ).get("items", [])
    deleted, kept = [], 0
    for cluster in items:
        reason = why_orphaned(cluster, context.instance, now, max_age)
        if reason is None:
            kept += 1
            continue
        name = cluster["metadata"]["name"]
        try:
            client.delete(name, namespace=namespace)
        except ApiException as error:
            if error.status != 404:  # its own step deleted it meanwhile: fine
                raise
        context.log.info(f"deleted RayCluster {namespace}/{name}: {reason}")
        deleted.append(f"{name} ({reason})")
    if deleted:
        return dg.SkipReason(
            f"deleted {len(deleted)} orphaned RayCluster(s) in {namespace}: "
            + "; ".join(deleted)
            + f"; kept {kept} in use"
        )
    return dg.SkipReason(f"no orphaned RayClusters in {namespace}; {kept} in use")
