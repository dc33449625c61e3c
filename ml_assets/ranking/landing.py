"""Daily files landing at a file source: which days are there, and is each one ready to ingest.

A file is ready when it has stopped changing (a writer still appending would be read half-way),
is complete (a Parquet footer, a last line that ends) and its first rows pass the same
validation as ingest (columns, labels, numeric dense values); ingest validates every row. What is
not ready gets a reason a person can act on.

"Stopped changing" reads the inode's change time as well as the modification time: `cp -p`,
`rsync -a` and `touch -d` set the modification time back to the source's, but no tool can set
the change time, which every write and rename moves to now.
"""

import datetime as dt
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ml_assets.errors import DataValidationError
from ml_assets.ranking.sources import FileSourceSpec, read_file_day

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SAMPLE_ROWS = 10_000  # validated per landed file by the sensor, in the code server


@dataclass(frozen=True)
class LandedFile:
    date: str
    path: Path
    size: int
    inode: int  # a file renamed into place (rsync, atomic writers) is a new inode
    modified_ns: int  # the modification time, which copies may set back
    changed_ns: int  # the inode's change time, which only the kernel sets

    @property
    def changed(self) -> float:
        """When the file last changed, in seconds since the epoch."""
        return max(self.modified_ns, self.changed_ns) / 1e9

    @property
    def fingerprint(self) -> str:
        """Changes when the file is rewritten, also by a copy that keeps the old timestamps: a
        re-delivered day is new data; the same bytes seen again are not."""
        return f"{self.size}-{self.inode}-{self.modified_ns}-{self.changed_ns}"

    @property
    def legacy_fingerprint(self) -> str:
        """The fingerprint that sensor cursors of ml_assets 0.1 hold (size and mtime)."""
        seconds = self.modified_ns // 10**9 + (self.modified_ns % 10**9) * 1e-9  # as st_mtime
        return f"{self.size}-{int(seconds * 1e6)}"


def scan_landing(spec: FileSourceSpec, first_day: str) -> list[LandedFile]:
    """Every file under the source path that matches the day pattern, from `first_day` on."""
    root = Path(spec.path)
    if not root.is_dir():
        return []
    prefix, _, suffix = spec.file_pattern.partition("{date}")
    found = []
    for path in root.glob(spec.file_pattern.replace("{date}", "????-??-??")):
        relative = path.relative_to(root).as_posix()
        date = relative.removeprefix(prefix).removesuffix(suffix)
        if not DATE.fullmatch(date) or date < first_day or not path.is_file():
            continue
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            continue  # 2026-13-45 matches the pattern but is no day
        stat = path.stat()
        found.append(
            LandedFile(date, path, stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)
        )
    return sorted(found, key=lambda f: f.date)


def still_settling(landed: LandedFile, settle_seconds: float, now: float | None = None) -> bool:
    """A file changed less than `settle_seconds` ago may still be being written: look again
    later rather than read half of it."""
    return (time.time() if now is None else now) - landed.changed < settle_seconds


def not_ready_reason(
    spec: FileSourceSpec, landed: LandedFile, sample_rows: int = SAMPLE_ROWS
) -> str | None:
    """Why a settled file must not be ingested, or None when it is ready."""
    if landed.size == 0:
        return f"{landed.path.name} is empty: a failed or unfinished export"
    if spec.format in ("csv", "criteo_tsv") and not _ends_with_newline(landed.path):
        return (
            f"{landed.path.name} ends in the middle of a line: half-written or truncated; "
            "re-deliver the whole file"
        )
    try:
        read_file_day(spec, landed.date, max_rows=sample_rows)
    except DataValidationError as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 (any reader error means an unusable file)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return (
            f"{landed.path.name} cannot be read as {spec.format} ({type(error).__name__}: "
            f"{first_line[:200]}): half-written or corrupt; re-deliver it"
        )
    return None


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"
