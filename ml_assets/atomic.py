"""Writing a file so that readers see the old one or the new one, never half of one."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary name beside `path`, renamed over it when the block succeeds and removed
    when it fails. The name is random, not the pid: pods on shared storage share pids (each
    container's first process is 1), and two writers must never write into one temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
