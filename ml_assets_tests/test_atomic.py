import pytest

from ml_assets.atomic import atomic_path


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    target = tmp_path / "day.parquet"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == tmp_path
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first"  # the outer block ends last: its rename wins
    assert [p.name for p in tmp_path.iterdir()] == ["day.parquet"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "vocabulary.json"
    with atomic_path(target) as temporary:
        temporary.write_text("published")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "published"
    assert [p.name for p in target.parent.iterdir()] == ["vocabulary.json"]


def test_two_runs_writing_one_partition_at_once_leave_one_whole_file(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import polars as pl

    from ml_assets.defs.resources import write_parquet_atomically

    target = tmp_path / "raw_impressions" / "date=2026-11-01" / "impressions.parquet"
    frames = [pl.DataFrame({"run": [run] * 200_000, "row": range(200_000)}) for run in (1, 2)]
    with ThreadPoolExecutor(2) as pool:  # polars writes outside the GIL: they really overlap
        for _ in range(5):
            list(pool.map(lambda frame: write_parquet_atomically(frame, target), frames))
            written = pl.read_parquet(target)
            assert any(written.equals(frame) for frame in frames)
    assert [p.name for p in target.parent.iterdir()] == ["impressions.parquet"]
