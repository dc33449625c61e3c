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
