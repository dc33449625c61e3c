"""What a model family tells the training driver: the small protocol between them.

The driver (`training.driver.fit`) knows nothing of any model: it reads the task's `columns`
from each worker's shard (or streams them), and asks the task for the rest. A task is pickled
to every Ray Train worker, so it holds settings and small data; large arrays go in as Ray object
references that `initialize` fetches on the worker.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import nn

from ml_assets.training.config import LoopConfig

Arrays = tuple[np.ndarray, ...]  # row-aligned columns of one shard or chunk, in batch order
Batch = tuple[torch.Tensor, ...]  # the same, one mini-batch of them, as tensors
Loop = TypeVar("Loop", bound=LoopConfig)  # a model family's own training config


class TrainingTask(ABC, Generic[Loop]):
    name: str  # prefixes the workers' log lines, e.g. the asset's name
    loop: Loop

    @property
    @abstractmethod
    def columns(self) -> tuple[str, ...]:
        """The Parquet columns a worker reads, and `to_arrays` gets."""

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh model. Also built on the driver to check that a checkpoint still fits."""

    def initialize(self, model: nn.Module) -> None:  # noqa: B027 (optional: nothing by default)
        """Data-dependent starting weights (priors, the output bias), on a fresh model only: a
        resumed one takes the checkpoint's."""

    @abstractmethod
    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer: ...

    @abstractmethod
    def to_arrays(self, columns: dict[str, np.ndarray]) -> Arrays:
        """`columns` (numpy, by name) -> the arrays batches are cut from, in their final dtypes."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's mean data loss (logged and plotted, comparable across runs) and the
        regularization added to it for the gradient, if any. Runs under autocast on a GPU."""

    @abstractmethod
    def example_batch(self, size: int, device: torch.device) -> Batch:
        """`size` rows of the right shapes and dtypes (values do not matter), to measure how
        large a batch the GPU holds."""

    @abstractmethod
    def validate(self, model: nn.Module, arrays: Arrays) -> dict[str, float]:
        """Holdout metrics after an epoch, by name (`log_loss` becomes `validation_log_loss`)."""

    def row_losses(self, model: nn.Module, arrays: Arrays) -> np.ndarray | None:
        """Each validation row's loss, to compare two models on the same rows (a search keeps its
        defaults unless a trial beats them by more than noise); None: the task has none."""
        return None

    def describe(self) -> dict:
        """Saved in every checkpoint beside the weights, for whoever inspects it."""
        return {"name": self.name, "loop": self.loop.to_dict()}

    def batches(self, arrays: Arrays, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        """Shuffled mini-batches over `arrays`: a new permutation of every row each call."""
        return shuffled_batches(arrays, batch_size, rng)


def shuffled_batches(
    arrays: Arrays, batch_size: int, seed: int | list[int] | np.random.Generator
) -> Iterator[Batch]:
    """Mini-batches of rows in a random order; the fancy index copies, so every tensor owns its
    (writable, contiguous) memory even when Ray Data handed out read-only arrays."""
    order = np.random.default_rng(seed).permutation(len(arrays[0]))
    for start in range(0, len(order), batch_size):
        pick = order[start : start + batch_size]
        yield tuple(torch.from_numpy(array[pick]) for array in arrays)
