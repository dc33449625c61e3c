"""One X-Ray probe actor per Ray node: samples utilization on a thread, hands over log tails.

Actors ask for 0 CPUs, so a probe never takes a core from training or Ray Data; each costs one
idle Python process per node. Cluster code: imported only when a step has connected to Ray.
"""

import threading
import time

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ml_assets.xray.sampling import NodeSampler, ray_logs_dir, tail_logs


@ray.remote(num_cpus=0)
class NodeProbe:
    def __init__(self, interval_s: float) -> None:
        self._sampler = NodeSampler()
        self._samples: list[dict] = []
        self._stop = threading.Event()
        self._interval = interval_s
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:  # a sample at once, then one per interval until stopped
            self._samples.extend(self._sampler.sample())
            if self._stop.wait(self._interval):
                return

    def samples(self) -> list[dict]:
        return list(self._samples)

    def logs(self, lines: int) -> dict[str, str]:
        directory = ray_logs_dir()
        if directory is None:
            return {}
        return {
            f"{self._sampler.node}/{name}": text
            for name, text in tail_logs(directory, lines).items()
        }

    def cpu_seconds(self) -> float:
        """CPU time this probe process has used: X-Ray's own cost on the node."""
        import psutil

        times = psutil.Process().cpu_times()
        return times.user + times.system

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join(timeout=5)
        return list(self._samples)


def start_probes(interval_s: float, timeout_s: float = 60.0) -> list:
    """A probe pinned to every live node of the connected cluster, sampling when this returns
    (an actor's process can start late on a busy node: it would miss a short training)."""
    probes: list = [  # actor handles
        NodeProbe.options(  # type: ignore[attr-defined]
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
        ).remote(interval_s)
        for node in ray.nodes()
        if node["Alive"]
    ]
    ray.get([probe.samples.remote() for probe in probes], timeout=timeout_s)
    return probes


def collect(probes: list, log_lines: int, timeout_s: float = 10.0) -> tuple[list[dict], dict]:
    """Stop the probes and return (samples of all nodes, log tails of all nodes), within
    `timeout_s` in all: the cluster's delete waits for this, inside a pod's termination grace."""
    deadline = time.monotonic() + timeout_s
    samples = ray.get([probe.stop.remote() for probe in probes], timeout=timeout_s)
    logs = ray.get(
        [probe.logs.remote(log_lines) for probe in probes],
        timeout=max(deadline - time.monotonic(), 0.1),
    )
    for probe in probes:
        ray.kill(probe)
    return (
        sorted((row for rows in samples for row in rows), key=lambda row: row["t"]),
        {name: text for node_logs in logs for name, text in node_logs.items()},
    )


def snapshot(probes: list, timeout_s: float = 30.0) -> list[dict]:
    """The samples so far, probes left running."""
    rows = ray.get([probe.samples.remote() for probe in probes], timeout=timeout_s)
    return sorted((row for node_rows in rows for row in node_rows), key=lambda row: row["t"])
