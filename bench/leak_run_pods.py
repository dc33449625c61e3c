"""Leak benchmark in the production topology: `ray_cluster_check` runs, each launched into a run
pod of its own by dagster-k8s's K8sRunLauncher (as the daemon launches them), each with one
failure that reaches a deployment from outside the step.

The kube tier's real one-node cluster and KubeRay operator, the instance in PostgreSQL and the
storage root in an S3 server, both on the node's address, the `dev` profile (a head and a worker
pod). Each run gets one of these, every one as often as the run count allows, in a shuffled
order:
- none: the run as it is;
- preflight: a worker count over the profile's quota (refused before any API call);
- not_ready: a readiness timeout of 5 s (the dev profile needs 25 s or more);
- sigterm_creating / sigterm_running: the run pod deleted, with its 30 s grace, once its
  RayCluster exists / once it is ready (what a node drain or `kubectl delete pod` does);
- sigkill_creating / sigkill_running: every process of the run pod SIGKILLed at those moments
  (the OOM killer, a lost node); only the cluster side can delete the cluster then: the run's
  Job ends, goes after its `ttlSecondsAfterFinished`, and its pod owns the RayCluster;
- cancel_running: Dagster's run cancellation once the RayCluster is ready (the launcher deletes
  the run's Job).
A fault whose moment never came (the run ended first) is counted as missed. After each run the
benchmark waits until the RayCluster, its pods and services and the run pod are gone, and times
that from the fault (from the launch where there is none). The goal: zero RayClusters, Ray pods,
services, run pods, containers with a task in containerd, pod network namespaces and Ray
processes left at the end; the cleanup sensor does not run.

    .venv/bin/python -m bench.leak_run_pods [--runs 30] [--seed 7]
"""

import argparse
import random
import shutil
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import yaml

from bench.common import write_result
from bench.leak import cluster_objects, node_leftovers
from ml_assets_tests.kube.cluster import pod_network_namespaces
from ml_assets_tests.kube.conftest import (
    BUCKET,
    GROUP,
    NAMESPACE,
    PLURAL,
    VERSION,
    list_rayclusters,
    postgres_in_node,
    prepared_cluster,
    s3_in_node,
)
from ml_assets_tests.kube.run_pods import (
    account_kubeconfig,
    code_location_env,
    create_instance,
    delete_runs,
    instance_yaml,
    kill_pod,
    launch,
    run_pods,
    run_worker_pods,
)

JOB = "ray_cluster_check"
JOB_TTL_S = 5  # the values ship 600 s; a SIGKILLed run's cluster goes this long after its Job
POINTS = ("none", "preflight", "not_ready", "sigterm_creating", "sigterm_running",
          "sigkill_creating", "sigkill_running", "cancel_running")  # fmt: skip
RESOURCE_CONFIG = {"preflight": {"workers": 50}, "not_ready": {"timeout": 5}}


def cluster_state(admin) -> str | None:
    """'ready', another state, or None where there is no RayCluster (yet or any more)."""
    from kubernetes import client

    names = list_rayclusters(admin)
    if not names:
        return None
    found = client.CustomObjectsApi(admin).get_namespaced_custom_object_status(
        GROUP, VERSION, NAMESPACE, PLURAL, names[0]
    )
    return (found.get("status") or {}).get("state") or "created"


