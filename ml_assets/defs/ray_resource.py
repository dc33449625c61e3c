"""The Ray resource: which Ray cluster a step runs on, chosen by configuration.

Built on dagster-ray's `RayResource` lifecycle (create -> wait -> connect -> cleanup, with cleanup
on failure and interruption). Assets take `ray_cluster: RayResource` and never know which one.

The ephemeral resources (embedded Ray, KubeRay) default to `Lifecycle(create=False)`: their
cluster lives exactly as long as the step's Ray work (`run_driver`), not as long as the resource.
A resource lives as long as the process that set it up, and an in-process executor sets up every
resource once, at run start: a cluster created then would idle through every step of the run
before and after the one that uses it.
"""

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_ray import LocalRay, RayResource
from dagster_ray.configs import Lifecycle
from pydantic import Field, PrivateAttr

from ml_assets import environment
from ml_assets.defs.xray_hooks import XRayConfig, XRayHooks

RAY_MODES = ("local", "kuberay", "address")
# The concurrency pool of every step that takes `ray_cluster`: the instance's limit on this pool
# is how many Ray clusters run at once, whichever way a step was launched (a job, a sensor, a
# materialization from the UI, a backfill).
RAY_POOL = "ray_clusters"


def init_ray(resource: RayResource, **options: Any):
    """`ray.init` as every resource here does it: the resource's own `ray_init_options` win,
    dagster-ray's injected env vars go into the runtime env, Ray Data options apply after."""
    import ray

    options |= dict(resource.ray_init_options)
    env_vars = resource.get_env_vars_to_inject()
    if env_vars:
        options.setdefault("runtime_env", {}).setdefault("env_vars", {}).update(env_vars)
    context = ray.init(**options)
    resource.data_execution_options.apply()
    return context


