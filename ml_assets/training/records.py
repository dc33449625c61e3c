"""What a training run reports: one typed record per epoch, and the run's outcome.

Records travel as JSON (the Ray job's result, the checkpoint's history file, X-Ray's record),
flat as `to_dict` writes them; validation metrics become `validation_<name>` keys.
"""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

VALIDATION_PREFIX = "validation_"


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    started_at: float  # wall clock, for the X-Ray timeline
    loop_started_at: float  # tells the epochs of each (re)start of the worker loop apart
    finished_at: float
    loss: float  # mean data loss over the epoch's batches
    samples: int  # all workers together
    seconds: float
    samples_per_second: float  # all workers together
    wait_fraction: float  # of the epoch spent waiting for the next batch
    curve: list[tuple[int, float]] = field(default_factory=list)  # (samples seen, mean loss)
    validation: dict[str, float] = field(default_factory=dict)  # holdout metrics by name

    def to_dict(self) -> dict:
        flat = asdict(self)
        flat.pop("validation")
        return flat | {VALIDATION_PREFIX + name: value for name, value in self.validation.items()}

    @classmethod
    def from_dict(cls, flat: dict) -> "EpochRecord":
        names = {f.name for f in fields(cls)} - {"validation"}
        validation = {
            key.removeprefix(VALIDATION_PREFIX): value
            for key, value in flat.items()
            if key.startswith(VALIDATION_PREFIX)
        }
        curve = [(int(s), float(loss)) for s, loss in flat.get("curve", [])]
        known = {key: value for key, value in flat.items() if key in names and key != "curve"}
        return cls(**known, curve=curve, validation=validation)


@dataclass
class TrainingOutcome:
    checkpoint_dir: Path
    history: list[EpochRecord]
    discarded_checkpoint: str | None = None  # why an unusable checkpoint was set aside

    @property
    def resumed_from_epoch(self) -> int:
        """The epoch the last (re)start began at: 0 for an uninterrupted run; k after a worker
        failure or a step retry restored the checkpoint of epoch k - 1."""
        starts = [record.loop_started_at for record in self.history]
        return starts.index(starts[-1]) if starts else 0

    @property
    def restarts(self) -> int:
        """Worker-group restarts and step retries that resumed this training."""
        return len({record.loop_started_at for record in self.history}) - 1

    def history_dicts(self) -> list[dict]:
        return [record.to_dict() for record in self.history]
