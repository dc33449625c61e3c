"""Daily files landing at a file source: which days are there, and is each one ready to ingest.

A file is ready when it has stopped changing (a writer still appending would be read half-way),
is complete (a Parquet footer, a last line that ends) and passes the same validation as ingest
(columns, labels, numeric dense values). What is not ready gets a reason a person can act on.
"""

import datetime as dt
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ml_assets.ranking.errors import DataValidationError
from ml_assets.ranking.sources import FileSourceSpec, read_file_day

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class LandedFile:
    date: str
    path: Path
    size: int
    modified: float  # seconds since the epoch

    @property
    def fingerprint(self) -> str:
        """Changes when the file is rewritten: a re-delivered day is new data; the same bytes
        seen again are not."""
        return f"{self.size}-{int(self.modified * 1e6)}"


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
        found.append(LandedFile(date, path, stat.st_size, stat.st_mtime))
    return sorted(found, key=lambda f: f.date)


def still_settling(landed: LandedFile, settle_seconds: float, now: float | None = None) -> bool:
    """A file changed less than `settle_seconds` ago may still be being written: look again
    later rather than read half of it."""
    return (time.time() if now is None else now) - landed.modified < settle_seconds


def not_ready_reason(spec: FileSourceSpec, landed: LandedFile) -> str | None:
    """Why a settled file must not be ingested, or None when it is ready."""
    if landed.size == 0:
        return f"{landed.path.name} is empty: a failed or unfinished export"
    if spec.format in ("csv", "criteo_tsv") and not _ends_with_newline(landed.path):
        return (
            f"{landed.path.name} ends in the middle of a line: half-written or truncated; "
            "re-deliver the whole file"
        )
    try:
        read_file_day(spec, landed.date)
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
