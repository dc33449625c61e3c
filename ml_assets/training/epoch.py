"""One epoch of any model: the learning-rate schedule, the optimizer steps and the loss curve.
Used by the Ray Train workers (training.driver) and by plain-torch baselines alike."""

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from ml_assets.training.accelerator import autocast
from ml_assets.training.config import LoopConfig
from ml_assets.training.task import Batch

LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass
class EpochStats:
    epoch: int
    loss: float
    samples: int
    steps: int
    seconds: float
    wait_seconds: float  # time spent waiting for the next batch
    curve: list[tuple[int, float]]  # (samples seen in this epoch, mean loss since last point)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0


def learning_rate_at(config: LoopConfig, step: int, total_steps: int | None) -> float:
    if config.lr_schedule == "constant" or not total_steps:
        return config.learning_rate
    progress = min(step / total_steps, 1.0)
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    config: LoopConfig,
    *,
    loss: LossFn,
    epoch: int,
    on_log: Callable[[str], None] | None = None,
    total_steps: int | None = None,
) -> EpochStats:
    """One pass over `batches`, `loss` (a task's) giving each batch's mean data loss and its
    regularization. `total_steps` (this worker's steps in the whole run) lets the learning-rate
    schedule know where it is; epochs are assumed equally long, which is what makes a resumed
    run continue the schedule where the checkpoint left it."""
    model.train()
    steps_per_epoch = math.ceil(total_steps / config.epochs) if total_steps else 0
    total_loss, samples, steps = 0.0, 0, 0
    window_loss, window_samples = 0.0, 0
    curve: list[tuple[int, float]] = []
    wait = 0.0
    start = time.perf_counter()
    iterator: Iterator[Batch] = iter(batches)
    while config.max_steps_per_epoch is None or steps < config.max_steps_per_epoch:
        fetch = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            break
        wait += time.perf_counter() - fetch
        rate = learning_rate_at(config, epoch * steps_per_epoch + steps, total_steps)
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.zero_grad(set_to_none=True)
        with autocast(batch[0].device):
            data_loss, penalty = loss(model, batch)
        n = len(batch[0])
        value = float(data_loss.detach()) * n  # the data term only, comparable across runs
        (data_loss if penalty is None else data_loss + penalty).backward()
        optimizer.step()
        total_loss += value
        window_loss += value
        samples += n
        window_samples += n
        steps += 1
        if steps % config.log_every_steps == 0:
            curve.append((samples, window_loss / window_samples))
            window_loss, window_samples = 0.0, 0
            if on_log is not None:
                elapsed = time.perf_counter() - start
                on_log(
                    f"epoch {epoch} step {steps}: loss {curve[-1][1]:.4f}, "
                    f"{samples / elapsed:,.0f} samples/s on this worker"
                )
    if window_samples:
        curve.append((samples, window_loss / window_samples))
    return EpochStats(
        epoch=epoch,
        loss=total_loss / max(samples, 1),
        samples=samples,
        steps=steps,
        seconds=time.perf_counter() - start,
        wait_seconds=wait,
        curve=curve,
    )
