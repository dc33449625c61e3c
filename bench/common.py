"""Shared helpers for benchmarks: result files and machine facts."""

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2))
    print(f"wrote {path}")
    return path


def tree_rss(process, proportional: bool = False) -> int:
    """Memory of a process and all its descendants (driver, raylet, Ray workers): RSS, or with
    `proportional` PSS, which counts shared pages (the object store in /dev/shm) once."""
    import psutil

    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss if proportional else p.memory_info().rss
        except psutil.Error:
            pass
    return total


class TreeCPU:
    """CPU seconds of this process and its descendants, sampled in the background, so a window
    of wall time (say, the steady epochs) can be split by process afterwards. A throughput ratio
    on a shared machine moves with whatever else runs; who used the cores does not."""

    def __init__(self, interval_s: float = 0.5):
        import threading

        self._interval_s = interval_s
        self._samples: list[tuple[float, dict[int, tuple[str, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TreeCPU":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        root = psutil.Process()
        while True:
            snapshot = {}
            for process in [root, *root.children(recursive=True)]:
                try:
                    times = process.cpu_times()
                    snapshot[process.pid] = (process.name(), times.user + times.system)
                except psutil.Error:
                    pass
            self._samples.append((time.time(), snapshot))
            if self._stop.wait(self._interval_s):
                return

    def cores(self, start: float, end: float) -> dict[tuple[str, int], float]:
        """Cores used between two wall-clock times (the nearest samples), by (process name,
        pid), for the processes alive at both ends."""
        if not self._samples:
            return {}
        first = min(self._samples, key=lambda sample: abs(sample[0] - start))
        last = min(self._samples, key=lambda sample: abs(sample[0] - end))
        seconds = last[0] - first[0]
        if seconds <= 0:
            return {}
        return {
            (name, pid): (cpu - first[1][pid][1]) / seconds
            for pid, (name, cpu) in last[1].items()
            if pid in first[1]
        }
