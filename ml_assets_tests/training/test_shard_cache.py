"""A worker reads exactly its own equal shard of a small window, from the row groups holding it."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml_assets.training.shard_cache import read_shard, shard_bounds


def window(tmp_path, rows_per_file=(250, 100, 333), row_group=64) -> list[str]:
    """Files whose `row` column numbers the window's rows in order, in many row groups."""
    files, first = [], 0
    for index, rows in enumerate(rows_per_file):
        table = pa.table(
            {
                "row": pa.array(range(first, first + rows), pa.int64()),
                "label": pa.array([float(r % 2) for r in range(first, first + rows)]),
            }
        )
        path = tmp_path / f"day-{index}.parquet"
        pq.write_table(table, path, row_group_size=row_group)
        files.append(str(path))
        first += rows
    return files


@pytest.mark.parametrize("world", [1, 2, 3, 7])
def test_the_shards_are_equal_disjoint_and_in_order(tmp_path, world):
    files = window(tmp_path)
    total = 250 + 100 + 333
    shards = [read_shard(files, None, rank, world, ["row"]).column("row").to_pylist()
              for rank in range(world)]  # fmt: skip
    per_rank = total // world
    assert [len(shard) for shard in shards] == [per_rank] * world
    # Together they are the window's rows, less the remainder of fewer than `world` rows.
    assert [row for shard in shards for row in shard] == list(range(per_rank * world))


def test_only_the_row_groups_that_hold_the_shard_are_read(tmp_path, monkeypatch):
    files = window(tmp_path)
    read = []
    original = pq.ParquetFile.read_row_group

    def counting(self, group, *args, **kwargs):
        read.append(group)
        return original(self, group, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    shard = read_shard(files, None, 1, 3, ["row", "label"])  # rows 227..453 of 683
    assert shard.column("row").to_pylist() == list(range(227, 454))
    assert shard.column_names == ["row", "label"]
    # 250 rows in groups of 64: group 3 (192-249); 100: groups 0-1 (250-349); 333: groups 0-1.
    assert len(read) == 5


def test_fewer_rows_than_workers_give_empty_shards_of_the_right_columns(tmp_path):
    files = window(tmp_path, rows_per_file=(2,))
    shard = read_shard(files, None, 2, 3, ["row", "label"])
    assert shard.num_rows == 0 and shard.column_names == ["row", "label"]


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match="rank 3 is outside a world of 3"):
        shard_bounds(100, 3, 3)