def until(predicate, ended, timeout: float = 300) -> bool:
    """Polls until `predicate` holds (True) or the run has `ended` first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if ended():
            return False
        time.sleep(0.2)  # polling the API for a state, not waiting out a duration
    raise TimeoutError("neither the fault's moment nor the run's end came")


def inflict(point: str, admin, instance, run_id: str) -> bool:
    """The fault at its moment; False where the run ended before it."""
    from kubernetes import client

    def ended() -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and run.is_finished

    if point in ("none", "preflight", "not_ready"):
        return True
    moment = (lambda: cluster_state(admin) is not None) if point.endswith("creating") else (
        lambda: cluster_state(admin) == "ready"
    )  # fmt: skip
    if not until(moment, ended):
        return False
    if point == "cancel_running":
        instance.run_coordinator.cancel_run(run_id)  # what the UI's Terminate button calls
        return True
    (pod,) = run_pods(admin, run_id)
    if point.startswith("sigterm"):
        client.CoreV1Api(admin).delete_namespaced_pod(
            pod.metadata.name, NAMESPACE, grace_period_seconds=30
        )
    else:
        kill_pod(pod.metadata.uid)
    return True


def everything_gone(admin) -> bool:
    return not any(cluster_objects(admin).values()) and not run_worker_pods(admin)


def main(runs: int = 30, seed: int = 7) -> dict:
    points = [POINTS[index % len(POINTS)] for index in range(runs)]
    random.Random(seed).shuffle(points)
    root = Path(tempfile.mkdtemp(prefix="leak-run-pods-"))
    outcomes: Counter = Counter()
    seconds: list[float] = []
    gone_after: dict[str, list[float]] = {}
    payload: dict = {"runs": runs, "seed": seed, "profile": "dev", "job_ttl_s": JOB_TTL_S}
    began_all = time.monotonic()
    with prepared_cluster(root / "kube") as cluster:
        plane = cluster.control_plane
        admin = plane.api_client()
        cluster.scale_operator(1)
        with postgres_in_node(cluster) as postgres, s3_in_node(cluster):
            env = code_location_env(f"s3://{BUCKET}/leak")
            launcher = account_kubeconfig(plane, "dagster", root / "dagster.kubeconfig")
            home = root / "dagster_home"
            create_instance(
                admin, home, instance_yaml(postgres, launcher, env, job_ttl_s=JOB_TTL_S)
            )
            tasks_before, netns_before = set(cluster.tasks()), pod_network_namespaces()
            try:
                with dg.DagsterInstance.from_config(str(home)) as instance:
                    for index, point in enumerate(points):
                        config = root / f"run-{index}.yaml"
                        resource = RESOURCE_CONFIG.get(point)
                        run_config = {"resources": {"ray_cluster": {"config": resource}}}
                        config.write_text(yaml.safe_dump(run_config if resource else {}))
                        launched = time.monotonic()
                        run_id = launch(home, env, JOB, "--config", str(config))
                        hit = inflict(point, admin, instance, run_id)
                        fault_at = time.monotonic()
                        deadline = fault_at + 300
                        while not everything_gone(admin) and time.monotonic() < deadline:
                            time.sleep(0.2)  # polling until the cluster and the run pod go
                        gone = time.monotonic() - (fault_at if point != "none" else launched)
                        seconds.append(time.monotonic() - launched)
                        gone_after.setdefault(point if hit else "missed", []).append(gone)
                        run = instance.get_run_by_id(run_id)
                        status = run.status.value if run is not None else "?"
                        outcomes[f"{point}/{'hit' if hit else 'missed'}/{status}"] += 1
                        print(
                            f"{index + 1:2d}/{runs} {point:16s} {'hit' if hit else 'missed':6s} "
                            f"run {status:9s} {seconds[-1]:5.1f}s; cluster and run pod gone "
                            f"{gone:5.1f}s after the {'fault' if point != 'none' else 'launch'}"
                            f"; left: {cluster_objects(admin)}",
                            flush=True,
                        )
                left = cluster_objects(admin)
                payload |= {
                    "outcomes": dict(sorted(outcomes.items())),
                    **{f"{kind}_left": count for kind, count in left.items()},
                    "run_pods_left": len(run_worker_pods(admin)),
                    **node_leftovers(cluster, tasks_before, netns_before),
                    "run_s_mean": round(sum(seconds) / len(seconds), 2),
                    "gone_after_s": {
                        point: {
                            "n": len(values),
                            "mean": round(sum(values) / len(values), 2),
                            "max": round(max(values), 2),
                        }
                        for point, values in sorted(gone_after.items())
                    },  # fmt: skip
                }
            finally:
                # A second Ctrl-C must not cut the cleanup short: the cluster's daemons would stay.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                delete_runs(admin)
    shutil.rmtree(root, ignore_errors=True)  # the stopped cluster's files, the run configs
    payload["total_s"] = round(time.monotonic() - began_all, 1)
    print(
        f"\n{runs} runs in run pods; left: {payload['rayclusters_left']} RayClusters, "
        f"{payload['pods_left']} Ray pods, {payload['services_left']} services, "
        f"{payload['run_pods_left']} run pods, {payload['containers_left']} containers, "
        f"{payload['pod_network_namespaces_left']} pod network namespaces, "
        f"{payload['ray_processes_left']} Ray processes"
    )
    for point, figures in payload["gone_after_s"].items():
        print(f"  {point:16s} n={figures['n']:2d} gone after mean {figures['mean']:5.1f}s, "
              f"max {figures['max']:5.1f}s")  # fmt: skip
    write_result("leak_run_pods", payload)
    return payload


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.seed)
