"""A worker's shard of a small training window, read by the worker itself and kept in memory.

For a window that fits in memory, Ray Data does not pay: its coordinators, stats actor and read
tasks are about six more Python processes for Ray to start, one after another, before the first
batch (on 2 cores the trainers of a 40k-row window waited 7 to 10 s for it; `bench.fixed_cost`
runs both side by side), and once the shard is kept nothing is read again. So each worker reads
just the rows of its shard, from the row groups that hold them, through the same pyarrow
filesystem as everything else (a local path or the bucket). Plain pyarrow and NumPy, no Ray: the
worker loop passes its rank.
"""


def shard_bounds(total_rows: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [start, stop) of `rank` in the window's rows taken file after file. Every rank gets
    `total_rows // world`, so all take the same number of optimizer steps (DDP waits for the
    slowest rank at every step); the remainder, fewer than `world` rows, is left out, as Ray
    Data's equal split does."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside a world of {world} worker(s)")
    per_rank = total_rows // world
    return rank * per_rank, (rank + 1) * per_rank


def read_shard(files: list[str], filesystem, rank: int, world: int, columns: list[str]):
    """The shard of `rank` as one Arrow table of `columns`, reading only the row groups that
    overlap it (a worker's memory holds its shard and at most two row groups more)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not files:
        raise ValueError("a training window needs at least one Parquet file")
    parquet_files = [pq.ParquetFile(file, filesystem=filesystem) for file in files]
    total = sum(parquet.metadata.num_rows for parquet in parquet_files)
    start, stop = shard_bounds(total, rank, world)
    pieces = []
    offset = 0  # first row of the current row group in the window
    for parquet in parquet_files:
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if offset < stop and offset + rows > start:
                begin, end = max(start - offset, 0), min(stop - offset, rows)
                table = parquet.read_row_group(group, columns=columns)
                pieces.append(table.slice(begin, end - begin))
            offset += rows
    if not pieces:  # fewer rows than workers
        return parquet_files[0].schema_arrow.empty_table().select(columns)
    return pa.concat_tables(pieces)