def embedded_ray_options() -> dict[str, Any]:
    """`ray.init` options of the embedded Ray: no dashboard (not in `ray[train,data]`), worker
    logs into the step's log, and without the dashboard's State API, Ray Train's once-a-second
    complaint about it kept out of that log (ml_assets.ray.worker_setup says why).

    No preemption watcher either: Ray Train starts it as one more actor, a Python process of its
    own (about 2.5 CPU-seconds on 2 cores, while the first epoch runs), to watch for nodes that
    a cloud is about to take away. The embedded Ray's one node is this machine."""
    return {
        "include_dashboard": False,
        "log_to_driver": True,
        "runtime_env": {
            "worker_process_setup_hook": "ml_assets.ray.worker_setup.quiet_missing_state_api",
            "env_vars": {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"},
        },
    }


class StepLifecycle(Lifecycle):
    """dagster-ray's lifecycle with creation left to the step's Ray work (`step_cluster`).
    A subclass, not `Lifecycle(create=False)` as a field default: Dagster's config schema takes
    a nested config's defaults from its class."""

    create: bool = Field(
        default=False,
        description="False: the cluster starts when the step's Ray work starts and is deleted "
        "when that work returns. True: it starts at resource setup and is deleted at teardown "
        "(for an in-process executor: it lives through the whole run).",
    )


class LocalRayCluster(XRayHooks, LocalRay):
    """An embedded Ray started for the step and shut down after it.

    dagster-ray's `LocalRay` with explicit sizing: on a shared machine a step must not grab every
    core, and the dashboard (not in `ray[train,data]`) stays off. `ray.init()` picks free random
    ports, so it never collides with services on Ray's default port 6379.
    """

    num_cpus: int | None = Field(
        ge=1, default=None, description="Logical CPUs of the embedded Ray. None: all cores."
    )
    num_gpus: int | None = Field(
        ge=0, default=None, description="GPUs of the embedded Ray. None: those Ray detects."
    )
    object_store_memory_mb: int | None = Field(
        gt=0,
        default=None,
        description="Object store size in MiB. None: Ray's default (30% of RAM).",
    )
    xray: XRayConfig = Field(default_factory=XRayConfig, description="X-Ray collection.")
    lifecycle: StepLifecycle = Field(  # pyright: ignore[reportIncompatibleVariableOverride]
        default_factory=StepLifecycle, description="When the cluster lives."
    )

    _xray: Any = PrivateAttr(default=None)
    _xray_probes: Any = PrivateAttr(default=None)
    _xray_mlflow: Any = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        return "local-ray"

    # No tenacity retry as in the base class: a local start that fails will not heal on retry.
    def connect(self, context: Any):  # pyright: ignore[reportIncompatibleVariableOverride]
        import ray

        self.xray_start(context, "local")
        if ray.is_initialized():
            raise RuntimeError(
                "Ray is already initialized in this process; the local Ray resource starts its "
                "own per step. Call ray.shutdown() first, or use the `address` mode to share one."
            )
        options = embedded_ray_options()
        if self.num_cpus is not None:
            options["num_cpus"] = self.num_cpus
        if self.num_gpus is not None:
            options["num_gpus"] = self.num_gpus
        if self.object_store_memory_mb is not None:
            options["object_store_memory"] = self.object_store_memory_mb * 1024 * 1024
        self._context = init_ray(self, **options)
        self.xray_connected(context)
        return self._context

    def cluster_facts(self) -> dict:
        import ray

        resources = ray.cluster_resources()
        return {
            "cpus": resources.get("CPU", 0.0),
            "memory_gib": round(resources.get("memory", 0.0) / 2**30, 2),
            "gpus": int(resources.get("GPU", 0)),
        }

    def release(self, context: Any, exception: BaseException | None) -> None:
        """Shuts this step's Ray down, X-Ray's samples and logs collected first, and ends Ray
        processes that outlive the shutdown. A later `connect` starts a fresh Ray."""
        if self._context is None:
            return
        from ml_assets.ray.leftovers import end_survivors, ray_descendants

        self.xray_collect(context)
        ray_processes = ray_descendants()
        try:
            super().cleanup(context, exception)  # ray.shutdown()
        finally:
            self._context = None
        killed = end_survivors(ray_processes)
        if killed:
            context.log.warning(
                f"the embedded Ray left {len(killed)} process(es) after shutdown; killed "
                + ", ".join(killed)
            )
        self.xray_mark("deleted")

    def cleanup(self, context: Any, exception: BaseException | None) -> None:
        try:
            self.release(context, exception)
        finally:
            self.xray_finish(context, exception)


class ExistingRayCluster(RayResource):
    """A Ray cluster that already runs (interactive development); never created or deleted."""

    address: str = Field(
        description="Ray address, e.g. `ray://head:10001`, or `auto` for a cluster on this host."
    )

    @property
    def host(self) -> str:
        return self.address.split("://")[-1].split(":")[0]

    @property
    def name(self) -> str:
        return f"ray-at-{self.address}"

    @property
    def ray_address(self) -> str:  # type: ignore[override]
        return self.address

    @property
    def created(self) -> bool:
        return True

    @property
    def ready(self) -> bool:
        return True


def run_in_process(function: str, request: dict) -> dict:
    """A step's Ray driver in the step's own process, connected to its cluster already."""
    from ml_assets.ray.job_entrypoint import load_function

    return load_function(function)(request)


_HELD: set[int] = set()  # resources whose cluster an enclosing `step_cluster` holds


@contextlib.contextmanager
def step_cluster(ray_cluster: RayResource, context: Any) -> Iterator[None]:
    """The step's cluster for its Ray work: created, readied and connected (the public halves
    of dagster-ray's setup, with its hooks) on entry, and released (deleted, or shut down) on
    exit, on failure and interruption too. `run_driver` holds it for one piece of work; a step
    that sends several to one cluster (or looks at the cluster between them) holds it around
    them, and the `run_driver` calls inside use it. A resource set up with
    `Lifecycle(create=True)`, or one that cannot release (an existing cluster), is used as it
    is: its teardown owns it."""
    release = getattr(ray_cluster, "release", None)
    if ray_cluster.lifecycle.create or release is None or id(ray_cluster) in _HELD:
        yield
        return
    _HELD.add(id(ray_cluster))
    failure: BaseException | None = None
    try:
        ray_cluster.create(context)
        ray_cluster.on_create(context)
        ray_cluster.wait(context)
        ray_cluster.on_ready(context)
        ray_cluster.connect(context)
        ray_cluster.on_connect(context)
        yield
    except BaseException as error:
        failure = error
        raise
    finally:
        _HELD.discard(id(ray_cluster))
        release(context, failure)


def run_driver(ray_cluster: RayResource, context: Any, function: str, request: dict) -> dict:
    """Runs `function` (`module:name` in ml_assets, JSON in and out) as the Ray driver of the
    step's cluster, where that cluster wants its driver: in this process for the embedded Ray
    or an existing one, as a Ray job on the head for KubeRay. Asset code is the same for all.
    The cluster lives while this runs (`step_cluster`)."""
    run = getattr(ray_cluster, "run_driver", None)
    with step_cluster(ray_cluster, context):
        try:
            if run is not None:
                return run(context, function, request)
            return run_in_process(function, request)
        except BaseException as error:  # an interruption included: no STEP_FAILURE is logged yet
            if isinstance(ray_cluster, XRayHooks):
                ray_cluster.xray_failed(error)
            raise


def ray_cluster_resource(mode: str, profile: str | None = None) -> RayResource:
    """The resource for a mode name (ML_ASSETS_RAY); asset code is the same for all three."""
    if mode == "local":
        return LocalRayCluster()
    if mode == "kuberay":
        from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster

        return KubeRayEphemeralCluster(**_kuberay_settings(profile))
    if mode == "address":
        return ExistingRayCluster(address=dg.EnvVar("ML_ASSETS_RAY_ADDRESS"))
    raise ValueError(f"unknown Ray mode {mode!r}; set ML_ASSETS_RAY to one of {RAY_MODES}")


def _kuberay_settings(profile: str | None = None) -> dict:
    settings = {k: v for k, v in environment.kuberay_settings().items() if v is not None}
    if profile:
        settings["profile"] = profile
    if "RAY_AUTH_TOKEN" in os.environ:  # an EnvVar: the UI shows the name, never the value
        settings["ray_auth_token"] = dg.EnvVar("RAY_AUTH_TOKEN")
    return settings


def ray_cluster_api_resource(profile: str | None = None):
    """API access for the cleanup sensor, in the namespace `kuberay` mode creates clusters in."""
    from ml_assets.defs.kuberay_resource import KubeRayEphemeralCluster, RayClusterApi

    cluster = KubeRayEphemeralCluster(**_kuberay_settings(profile))
    return RayClusterApi(
        namespace=cluster.cluster_namespace,
        kube_config=cluster.kube_config,
        kube_context=cluster.kube_context,
    )
