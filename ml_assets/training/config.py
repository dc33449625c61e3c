"""The settings of the training loop that every model family shares. Plain dataclasses (no
torch), so that the Dagster code location can read them when it loads; a family's own training
config extends `LoopConfig` with what only its model needs (priors, weight decay per group)."""

from dataclasses import asdict, dataclass

LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = 3
    batch_size: int = 1024  # the global batch: N workers see the same optimization as one process
    learning_rate: float = 2e-3
    max_steps_per_epoch: int | None = None  # None: the whole epoch; small values make toy models
    seed: int = 0
    log_every_steps: int = 50
    # "cosine" decays the learning rate to 0 over the whole run: the last epochs average out the
    # gradient noise instead of bouncing around the optimum. "constant" keeps it.
    lr_schedule: str = "cosine"
    # On a GPU, grow the per-worker batch until it fills the device (training.accelerator);
    # ignored on CPU.
    auto_batch_size: bool = True

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be at least 1"
            )

    def to_dict(self) -> dict:
        return asdict(self)
