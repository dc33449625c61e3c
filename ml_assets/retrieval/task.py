"""The two-tower model as a training task (training.task) for the platform's driver."""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ml_assets.retrieval.metrics import hit_rate_at_k
from ml_assets.retrieval.model import TwoTower, TwoTowerConfig, in_batch_softmax_loss, score_catalog
from ml_assets.retrieval.world import AD_COLUMNS, USER_COLUMNS, top_k
from ml_assets.training.config import LoopConfig
from ml_assets.training.task import Arrays, Batch, TrainingTask


@dataclass
class TwoTowerTask(TrainingTask[LoopConfig]):
    model_config: TwoTowerConfig
    loop: LoopConfig
    catalog: np.ndarray  # (ads, 3): every ad's features, row i for ad i; small, travels as is
    log_q: np.ndarray  # (ads,): log of each ad's share of the training engagements
    k: int = 10
    name: str = "retrieval_model"

    @property
    def columns(self) -> tuple[str, ...]:
        return (*USER_COLUMNS, *AD_COLUMNS)

    def build_model(self) -> nn.Module:
        return TwoTower(self.model_config)

    def initialize(self, model: nn.Module) -> None:
        # Start every ad at its share of engagements, as a popularity model would.
        assert isinstance(model, TwoTower), "initialize() gets the model build_model() made"
        with torch.no_grad():
            model.ad_bias.weight.copy_(torch.from_numpy(self.log_q).unsqueeze(1))

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=self.loop.learning_rate, weight_decay=0.0)

    def to_arrays(self, columns: dict[str, np.ndarray]) -> Arrays:
        users = np.stack([columns[name] for name in USER_COLUMNS], 1).astype(np.int64)
        ads = np.stack([columns[name] for name in AD_COLUMNS], 1).astype(np.int64)
        return users, ads

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        users, ads = batch
        log_q = torch.from_numpy(self.log_q).to(ads.device)[ads[:, 0]]
        return in_batch_softmax_loss(model, users, ads, log_q), None

    def example_batch(self, size: int, device: torch.device) -> Batch:
        zeros = torch.zeros(size, 3, dtype=torch.int64, device=device)
        return zeros, zeros.clone()

    def validate(self, model: nn.Module, arrays: Arrays) -> dict[str, float]:
        """Over the whole catalog: the engaged ad's log loss (the full softmax the sampled one
        estimates) and how often it is in the top K."""
        users, ads = arrays
        scores = score_catalog(model, users, self.catalog)
        scores -= scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores).sum(axis=1))
        engaged = ads[:, 0]
        log_loss = float(np.mean(log_norm - scores[np.arange(len(users)), engaged]))
        return {
            "log_loss": log_loss,
            f"hit_rate_at_{self.k}": hit_rate_at_k(top_k(scores, self.k), engaged),
        }

    def describe(self) -> dict:
        return super().describe() | {"model_config": self.model_config.to_dict()}


def log_engagement_share(engaged_ads: np.ndarray, ads: int) -> np.ndarray:
    """log q per ad, each ad counted once more than seen so that none is -inf."""
    counts = np.bincount(engaged_ads, minlength=ads) + 1.0
    return np.log(counts / counts.sum()).astype(np.float32)
