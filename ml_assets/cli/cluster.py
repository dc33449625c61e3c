"""`ml-assets cluster`: plan a RayCluster from a profile; list and delete live ephemeral ones."""

import datetime as dt
import re
import sys

import typer
import yaml
from rich.table import Table

from ml_assets.cli.common import FAILED, console, errors, fail

app = typer.Typer(no_args_is_help=True, help="Plan, list and delete ephemeral RayClusters.")


def _memory_gib(value: str) -> float:
    """A Kubernetes quantity (`32Gi`, `512Mi`, `32G` = 32e9 bytes), or a bare number of GiB."""
    from kubernetes.utils import parse_quantity

    text = value.strip()
    try:
        gib = float(text if re.fullmatch(r"\d+(\.\d+)?", text) else parse_quantity(text) / 2**30)
    except (ValueError, ArithmeticError):
        fail(f"--memory {value!r} is not a size", "write it like 32Gi, 512Mi, 32G or 16 (GiB)")
    if not 0 < gib < float("inf"):
        fail(f"--memory {value!r} is not a positive size", "write it like 32Gi or 512Mi")
    return gib


@app.command()
def plan(
    profile: str = typer.Option(..., help="Profile name (k8s/profiles/<name>.yaml)."),
    gpus: int | None = typer.Option(None, min=0, help="GPUs per worker."),
    gpu_type: str | None = typer.Option(None, help="GPU type, e.g. nvidia-l4."),
    workers: int | None = typer.Option(None, min=0, help="Worker pods."),
    cpu: float | None = typer.Option(None, help="CPU cores per worker."),
    memory: str | None = typer.Option(None, help="Memory per worker, e.g. 32Gi."),
) -> None:
    """Render and validate the RayCluster YAML for a profile; creates nothing (a dry run).
    The YAML goes to stdout (pipe it to `kubectl apply --dry-run=server -f -`)."""
    from ml_assets.ray.cluster_spec import ClusterOwner, render_raycluster
    from ml_assets.ray.profiles import ProfileError, load_profile, with_overrides

    try:
        chosen = with_overrides(
            load_profile(profile),
            gpus_per_worker=gpus,
            gpu_type=gpu_type,
            workers=workers,
            worker_cpu=cpu,
            worker_memory_gib=_memory_gib(memory) if memory else None,
        )
        manifest = render_raycluster(chosen, ClusterOwner(run_id="planned", asset="plan"))
    except ProfileError as error:
        fail(str(error))
    errors.print(
        f"[green]ok[/green] {chosen.name}: {chosen.workers} workers x {chosen.worker_cpu:g} CPU, "
        f"{chosen.worker_memory_gib:g} GiB"
        + (f", {chosen.gpus_per_worker} x {chosen.gpu_type}" if chosen.gpu_type else "")
        + f"; total {chosen.total_cpu:g} CPU, {chosen.total_memory_gib:g} GiB, "
        f"{chosen.total_gpus} GPUs (quota {chosen.quota.max_gpus}); namespace {chosen.namespace}"
    )
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False))


def _api(namespace: str | None):
    """The cleanup sensor's API access, from the same settings as `kuberay` mode."""
    from ml_assets.defs.kuberay_resource import RayClusterApi
    from ml_assets.defs.ray_resource import ray_cluster_api_resource

    api = ray_cluster_api_resource()
    if namespace:
        api = RayClusterApi(
            namespace=namespace, kube_config=api.kube_config, kube_context=api.kube_context
        )
    try:
        return api, api.client()
    except Exception as error:
        fail(f"cannot reach Kubernetes: {error}", "set KUBECONFIG to a reachable cluster", FAILED)


def _list(api, client) -> list[dict]:
    from ml_assets.ray.cluster_spec import MANAGED_BY

    try:
        return client.list(
            namespace=api.namespace, label_selector=f"app.kubernetes.io/managed-by={MANAGED_BY}"
        ).get("items", [])
    except Exception as error:
        fail(
            f"cannot list RayClusters in {api.namespace}: {error}",
            "check KUBECONFIG and that the KubeRay CRD is installed",
            FAILED,
        )


def _gpus(cluster: dict) -> int:
    total = 0
    for group in cluster["spec"].get("workerGroupSpecs") or []:
        for container in group["template"]["spec"]["containers"]:
            limit = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)
            total += int(limit) * int(group.get("replicas", 0))
    return total


def _age(cluster: dict, now: dt.datetime) -> str:
    created = dt.datetime.strptime(
        cluster["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=dt.UTC)
    seconds = int((now - created).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds}s"


@app.command("ls")
def list_clusters(
    namespace: str | None = typer.Option(None, help="Namespace; default: the profile's."),
) -> None:
    """The live ephemeral RayClusters: age, owner run, asset, partition, GPUs, state."""
    from ml_assets.ray.cluster_spec import LABEL_PREFIX

    api, client = _api(namespace)
    clusters = _list(api, client)
    table = Table(title=f"RayClusters in {api.namespace} ({len(clusters)})")
    # Names are what `cluster down` takes: never truncated, whatever the terminal's width.
    longest = max((len(c["metadata"]["name"]) for c in clusters), default=4)
    table.add_column("name", no_wrap=True, min_width=longest)
    for column in ("age", "run", "asset", "partition", "profile", "GPUs", "state"):
        table.add_column(column)
    now = dt.datetime.now(dt.UTC)
    for cluster in clusters:
        meta = cluster["metadata"]
        notes = meta.get("annotations") or {}
        labels = meta.get("labels") or {}
        table.add_row(
            meta["name"],
            _age(cluster, now),
            notes.get(f"{LABEL_PREFIX}/run-id", "-")[:8],
            notes.get(f"{LABEL_PREFIX}/asset", "-"),
            notes.get(f"{LABEL_PREFIX}/partition") or "-",
            labels.get(f"{LABEL_PREFIX}/profile", "-"),
            str(_gpus(cluster)),
            (cluster.get("status") or {}).get("state") or "pending",
        )
    console.print(table)


@app.command()
def down(
    name: str | None = typer.Argument(None, help="The RayCluster to delete."),
    orphans: bool = typer.Option(False, help="Delete every cluster whose run has ended."),
    namespace: str | None = typer.Option(None, help="Namespace; default: the profile's."),
) -> None:
    """Delete one ephemeral RayCluster by NAME, or --orphans (clusters whose run has ended)."""
    from kubernetes.client import ApiException

    if bool(name) == orphans:
        fail("give either a cluster NAME or --orphans", "see `ml-assets cluster ls`")
    api, client = _api(namespace)
    if name:
        try:
            client.delete(name, namespace=api.namespace)
        except ApiException as error:
            if error.status == 404:
                fail(f"no RayCluster {name!r} in {api.namespace}", "see `ml-assets cluster ls`")
            raise
        console.print(f"deleted RayCluster {api.namespace}/{name}")
        return
    from ml_assets.cli.common import dagster_instance
    from ml_assets.defs.ray_cleanup import max_age_hours, why_orphaned

    instance = dagster_instance()
    now = dt.datetime.now(dt.UTC)
    deleted = 0
    for cluster in _list(api, client):
        reason = why_orphaned(cluster, instance, now, max_age_hours())
        if reason is not None:
            client.delete(cluster["metadata"]["name"], namespace=api.namespace)
            console.print(f"deleted {cluster['metadata']['name']}: {reason}")
            deleted += 1
    console.print(f"{deleted} orphaned RayCluster(s) deleted")
