"""A small window's shard is read once, then reshuffled from memory every epoch."""

import numpy as np

from ml_assets.ranking.shard_cache import ShardCache


class Chunks:
    """Stands in for Ray Data's chunks of a shard; counts how often the shard was read."""

    def __init__(self, rows: int, chunk: int):
        self.rows, self.chunk, self.reads = rows, chunk, 0

    def __call__(self):
        self.reads += 1
        for start in range(0, self.rows, self.chunk):
            index = np.arange(start, min(start + self.chunk, self.rows))
            dense = index[:, None].astype(np.float32)
            ids = np.stack([index, index], axis=1).astype(np.int64)
            labels = (index % 2).astype(np.float32)
            labels.flags.writeable = False  # as Ray Data hands them over
            yield dense, ids, labels


def rows_of(batches) -> list[int]:
    return [int(v) for dense, _, _ in batches for v in dense[:, 0]]


def test_the_first_pass_reads_the_shard_and_later_passes_do_not():
    chunks = Chunks(rows=1000, chunk=300)
    cache = ShardCache(chunks)
    first = rows_of(cache.batches(64, np.random.default_rng(0)))
    assert cache.rows == 1000 and chunks.reads == 1
    second = rows_of(cache.batches(64, np.random.default_rng(1)))
    third = rows_of(cache.batches(64, np.random.default_rng(2)))
    assert chunks.reads == 1  # epochs after the first never touch the reader
    assert sorted(first) == sorted(second) == sorted(third) == list(range(1000))
    # The first pass shuffles within chunks only; later ones mix rows of every chunk.
    assert max(first[:300]) < 300
    assert max(second[:300]) >= 300 and second != third


def test_the_kept_rows_carry_their_own_labels_and_ids():
    cache = ShardCache(Chunks(rows=500, chunk=128))
    list(cache.batches(50, np.random.default_rng(0)))
    for dense, ids, labels in cache.batches(50, np.random.default_rng(3)):
        assert ids.dtype.is_floating_point is False
        assert (ids[:, 0] == dense[:, 0].long()).all()
        assert (labels == dense[:, 0].long() % 2).all()


def test_a_pass_stopped_early_is_not_kept_and_the_next_one_reads_again():
    chunks = Chunks(rows=1000, chunk=300)
    cache = ShardCache(chunks)
    batches = cache.batches(64, np.random.default_rng(0))
    for _ in range(3):  # max_steps_per_epoch stops the loop after a few steps
        next(batches)
    batches.close()
    assert cache.rows is None
    assert sorted(rows_of(cache.batches(64, np.random.default_rng(1)))) == list(range(1000))
    assert chunks.reads == 2 and cache.rows == 1000
