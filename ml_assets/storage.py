"""Where pipeline data lives, addressed by URI: a local folder (the embedded default) or an
S3-compatible bucket (`s3://bucket/prefix`, any endpoint), through fsspec's universal_pathlib.

A `UPath` is a `pathlib.Path` for local folders and behaves like one for buckets, so the
pipeline's code reads the same either way. What differs is handled here: reading Parquet, removing
a folder, copying a folder in or out, and the pyarrow filesystem that Ray Data and Ray Train
need to reach the same files from every node.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard, cast

import polars as pl
from upath import UPath

REMOTE_PROTOCOLS = ("s3", "s3a")


def open_root(uri: str, *, endpoint_url: str = "", key: str = "", secret: str = "") -> Path:
    """The folder `uri` names, with the S3 endpoint and credentials attached to it and to every
    path below it. Unset, they come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY; without those, AWS's endpoint and the rest of the AWS chain (a pod's
    role, ...)."""
    protocol = uri.split("://", 1)[0] if "://" in uri else ""
    if protocol and protocol not in (*REMOTE_PROTOCOLS, "file"):
        raise ValueError(
            f"storage root {uri!r} uses {protocol}://, which ml_assets does not support; use a "
            "local folder or s3://bucket/prefix (any S3-compatible store, with its endpoint)"
        )
    if protocol in REMOTE_PROTOCOLS:
        # Read here, not left to botocore, so that they are part of fsspec's instance cache key:
        # a process whose environment changes (a test session, a long-lived code server) must
        # never reuse a client made for another store or other credentials.
        endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL", "")
        key = key or os.environ.get("AWS_ACCESS_KEY_ID", "")
        secret = secret or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        # No listings cache: s3fs keeps a folder's listing for the life of the process by
        # default, so a code server would never see what run pods write after it first looked
        # (new landed days, X-Ray records, runs' outputs).
        options: dict[str, Any] = {"use_listings_cache": False}
        if endpoint_url:
            options["endpoint_url"] = endpoint_url
        if key or secret:
            options.update(key=key, secret=secret)
        return cast(Path, UPath(uri, **options))  # UPath has pathlib.Path's methods
    return Path(uri.removeprefix("file://")).expanduser().resolve()


def resolve(path: "str | Path", like: Path) -> Path:
    """`path` (a URI or local path, as assets pass them to each other) with `like`'s storage
    options: a bucket path handed over as text gets its endpoint and credentials back."""
    if isinstance(path, Path | UPath):
        return path
    text = str(path)
    if is_remote(like) and text.startswith(f"{like.protocol}://"):
        return cast(Path, UPath(text, **like.storage_options))
    return open_root(text)


def is_remote(path: object) -> TypeGuard[UPath]:
    return isinstance(path, UPath) and path.protocol in REMOTE_PROTOCOLS


def content_version(path: Path) -> str:
    """A token that changes whenever the file is rewritten. For a bucket's object it is its ETag
    (the content's hash): LastModified has whole seconds only, so two writes in one second would
    look alike. For a local file, its modification time in nanoseconds."""
    if is_remote(path):
        info = path.fs.info(path.path)
        etag = info.get("ETag") or info.get("etag")
        return str(etag) if etag else f"{info.get('size')}-{info.get('LastModified')}"
    return str(path.stat().st_mtime_ns)


def read_parquet(path: Path) -> pl.DataFrame:
    if not is_remote(path):
        return pl.read_parquet(path)
    with path.open("rb") as handle:
        return pl.read_parquet(handle)


def scan_parquet(paths: list[Path]) -> pl.LazyFrame:
    """One lazy frame over Parquet files, streamed (polars reads buckets itself, given the same
    endpoint and credentials)."""
    if not paths or not is_remote(paths[0]):
        return pl.scan_parquet([str(p) for p in paths])
    return pl.scan_parquet([str(p) for p in paths], storage_options=polars_options(paths[0]))


def polars_options(path: UPath) -> dict[str, str]:
    """`path`'s fsspec options (`open_root` put the AWS_* settings there) as polars' object
    store names them."""
    options = path.storage_options
    names = {"endpoint_url": "aws_endpoint_url", "key": "aws_access_key_id"}
    names["secret"] = "aws_secret_access_key"
    converted = {names[k]: str(v) for k, v in options.items() if k in names and v}
    if converted.get("aws_endpoint_url", "").startswith("http://"):
        converted["aws_allow_http"] = "true"
    return converted


def remove_tree(path: Path) -> None:
    """Removes a folder and what it holds; nothing there is fine."""
    if not is_remote(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    if path.exists():
        path.fs.rm(path.path, recursive=True)


def move_tree(source: Path, target: Path) -> None:
    """Moves a folder. A bucket has no folders to rename, so each object is copied, then the
    source removed (fsspec's recursive `mv` also tries to copy the folder entries that some
    stores, SeaweedFS among them, list as keys, and fails on them)."""
    if not is_remote(source):
        source.rename(target)
        return
    prefix = source.path.rstrip("/")
    for key in object_keys(source):
        source.fs.copy(key, arrow_path(target).rstrip("/") + key.removeprefix(prefix))
    source.fs.rm(prefix, recursive=True)


def object_keys(folder: UPath) -> list[str]:
    """The keys of the objects under a bucket's folder, without the folder entries that some
    stores (SeaweedFS among them) list beside them, and that stay after their objects go."""
    prefix = folder.path.rstrip("/")
    found: dict[str, dict] = folder.fs.find(prefix, detail=True)  # type: ignore[assignment]
    return [key for key, entry in found.items() if entry["type"] == "file" and key != prefix]


def upload_tree(local: Path, target: Path) -> None:
    """Copies a local folder's files to `target` (a folder, local or in a bucket)."""
    if not is_remote(target):
        shutil.copytree(local, target, dirs_exist_ok=True)
        return
    for file in sorted(p for p in local.rglob("*") if p.is_file()):
        target.fs.put_file(str(file), (target / file.relative_to(local).as_posix()).path)


@contextmanager
def local_copy(path: Path) -> Iterator[Path]:
    """A local folder holding what `path` holds: `path` itself when it is local, else a
    temporary download that is removed after the block."""
    if not is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="ml_assets-") as folder:
        path.fs.get(path.path.rstrip("/") + "/", folder + "/", recursive=True)
        yield Path(folder)


@contextmanager
def local_file(path: Path) -> Iterator[Path]:
    """A local file holding what `path` holds: `path` itself when it is local, else a temporary
    download (for a program that reads only local files) removed after the block."""
    if not is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="ml_assets-") as folder:
        copy = Path(folder, path.name)
        path.fs.get_file(path.path, str(copy))
        yield copy


def arrow_filesystem(path: Path):
    """The pyarrow filesystem for Ray Data, Ray Train and pyarrow.parquet (None: local, which
    they handle natively). It wraps this path's own fsspec filesystem, so its endpoint and
    credentials travel with it when Ray pickles it to the workers."""
    if not is_remote(path):
        return None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return PyFileSystem(FSSpecHandler(path.fs))


def arrow_path(path: "Path | UPath") -> str:
    """`path` as its `arrow_filesystem` names it (a bucket path has no scheme there)."""
    return path.path if is_remote(path) else str(path)
