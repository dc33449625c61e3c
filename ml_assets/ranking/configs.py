"""The model's and the training's settings, with the defaults that ship: the training asset's
config, the training loop and the benchmarks all take their defaults from here. Plain
dataclasses (no torch), so that the Dagster code location can read them when it loads."""

from dataclasses import asdict, dataclass

ARCHITECTURES = ("dcn_v2", "dlrm", "logistic")


@dataclass(frozen=True)
class ModelConfig:
    cardinalities: tuple[int, ...]  # embedding rows per categorical feature (OOV id included)
    dense_features: int
    embedding_dim: int = 8
    # dcn_v2. One layer makes every pairwise cross; each further layer adds crosses of a higher
    # degree, which on 2M rows (bench.learning_curve) cost more in variance than they explain.
    cross_layers: int = 1
    deep_layers: tuple[int, ...] = (256, 128)  # dcn_v2's deep tower, dlrm's top MLP
    dropout: float = 0.0
    architecture: str = "dcn_v2"
    # dcn_v2: a weight per id added to the logit (FirstOrderWeights), so an id's own effect is
    # learned directly, under a prior in logit units, rather than through the network.
    first_order: bool = True
    # dcn_v2: a piecewise-linear curve per dense input added to the logit (DenseCurves), so a
    # feature's own bent effect does not have to be found by the deep tower.
    dense_curves: bool = True

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown model architecture {self.architecture!r}; choose one of "
                f"{', '.join(ARCHITECTURES)}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(
            cardinalities=tuple(d["cardinalities"]),
            dense_features=d["dense_features"],
            embedding_dim=d["embedding_dim"],
            cross_layers=d["cross_layers"],
            deep_layers=tuple(d["deep_layers"]),
            dropout=d["dropout"],
            architecture=d.get("architecture", "dcn_v2"),  # models saved before baselines
            first_order=d.get("first_order", False),  # models saved before first-order weights
            dense_curves=d.get("dense_curves", False),  # models saved before dense curves
        )


LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 1024
    learning_rate: float = 2e-3
    # AdamW's decoupled weight decay. The deep tower and the cross layers have the capacity to
    # fit noise in the hundreds of feature pairs and combinations that carry no signal, more so
    # the longer they train; decay holds them to what the data keeps confirming. Everything
    # else takes `weight_decay` (embeddings and first-order weights have priors instead).
    weight_decay: float = 0.0
    deep_weight_decay: float = 1.0
    cross_weight_decay: float = 0.1
    max_steps_per_epoch: int | None = None  # None: the whole epoch; small values make toy models
    seed: int = 0
    log_every_steps: int = 50
    # "cosine" decays the learning rate to 0 over the whole run: the last epochs average out the
    # gradient noise instead of bouncing around the optimum. "constant" keeps it.
    lr_schedule: str = "cosine"
    # Strength of the per-id Gaussian prior on embeddings (model.SharedEmbedding); 0 disables it.
    embedding_prior: float = 30.0
    # The same on first-order weights (model.FirstOrderWeights), in logit units: a prior
    # variance of 1 / (2 * strength) on an id's effect. 0 disables it.
    first_order_prior: float = 4.0
    # On a GPU, grow the per-worker batch until it fills the device (ranking.accelerator);
    # ignored on CPU.
    auto_batch_size: bool = True

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}"
            )

    def to_dict(self) -> dict:
        return asdict(self)
