"""`kuberay` mode: an ephemeral RayCluster per materialization, created, used and always deleted.

Lifecycle (dagster-ray's `RayResource`, driven by `step_cluster` when the step's Ray work starts):
pre-flight -> create -> wait until ready -> the step's Ray jobs -> delete, with the delete in a
`finally` that also runs on step failure, readiness timeout, Dagster step retry (every attempt
owns a new cluster) and run cancellation, including a cancellation that lands while the create
request is in flight.

The step never joins the cluster. Its Ray work goes to the head as a Ray job (`run_driver`:
dagster-ray's `PipesRayJobClient` against the Jobs API, with the token), because a Ray driver
needs its node's raylet socket and shared memory: a process on another host (the run pod) that
joins through the GCS address crashes with a fatal check, and Ray Client (`ray://`) does not
carry Ray Data or Ray Train V2 on Ray 2.60 (measured: "'Worker' object has no attribute
'core_worker'", and a one-step TorchTrainer hanging in `GetTimeoutError`).

Why a RayCluster owned by this resource, rather than a RayJob: a step may send several jobs to
one cluster, and it deletes the cluster itself the moment it ends. A step killed with SIGKILL
cannot. Two things delete its cluster then:
- the cluster side: in a pod (the `owner_pod_*` settings, from the downward API), the cluster's
  ownerReference is that pod, so Kubernetes' garbage collector deletes the cluster when the pod
  goes; a run pod goes with its Job, `ttlSecondsAfterFinished` after the run ended;
- the cleanup sensor (`defs/ray_cleanup.py`), once the Dagster instance says the run has ended.
The KubeRay API calls themselves are dagster-ray's `RayClusterClient`.
"""

import time
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_ray import RayResource
from pydantic import Field, PrivateAttr

from ml_assets.defs.ray_resource import StepLifecycle
from ml_assets.defs.xray_hooks import XRayConfig, XRayHooks, executing_step
from ml_assets.ray.cluster_spec import LABEL_PREFIX, ClusterOwner, OwnerPod, render_raycluster
from ml_assets.ray.profiles import DEFAULT_PROFILES_DIR, load_profile, with_overrides

DELETE_ATTEMPTS = 4


class ClusterDoesNotFitError(RuntimeError):
    """The scheduler cannot place a pod of the cluster: waiting longer would not help."""


def owner_of(context: Any, owner_uid: str, pod: OwnerPod | None = None) -> ClusterOwner:
    """The run, asset (the step's op), partition and code version a cluster is created for."""
    run = context.dagster_run
    tags = run.tags if run is not None else {}
    partition = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags
        else None
    )
    return ClusterOwner(
        run_id=run.run_id if run is not None else "no-run",
        asset=executing_step(context),
        partition=partition,
        owner_uid=owner_uid,
        pod=pod,
    )


def raycluster_client(kube_config: str | None, kube_context: str | None):
    from dagster_ray.kuberay.client import RayClusterClient

    return RayClusterClient(kube_config=kube_config, kube_context=kube_context)


class RayClusterApi(dg.ConfigurableResource):
    """List and delete this code location's RayClusters without creating one (for the cleanup
    sensor: a `KubeRayEphemeralCluster` parameter would create a cluster on every tick)."""

    namespace: str = Field(default="ml-assets", description="Namespace the clusters live in.")
    kube_config: str | None = Field(default=None, description="Kubeconfig path.")
    kube_context: str | None = Field(default=None, description="Kubeconfig context.")

    def client(self):
        return raycluster_client(self.kube_config, self.kube_context)


JOB_ENTRYPOINT = "ml_assets.ray.job_entrypoint"


def session_keeping_job_client(address: str, headers: dict[str, str]):
    """dagster-ray's `PipesRayJobClient`, keeping its Pipes session: the custom messages of a
    job that failed (its X-Ray samples and logs) stay readable after `run` raised."""
    from dagster_ray.core.pipes import PipesRayJobClient

    class SessionKeepingRayJobClient(PipesRayJobClient):
        session: Any = None

        def _start(self, context, session, submit_job_params):
            self.session = session
            return super()._start(context, session, submit_job_params)

    return SessionKeepingRayJobClient(address=address, headers=headers, timeout=60)


HEAD_ADDRESSES = ("service-dns", "service-ip", "pod-ip")


