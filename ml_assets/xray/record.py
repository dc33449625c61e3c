"""The X-Ray record of one materialization on one Ray cluster, and where records are kept."""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ml_assets.atomic import atomic_path

# Lifecycle events in the order they happen; a record holds those that did.
EVENTS = (
    "requested",
    "created",
    "ready",
    "connected",
    "driver_submitted",  # KubeRay: the step's Ray driver went to the head as a Ray job
    "training_started",
    "training_finished",
    "deleted",
)

# USD per hour; an estimate for comparing runs, not a bill. Override per resource.
DEFAULT_PRICES = {
    "cpu_hour": 0.04,
    "memory_gib_hour": 0.005,
    "gpu_hour": {
        "nvidia-t4": 0.35,
        "nvidia-l4": 0.80,
        "nvidia-a10g": 1.10,
        "nvidia-a100-80gb": 3.00,
        "nvidia-h100": 4.50,
        "nvidia-h200": 5.50,
    },
}


@dataclass
class XRayRecord:
    run_id: str
    step: str
    cluster: str
    mode: str  # local | kuberay | address
    profile: str | None = None
    cpus: float = 0.0
    memory_gib: float = 0.0
    gpus: int = 0
    gpu_type: str | None = None
    timeline: dict[str, float] = field(default_factory=dict)  # event -> unix seconds
    samples: list[dict] = field(default_factory=list)  # utilization, see sampling.py
    epochs: list[dict] = field(default_factory=list)  # the training history, loss curves too
    logs: dict[str, str] = field(default_factory=dict)  # "<node>/<file>" -> last lines
    mlflow_run_id: str | None = None
    outcome: str = "running"  # running | succeeded | failed
    error: str | None = None
    prices: dict = field(default_factory=lambda: json.loads(json.dumps(DEFAULT_PRICES)))

    def mark(self, event: str, at: float | None = None) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown X-Ray event {event!r}; known: {EVENTS}")
        self.timeline.setdefault(event, time.time() if at is None else at)
        # In the order things happened: a step marks its training after its cluster is gone.
        self.timeline = dict(sorted(self.timeline.items(), key=lambda item: item[1]))

    @property
    def cluster_hours(self) -> float:
        """From creation (or request) to deletion, or to now while the cluster lives."""
        start = self.timeline.get("created", self.timeline.get("requested"))
        if start is None:
            return 0.0
        return (self.timeline.get("deleted", time.time()) - start) / 3600

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.cluster_hours

    @property
    def estimated_cost_usd(self) -> float:
        gpu_price = self.prices["gpu_hour"].get(self.gpu_type or "", 0.0)
        hours = self.cluster_hours
        return (
            self.cpus * hours * self.prices["cpu_hour"]
            + self.memory_gib * hours * self.prices["memory_gib_hour"]
            + self.gpus * hours * gpu_price
        )

    @property
    def mean_samples_per_second(self) -> float | None:
        rates = [e["samples_per_second"] for e in self.epochs if e.get("samples_per_second")]
        return sum(rates) / len(rates) if rates else None

    def durations(self) -> dict[str, float]:
        """Seconds between consecutive lifecycle events that happened."""
        seen = [(event, self.timeline[event]) for event in EVENTS if event in self.timeline]
        pairs = zip(seen, seen[1:], strict=False)
        return {f"{a}->{b}": round(tb - ta, 2) for (a, ta), (b, tb) in pairs}

    def summary(self) -> dict[str, float | str | None]:
        return {
            "cluster": self.cluster,
            "mode": self.mode,
            "profile": self.profile,
            "outcome": self.outcome,
            "cluster_seconds": round(self.cluster_hours * 3600, 1),
            "gpu_hours": round(self.gpu_hours, 4),
            "estimated_cost_usd": round(self.estimated_cost_usd, 4),
            "mean_samples_per_second": self.mean_samples_per_second,
            "peak_cpu_percent": max((s["cpu_percent"] for s in self.samples), default=None),
            "peak_rss_mib": max((s["rss_mib"] for s in self.samples), default=None),
            "utilization_samples": len(self.samples),
            "log_files": len(self.logs),
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "XRayRecord":
        return cls(**data)

    def save(self, directory: Path) -> Path:
        path = directory / "xray.json"
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(self.to_dict(), indent=1))
        return path


def record_dir(root: Path, run_id: str, step: str) -> Path:
    return root / run_id / step


def load_records(root: Path, run_id: str) -> list[XRayRecord]:
    """Every step's record of a run (a full run id, or a unique prefix of one)."""
    runs = [d for d in root.glob(f"{run_id}*") if d.is_dir()] if root.is_dir() else []
    if len(runs) > 1:
        raise LookupError(f"run id prefix {run_id!r} matches {len(runs)} runs; give more of it")
    if not runs:
        raise LookupError(f"no X-Ray record for run {run_id!r} under {root}")
    return [
        XRayRecord.from_dict(json.loads(path.read_text()))
        for path in sorted(runs[0].glob("*/xray.json"))
    ]
