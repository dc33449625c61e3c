"""The click model's optimizer, loss, batches and scoring, shared by its training task
(ranking.click_task) and plain-torch baselines."""

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from ml_assets.ranking.configs import TrainConfig
from ml_assets.ranking.model import decay_groups, penalty
from ml_assets.training import epoch as epoch_loop
from ml_assets.training.epoch import EpochStats
from ml_assets.training.task import Arrays, Batch, shuffled_batches


def make_optimizer(
    model: nn.Module, config: TrainConfig, fused: bool = True
) -> torch.optim.Optimizer:
    """AdamW, with each group of model.decay_groups at its own decay (plain Adam if all are 0).
    `fused=False` gives torch's default update, for comparisons (bench.optimizer)."""
    rates = {
        "deep": config.deep_weight_decay,
        "cross": config.cross_weight_decay,
        "other": config.weight_decay,
    }
    groups = decay_groups(model)
    chosen = [{"params": groups[name], "weight_decay": rate} for name, rate in rates.items()]
    # fused: one kernel updates every parameter, instead of torch's per-tensor loop of small ops
    # (its default on CPU). On 2 cores that halves the step, 1.27 to 0.63 ms, and makes the whole
    # 13 ms batch 5.5% faster (bench.optimizer). The update is the same, and it resumes the
    # state the unfused one saved.
    return torch.optim.AdamW(
        [group for group in chosen if group["params"]], lr=config.learning_rate, fused=fused
    )


def click_loss(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The click model's loss: mean log loss of the logits, and the priors' and gates' term."""
    dense, ids, labels = batch
    logits = model(dense, ids)
    data = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
    return data, penalty(model)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    config: TrainConfig,
    *,
    epoch: int,
    on_log: Callable[[str], None] | None = None,
    total_steps: int | None = None,
) -> EpochStats:
    """The platform's epoch (training.epoch) with the click model's loss."""
    return epoch_loop.train_one_epoch(
        model,
        optimizer,
        batches,
        config,
        loss=click_loss,
        epoch=epoch,
        on_log=on_log,
        total_steps=total_steps,
    )


def in_memory_batches(
    dense: np.ndarray,
    ids: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int | list[int] | np.random.Generator,
) -> Iterator[Batch]:
    """Shuffled mini-batches over click rows in memory (a whole dataset, for baselines)."""
    return shuffled_batches(click_arrays(dense, ids, labels), batch_size, seed)


def click_arrays(dense: np.ndarray, ids: np.ndarray, labels: np.ndarray) -> Arrays:
    """The click model's arrays in the dtypes its batches take (no copy where they already are)."""
    return (
        np.asarray(dense, dtype=np.float32),
        np.asarray(ids, dtype=np.int64),
        np.asarray(labels, dtype=np.float32),
    )


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, dense: np.ndarray, ids: np.ndarray, batch_size: int = 65_536
) -> np.ndarray:
    model.eval()
    out = np.empty(len(dense), dtype=np.float64)
    for start in range(0, len(dense), batch_size):
        stop = start + batch_size
        logits = model(
            torch.from_numpy(np.ascontiguousarray(dense[start:stop], dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(ids[start:stop], dtype=np.int64)),
        )
        out[start:stop] = torch.sigmoid(logits.float()).numpy()
    return out
