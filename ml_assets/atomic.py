"""Writing a file so that readers see the old one or the new one, never half of one."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a new temporary file beside `path` to write, which is flushed to disk and renamed
    over `path` when the block succeeds and removed when it fails. `mkstemp` creates the name
    exclusively: pods on shared storage share pids (each container's first process is 1), so a
    pid in the name would let two writers write into one file.

    In an object store (`path` a bucket's UPath) the block writes a local temporary file, which
    is uploaded when it succeeds: an object appears whole when its upload completes, never in
    part, and a failed block uploads nothing."""
    from ml_assets.storage import is_remote

    if is_remote(path):
        with tempfile.TemporaryDirectory(prefix="ml_assets-") as folder:
            temporary = Path(folder, path.name)
            yield temporary
            path.fs.put_file(str(temporary), path.path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        _fsync(temporary)  # the data is on disk before the name points at it
        temporary.replace(path)
        _fsync(path.parent)  # and the rename survives a crash
    finally:
        temporary.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
