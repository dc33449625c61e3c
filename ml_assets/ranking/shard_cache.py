"""A worker's shard of a small training window, kept in the worker's memory after one pass.

Ray Data re-runs the read and the Arrow-to-NumPy conversion every epoch; for a window that fits
in memory that is pure overhead (on 2 cores, about a tenth of the samples/s of plain DDP). The
first epoch trains on the chunks as Ray Data hands them over and keeps them; every later epoch
draws shuffled mini-batches from the kept arrays, a new permutation of every row each epoch (a
finer shuffle than the chunks Ray Data hands over). Plain NumPy, no Ray: the worker loop supplies
the chunks.
"""

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ml_assets.ranking.accelerator import Batch
from ml_assets.ranking.loop import in_memory_batches

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # dense, ids, labels


class ShardCache:
    def __init__(self, read_chunks: Callable[[], Iterable[Arrays]]):
        self._read_chunks = read_chunks
        self._arrays: Arrays | None = None

    @property
    def rows(self) -> int | None:
        """Rows kept, or None before a first pass has completed."""
        return None if self._arrays is None else len(self._arrays[2])

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        """Shuffled mini-batches of the whole shard."""
        if self._arrays is not None:
            yield from in_memory_batches(*self._arrays, batch_size, rng)
            return
        parts: list[Arrays] = []
        for dense, ids, labels in self._read_chunks():
            # A copy of the labels: Ray Data's may be views that pin its blocks in the store.
            parts.append((dense, ids, np.array(labels, dtype=np.float32)))
            yield from in_memory_batches(dense, ids, labels, batch_size, rng)
        # Only a pass that reached the end is kept: a loop that stopped early (max_steps_per_epoch)
        # saw part of the shard, and the next epoch reads it from Ray Data again.
        if parts:
            self._arrays = (
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]),
            )