class KubeRayEphemeralCluster(XRayHooks, RayResource):
    """A RayCluster rendered from a cluster profile, living exactly as long as one step."""

    profile: str = Field(default="cpu-small", description="Cluster profile name (k8s/profiles/).")
    profiles_dir: str | None = Field(
        default=None, description="Directory of profile YAML files. None: the repository's."
    )
    workers: int | None = Field(
        ge=0, default=None, description="Override the profile's worker count."
    )
    namespace: str | None = Field(default=None, description="Override the profile's namespace.")
    kube_config: str | None = Field(
        default=None, description="Kubeconfig path. None: ~/.kube/config, else in-cluster."
    )
    kube_context: str | None = Field(default=None, description="Kubeconfig context.")
    connect_host: str | None = Field(
        default=None,
        description="Host to reach the head on instead of the one `head_address` picks, e.g. "
        "127.0.0.1 behind `kubectl port-forward`.",
    )
    head_address: str = Field(
        default="service-dns",
        description="How the step reaches the head: `service-dns` (`<svc>.<ns>.svc.cluster."
        "local`, from a pod), `service-ip` or `pod-ip` (from a host routed into the cluster "
        "network without its DNS).",
    )
    ray_auth_token: str | None = Field(
        default=None,
        description="Ray auth token of the cluster (the Secret in the template's "
        "`authOptions.secretName`); set it with dg.EnvVar('RAY_AUTH_TOKEN'), never in code.",
    )
    owner_pod_name: str | None = Field(
        default=None,
        description="The pod the step runs in (downward API `metadata.name`, in "
        "ML_ASSETS_POD_NAME): the cluster's ownerReference, so that Kubernetes deletes the "
        "cluster when that pod is deleted, even after a SIGKILL. None outside a pod.",
    )
    owner_pod_uid: str | None = Field(
        default=None, description="That pod's `metadata.uid` (ML_ASSETS_POD_UID)."
    )
    owner_pod_namespace: str | None = Field(
        default=None, description="That pod's `metadata.namespace` (ML_ASSETS_POD_NAMESPACE)."
    )
    xray: XRayConfig = Field(default_factory=XRayConfig, description="X-Ray collection.")
    lifecycle: StepLifecycle = Field(  # pyright: ignore[reportIncompatibleVariableOverride]
        default_factory=StepLifecycle, description="When the cluster lives."
    )
    poll_interval: float = Field(gt=0, default=0.5, description="Seconds between status polls.")
    timeout: float = Field(
        gt=0, default=600.0, description="Seconds to wait for the cluster to be ready."
    )
    unschedulable_timeout: float | None = Field(
        ge=0,
        default=60.0,
        description="Give up (and delete the cluster) once one of its pods has been "
        "unschedulable this many seconds, naming the scheduler's reason; None waits the full "
        "`timeout`, for clusters whose autoscaler adds nodes (raise it there instead).",
    )

    _namespace: str | None = PrivateAttr(default=None)  # fixed at create time
    _released_name: str | None = PrivateAttr(default=None)  # the step's cluster, once deleted
    _dashboard_port: int = PrivateAttr(default=8265)
    _client: Any = PrivateAttr(default=None)
    _xray: Any = PrivateAttr(default=None)
    _xray_probes: Any = PrivateAttr(default=None)
    _xray_mlflow: Any = PrivateAttr(default=None)

    @property
    def client(self):
        if self._client is None:
            self._client = raycluster_client(self.kube_config, self.kube_context)
        return self._client

    def resolved_profile(self):
        directory = Path(self.profiles_dir) if self.profiles_dir else DEFAULT_PROFILES_DIR
        profile = load_profile(self.profile, directory)
        return with_overrides(profile, workers=self.workers, namespace=self.namespace)

    @property
    def name(self) -> str:
        return self._name or self._released_name or "unnamed-raycluster"

    @property
    def host(self) -> str:
        assert self._host is not None, "the RayCluster is not ready yet"
        return self._host

    @property
    def cluster_namespace(self) -> str:
        return self._namespace or self.resolved_profile().namespace

    def cluster_facts(self) -> dict:
        profile = self.resolved_profile()
        return {
            "cpus": profile.total_cpu,
            "memory_gib": profile.total_memory_gib,
            "gpus": profile.total_gpus,
            "gpu_type": profile.gpu_type,
            "profile": profile.name,
        }

    def create(self, context: Any) -> None:
        if self.head_address not in HEAD_ADDRESSES:
            raise ValueError(
                f"ray_cluster head_address={self.head_address!r} is unknown; set it to one of "
                f"{', '.join(HEAD_ADDRESSES)}"
            )
        self.xray_start(context, "kuberay")
        profile = self.resolved_profile()
        owner = owner_of(context, self.resource_uid, self._owner_pod(context, profile.namespace))
        manifest = render_raycluster(profile, owner)  # pre-flight: raises before any API call
        self._namespace = profile.namespace
        # Named before the request goes out: a cancellation during the call still deletes it.
        self._name = manifest["metadata"]["name"]
        context.log.info(
            f"creating RayCluster {profile.namespace}/{self._name} from profile {profile.name} "
            f"({profile.workers} workers x {profile.worker_cpu:g} CPU"
            + (f", {profile.gpus_per_worker} x {profile.gpu_type}" if profile.gpu_type else "")
            + ")"
        )
        self.client.create(body=manifest, namespace=profile.namespace)
        self.xray_name_cluster()
        self.xray_mark("created")

    def _owner_pod(self, context: Any, namespace: str) -> OwnerPod | None:
        if not (self.owner_pod_name and self.owner_pod_uid):
            return None
        pod = OwnerPod(
            self.owner_pod_name, self.owner_pod_uid, self.owner_pod_namespace or namespace
        )
        if pod.namespace != namespace:
            # The garbage collector finds owners in the dependent's namespace only, and deletes
            # a dependent whose owner it cannot find: the cluster would die at birth.
            context.log.warning(
                f"the step's pod is in namespace {pod.namespace} and its RayCluster goes to "
                f"{namespace}: a pod can own only what is in its namespace, so only the step "
                "and the cleanup sensor delete this cluster. Launch runs in the clusters' "
                "namespace (K8sRunLauncher's job_namespace), or set ML_ASSETS_RAY_NAMESPACE "
                "to the runs' namespace."
            )
            return None
        return pod

    def wait(self, context: Any) -> None:
        """Polls the cluster's status until KubeRay reports it ready (the readiness test of
        dagster-ray's `wait_until_ready`), logging each new condition. Its own loop, not
        dagster-ray's, so that between polls pods the scheduler cannot place end the wait with
        the scheduler's reason instead of after the whole timeout."""
        from kubernetes import client

        custom = client.CustomObjectsApi(self.client.api_client)
        namespace = self.cluster_namespace
        started = time.monotonic()
        logged: set[str] = set()
        while True:
            found: Any = custom.get_namespaced_custom_object_status(
                "ray.io", "v1", namespace, "rayclusters", self.name
            )
            status = found.get("status") or {}
            for condition in status.get("conditions", []):
                text = (
                    f"{condition.get('type')}={condition.get('status')}: {condition.get('reason')}"
                )
                if text not in logged:
                    logged.add(text)
                    context.log.info(f"RayCluster {self.name} condition {text}")
            head = status.get("head") or {}
            if status.get("state") == "ready" and head.get("serviceName"):
                service, endpoints = head["serviceName"], status.get("endpoints") or {}
                break
            if status.get("state") == "failed":
                raise RuntimeError(
                    f"KubeRay reports RayCluster {namespace}/{self.name} failed: "
                    f"{status.get('reason', 'no reason given')}; it is being deleted. "
                    f"`kubectl -n {namespace} describe raycluster {self.name}` has the events."
                )
            self._raise_if_unschedulable(namespace)
            if time.monotonic() - started > self.timeout:
                raise TimeoutError(
                    f"RayCluster {namespace}/{self.name} was not ready within {self.timeout:g}s; "
                    f"it is being deleted. Check `kubectl -n {namespace} describe raycluster "
                    f"{self.name}` and its head pod's events (image pull failing? a probe "
                    "failing?), then raise `timeout` on the ray_cluster resource or pick a "
                    "smaller profile."
                )
            time.sleep(self.poll_interval)  # polling the cluster's status
        self._dashboard_port = int(endpoints.get("dashboard", 8265))
        addresses = {
            "service-dns": f"{service}.{namespace}.svc.cluster.local",
            "service-ip": head.get("serviceIP"),
            "pod-ip": head.get("podIP"),
        }
        self._host = self.connect_host or addresses[self.head_address]
        context.log.info(f"RayCluster {self.name} ready in {time.monotonic() - started:.1f}s")
        self.xray_mark("ready")

    def _raise_if_unschedulable(self, namespace: str) -> None:
        if self.unschedulable_timeout is None:
            return
        from datetime import UTC, datetime

        from kubernetes import client

        pods: Any = client.CoreV1Api(self.client.api_client).list_namespaced_pod(
            namespace, label_selector=f"ray.io/cluster={self.name}"
        )
        now = datetime.now(UTC)
        for pod in pods.items:
            for condition in pod.status.conditions or []:
                if (
                    condition.type == "PodScheduled"
                    and condition.status == "False"
                    and condition.reason == "Unschedulable"
                    and (now - condition.last_transition_time).total_seconds()
                    >= self.unschedulable_timeout
                ):
                    profile = self.resolved_profile()
                    raise ClusterDoesNotFitError(
                        f"RayCluster {namespace}/{self.name} cannot be placed: pod "
                        f"{pod.metadata.name} is unschedulable ({condition.message}); it is "
                        f"being deleted. Profile {profile.name!r} asks for "
                        f"{profile.workers} x {profile.worker_cpu:g} CPU / "
                        f"{profile.worker_memory_gib:g} GiB workers and a {profile.head_cpu:g} "
                        f"CPU / {profile.head_memory_gib:g} GiB head: pick a profile that fits "
                        "the cluster's nodes (`kubectl describe nodes` shows what each can "
                        "still take), or add nodes that fit it."
                    )

    # Nothing to join (see the module docstring): the cluster is ready for `run_driver`'s jobs.
    def connect(self, context: Any):  # pyright: ignore[reportIncompatibleVariableOverride]
        self.xray_connected(context, probes=False)

    @property
    def dashboard_address(self) -> str:
        return f"http://{self.host}:{self._dashboard_port}"

    def run_driver(self, context: Any, function: str, request: dict) -> dict:
        """Runs `function` (`module:name` in ml_assets, JSON in and out) as this cluster's Ray
        driver: a Ray job on the head pod, its log, result and failure carried back by Pipes;
        with X-Ray on, the job also sends back its probes' samples and the nodes' log tails."""
        from ml_assets.ray.job_entrypoint import FUNCTION, REQUEST, XRAY

        headers = {"Authorization": f"Bearer {self.ray_auth_token}"} if self.ray_auth_token else {}
        jobs = session_keeping_job_client(self.dashboard_address, headers)
        extras: dict[str, Any] = {FUNCTION: function, REQUEST: request}
        if self._xray is not None:
            extras[XRAY] = {"interval_s": self.xray.interval_s, "log_lines": self.xray.log_lines}
        self.xray_mark("driver_submitted")
        try:
            jobs.run(
                context=context,
                submit_job_params={"entrypoint": f"python -m {JOB_ENTRYPOINT}"},
                extras=extras,
            )
        finally:  # a failed job's samples and logs are what its X-Ray record is for
            messages = jobs.session.get_custom_messages() if jobs.session is not None else []
            if self._xray is not None:
                for message in messages:
                    if XRAY in message:
                        self._xray.samples.extend(message[XRAY]["samples"])
                        self._xray.logs.update(message[XRAY]["logs"])
        results = [message["result"] for message in messages if "result" in message]
        if not results:
            raise RuntimeError(
                f"the Ray job running {function} on {self.name} ended without a result; its "
                "log above says why"
            )
        return results[-1]

    def delete(self, context: Any) -> None:
        """Delete by name, then anything else this resource instance labelled (a create that
        raced with a cancellation). Retries transient API errors; never leaves silently."""
        from kubernetes.client import ApiException

        namespace = self.cluster_namespace
        selector = f"{LABEL_PREFIX}/owner-uid={self.resource_uid}"
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            try:
                names = {self.name} | {
                    item["metadata"]["name"]
                    for item in self.client.list(namespace=namespace, label_selector=selector).get(
                        "items", []
                    )
                }
                for name in sorted(names):
                    try:
                        self.client.delete(name, namespace=namespace)
                    except ApiException as error:
                        if error.status != 404:
                            raise
                return
            except Exception as error:
                if attempt == DELETE_ATTEMPTS:
                    raise RuntimeError(
                        f"could not delete RayCluster {namespace}/{self.name} after {attempt} "
                        f"attempts ({error}); the cleanup sensor will retry, or run "
                        f"`kubectl -n {namespace} delete raycluster {self.name}`"
                    ) from error
                context.log.warning(f"deleting {self.name} failed ({error}); retrying")
                time.sleep(0.5 * attempt)  # back-off between API retries

    def on_cleanup(self, context: Any, *, deleted: bool) -> None:
        super().on_cleanup(context, deleted=deleted)
        if deleted:
            self.xray_mark("deleted")

    def release(self, context: Any, exception: BaseException | None) -> None:
        """Deletes the step's cluster (dagster-ray's cleanup, by its policy), X-Ray's samples
        and logs collected first. A delete that fails keeps the name, so that teardown tries
        again; one that succeeds lets a later `create` make a fresh cluster."""
        if not self.created:
            return
        try:
            self.xray_collect(context)  # while the cluster exists
        finally:  # nothing before it, not even an interruption, may keep the cluster alive
            super().cleanup(context, exception)
        self._released_name, self._name, self._host = self._name, None, None

    def cleanup(self, context: Any, exception: BaseException | None) -> None:
        try:
            self.release(context, exception)
        finally:
            self.xray_finish(context, exception)
