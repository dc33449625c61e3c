"""Utilization samples of one node: the node as a whole and each Ray Train worker on it."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psutil

TRAIN_WORKER_MARK = "RayTrainWorker"  # Ray's process title of a Ray Train worker
RESCAN_S = 10.0  # how often to look for new train workers (a scan reads every process' cmdline)


def _gpu_samples() -> list[dict]:
    """Per GPU utilization and memory, from nvidia-smi where the node has GPUs."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        output = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,utilization.gpu,memory.used",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    samples = []
    for line in output.strip().splitlines():
        index, utilization, memory = (part.strip() for part in line.split(","))
        samples.append({"gpu": int(index), "gpu_percent": float(utilization),
                        "gpu_memory_mib": float(memory)})  # fmt: skip
    return samples


class NodeSampler:
    """Call `sample()` periodically; cheap (one psutil pass over the node's processes)."""

    def __init__(self) -> None:
        self.node = socket.gethostname()
        self._workers: dict[int, psutil.Process] = {}
        self._scanned_at = 0.0
        psutil.cpu_percent(None)  # the first call only sets the reference point

    def _train_workers(self) -> list[psutil.Process]:
        # Every sample until the first worker shows up, then every RESCAN_S (restarts, joins).
        if self._workers and time.monotonic() - self._scanned_at < RESCAN_S:
            return list(self._workers.values())
        self._scanned_at = time.monotonic()
        for process in psutil.process_iter(["cmdline"]):
            if process.pid in self._workers:
                continue
            cmdline = " ".join(process.info["cmdline"] or ())
            if TRAIN_WORKER_MARK in cmdline:
                process.cpu_percent(None)
                self._workers[process.pid] = process
        return list(self._workers.values())

    def sample(self) -> list[dict]:
        now = time.time()
        memory = psutil.virtual_memory()
        rows = [
            {
                "t": now,
                "node": self.node,
                "process": "node",
                "cpu_percent": psutil.cpu_percent(None),
                "rss_mib": (memory.total - memory.available) / 2**20,
            }
        ]
        for process in self._train_workers():
            try:
                rows.append(
                    {
                        "t": now,
                        "node": self.node,
                        "process": f"train-worker-{process.pid}",
                        "cpu_percent": process.cpu_percent(None),
                        "rss_mib": process.memory_info().rss / 2**20,
                    }
                )
            except psutil.NoSuchProcess:
                self._workers.pop(process.pid, None)
        for gpu in _gpu_samples():
            rows.append({"t": now, "node": self.node, "process": f"gpu-{gpu['gpu']}",
                         "cpu_percent": 0.0, "rss_mib": 0.0, **gpu})  # fmt: skip
        return rows


def ray_logs_dir() -> Path | None:
    """This Ray process's node log directory: where Ray redirected its stdout."""
    try:
        target = Path(os.readlink("/proc/self/fd/1"))
    except OSError:
        return None
    return target.parent if target.parent.name == "logs" else None


def tail_logs(directory: Path, lines: int = 200, max_files: int = 40) -> dict[str, str]:
    """The last `lines` lines of the node's Ray logs, largest files first."""
    files = [p for p in directory.iterdir() if p.is_file() and p.suffix in (".out", ".err", ".log")]
    files = [p for p in files if p.stat().st_size > 0]
    files.sort(key=lambda p: p.stat().st_size, reverse=True)
    tails = {}
    for path in files[:max_files]:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 256 * 1024))
            text = handle.read().decode(errors="replace")
        tails[path.name] = "\n".join(text.splitlines()[-lines:])
    return tails
