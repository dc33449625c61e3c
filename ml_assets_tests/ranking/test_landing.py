import os
import time

import polars as pl

from ml_assets.ranking.landing import not_ready_reason, scan_landing, still_settling
from ml_assets.ranking.sources import FileSourceSpec
from ml_assets.ranking.synthetic import SyntheticSpec, generate_day


def land(directory, date, rows=300, *, name="{date}.parquet", drop=()):
    frame, _ = generate_day(SyntheticSpec(), date, rows)
    path = directory / name.format(date=date)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.drop(list(drop)).write_parquet(path)
    return path


def test_scan_finds_the_day_files_and_nothing_else(tmp_path):
    for date in ("2026-11-02", "2026-11-01", "2025-12-31"):
        land(tmp_path, date)
    (tmp_path / "2026-13-45.parquet").write_bytes(b"x")  # matches the shape, no real day
    (tmp_path / "notes.parquet").write_bytes(b"x")
    found = scan_landing(FileSourceSpec(path=str(tmp_path)), "2026-01-01")
    assert [f.date for f in found] == ["2026-11-01", "2026-11-02"]
    assert scan_landing(FileSourceSpec(path=str(tmp_path / "absent")), "2026-01-01") == []


def test_nested_patterns_and_fingerprints_that_change_on_rewrite(tmp_path):
    spec = FileSourceSpec(path=str(tmp_path), file_pattern="day={date}/part-0.parquet")
    path = land(tmp_path, "2026-11-03", name="day={date}/part-0.parquet")
    (first,) = scan_landing(spec, "2026-01-01")
    assert first.date == "2026-11-03" and not_ready_reason(spec, first) is None
    assert scan_landing(spec, "2026-01-01")[0].fingerprint == first.fingerprint
    land(tmp_path, "2026-11-03", rows=400, name="day={date}/part-0.parquet")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert scan_landing(spec, "2026-01-01")[0].fingerprint != first.fingerprint


def test_a_file_still_being_written_waits(tmp_path):
    land(tmp_path, "2026-11-01")
    (landed,) = scan_landing(FileSourceSpec(path=str(tmp_path)), "2026-01-01")
    assert still_settling(landed, settle_seconds=60)
    assert not still_settling(landed, settle_seconds=60, now=landed.changed + 61)


def test_a_copy_that_keeps_old_timestamps_still_settles_and_counts_as_new_data(tmp_path):
    """`cp -p` / `rsync -a` set the modification time back to the source's; the inode's change
    time says the file was written just now."""
    spec = FileSourceSpec(path=str(tmp_path))
    path = land(tmp_path, "2026-11-01")
    a_week_ago = time.time_ns() - 7 * 86400 * 10**9
    os.utime(path, ns=(a_week_ago, a_week_ago))
    (landed,) = scan_landing(spec, "2026-01-01")
    assert landed.modified_ns == a_week_ago
    assert still_settling(landed, settle_seconds=60)
    # Re-delivered as rsync does (a temporary file renamed over it) with the same size and the
    # same preserved modification time: new data.
    temporary = tmp_path / ".2026-11-01.parquet.rsync"
    temporary.write_bytes(path.read_bytes())
    os.utime(temporary, ns=(a_week_ago, a_week_ago))
    temporary.replace(path)
    (again,) = scan_landing(spec, "2026-01-01")
    assert (again.size, again.modified_ns) == (landed.size, landed.modified_ns)
    assert again.fingerprint != landed.fingerprint


def test_half_written_and_changed_schema_files_say_why(tmp_path):
    spec = FileSourceSpec(path=str(tmp_path))
    good = land(tmp_path, "2026-11-01").read_bytes()
    (tmp_path / "2026-11-02.parquet").write_bytes(good[: len(good) // 2])
    land(tmp_path, "2026-11-03", drop=["C5"])
    (tmp_path / "2026-11-04.parquet").write_bytes(b"")
    reasons = {f.date: not_ready_reason(spec, f) for f in scan_landing(spec, "2026-01-01")}
    assert reasons["2026-11-01"] is None
    assert "cannot be read as parquet" in reasons["2026-11-02"]
    assert "half-written or corrupt" in reasons["2026-11-02"]
    assert "lacks 1 configured column(s): C5" in reasons["2026-11-03"]
    assert "is empty" in reasons["2026-11-04"]


def test_a_csv_cut_mid_line_is_not_ready(tmp_path):
    spec = FileSourceSpec(path=str(tmp_path), format="csv", file_pattern="{date}.csv")
    frame, _ = generate_day(SyntheticSpec(), "2026-11-01", 50)
    frame.write_csv(tmp_path / "2026-11-01.csv")
    text = (tmp_path / "2026-11-01.csv").read_text()
    (tmp_path / "2026-11-02.csv").write_text(text[: len(text) - 7])
    reasons = {f.date: not_ready_reason(spec, f) for f in scan_landing(spec, "2026-01-01")}
    assert reasons["2026-11-01"] is None
    assert "ends in the middle of a line" in reasons["2026-11-02"]
    assert pl.read_csv(tmp_path / "2026-11-02.csv").height > 0  # a reader alone would take it
