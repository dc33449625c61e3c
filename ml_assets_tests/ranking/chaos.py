"""Real failures for fault-tolerance tests: SIGKILL a Ray Train worker process mid-epoch."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil

from ml_assets.training.checkpoints import SNAPSHOT_FILE


def train_worker_pids() -> list[int]:
    """Ray Train worker processes on this host (their process title names the actor class)."""
    pids = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if "RayTrainWorker" in " ".join(process.info["cmdline"] or ()):
            pids.append(process.info["pid"])
    return sorted(pids)


def checkpoints_reported(run_dir: Path) -> int:
    try:
        snapshot = json.loads((run_dir / SNAPSHOT_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return 0
    return len(snapshot.get("checkpoint_results", []))


class KillWorkerAfterCheckpoint(threading.Thread):
    """Waits until a training run under `storage` (a directory matching `pattern`) reported
    `after` checkpoints, then SIGKILLs one training worker: the failure lands in the middle of
    the next epoch. The first one only: a retry that resumes is left alone."""

    def __init__(
        self,
        storage: Path,
        pattern: str = "*",
        after: int = 1,
        delay: float = 1.0,
        timeout: float = 300,
    ):
        super().__init__(daemon=True)
        self.storage, self.pattern, self.after = storage, pattern, after
        self.delay, self.timeout = delay, timeout
        self.killed_pid: int | None = None
        self.killed_at: float | None = None
        self.checkpoints_at_kill = 0

    def reported(self) -> int:
        return max((checkpoints_reported(d) for d in self.storage.glob(self.pattern)), default=0)

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and self.reported() < self.after:
            time.sleep(0.2)  # polling the run's own progress file
        time.sleep(self.delay)  # into the next epoch
        self.checkpoints_at_kill = self.reported()
        pids = train_worker_pids()
        if pids:
            self.killed_pid, self.killed_at = pids[-1], time.time()
            os.kill(pids[-1], signal.SIGKILL)
