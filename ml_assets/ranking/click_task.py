"""The click model as a training task (training.task): what the platform's driver needs to
know about it, and nothing the driver already does."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ml_assets.ranking.configs import ModelConfig, TrainConfig
from ml_assets.ranking.encoding import to_arrays
from ml_assets.ranking.loop import click_arrays, click_loss, make_optimizer, predict_probabilities
from ml_assets.ranking.metrics import log_loss, roc_auc, row_log_loss
from ml_assets.ranking.model import (
    build_model,
    set_embedding_prior,
    set_gate_penalty,
    start_at_base_rate,
)
from ml_assets.training.task import Arrays, Batch, TrainingTask


@dataclass
class ClickModelTask(TrainingTask[TrainConfig]):
    model_config: ModelConfig
    loop: TrainConfig
    dense: tuple[str, ...]
    categorical: tuple[str, ...]
    label: str
    # Training rows per embedding row, for the per-id priors and the feature gates' penalty
    # (without them both are off): an array, or a Ray object reference to one (the driver's
    # callers put it in the object store once for all workers).
    id_counts: Any = None
    base_rate: float | None = None  # the window's click rate, where the output starts
    name: str = "ranking_model"

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.dense, *self.categorical, self.label)

    def build_model(self) -> nn.Module:
        return build_model(self.model_config)

    def initialize(self, model: nn.Module) -> None:
        if self.base_rate is not None:
            start_at_base_rate(model, self.base_rate)
        loop = self.loop
        if self.id_counts is None:  # the priors and the gates' penalty are spread by them
            return
        counts = self.id_counts
        if not isinstance(counts, np.ndarray):
            import ray

            counts = np.asarray(ray.get(counts))
        # Every row has one id per feature (the OOV row counts the rest).
        set_gate_penalty(
            model, loop.feature_gate_penalty, int(counts.sum()) // len(self.categorical)
        )
        if loop.embedding_prior or loop.first_order_prior:
            # A copy: the object store hands out read-only arrays, which torch warns about.
            set_embedding_prior(
                model, torch.tensor(counts), loop.embedding_prior, loop.first_order_prior
            )

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return make_optimizer(model, self.loop)

    def to_arrays(self, columns: dict[str, np.ndarray]) -> Arrays:
        dense, ids = to_arrays(columns, self.dense, self.categorical)
        return click_arrays(dense, ids, columns[self.label])

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return click_loss(model, batch)

    def example_batch(self, size: int, device: torch.device) -> Batch:
        return (
            torch.zeros(size, self.model_config.dense_features, device=device),
            torch.zeros(size, len(self.model_config.cardinalities), dtype=torch.int64,
                        device=device),
            torch.zeros(size, device=device),
        )  # fmt: skip

    def validate(self, model: nn.Module, arrays: Arrays) -> dict[str, float]:
        """Holdout log loss and AUC after an epoch: the learning curve. Only watched, never
        used to pick a model, so the holdout stays an honest test for model_evaluation."""
        dense, ids, labels = arrays
        probabilities = predict_probabilities(model, dense, ids)
        return {"log_loss": log_loss(labels, probabilities), "auc": roc_auc(labels, probabilities)}

    def row_losses(self, model: nn.Module, arrays: Arrays) -> np.ndarray:
        dense, ids, labels = arrays
        return row_log_loss(labels, predict_probabilities(model, dense, ids))

    def describe(self) -> dict:
        return super().describe() | {"model_config": self.model_config.to_dict()}
