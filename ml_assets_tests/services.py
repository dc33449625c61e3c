"""Services the tests start from the machine's own binaries, and what happens when one is missing.

`make test` installs them (Debian's `postgresql` and `chromium`). Run by hand, without them, the
tests that need them skip and say what to install; under CI=true a missing service fails the
run instead, so a machine that lacks one can never pass by skipping.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`, or fail with it under CI=true."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: a missing service fails the run)", pytrace=False)
    pytest.skip(reason)


# As root, and on a machine that reaches no browser vendor's servers.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str:
    """Debian's chromium, which Playwright drives (it never downloads a browser of its own)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        unavailable("Debian's chromium is not installed (`make browser` installs it)")
    return path


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries: Debian keeps them off PATH, per major version."""
    candidates = [Path(p).parent for p in (shutil.which("initdb"), shutil.which("postgres")) if p]
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    return next(
        (d for d in candidates if (d / "initdb").exists() and (d / "postgres").exists()), None
    )


@dataclass
class PostgresServer:
    """A PostgreSQL server of the test session's own: a fresh cluster in a temporary directory,
    trust auth for user `postgres`, on a free port of 127.0.0.1 only (or of `host`)."""

    port: int
    process: subprocess.Popen
    root: Path
    host: str = "127.0.0.1"

    @classmethod
    def start(
        cls,
        port: int,
        timeout: float = 60,
        host: str = "127.0.0.1",
        wrap: Callable[[list[str]], list[str]] = list,
        trusted_networks: tuple[str, ...] = (),
    ) -> "PostgresServer":
        """On `host`; `wrap` turns the command into one that runs elsewhere (a network
        namespace's `nsenter`); clients from `trusted_networks` (CIDRs) are let in too."""
        bindir = postgres_bindir()
        if bindir is None:
            unavailable("PostgreSQL's server is not installed (`make postgres` installs it)")
        root = Path(tempfile.mkdtemp(prefix="ml_assets_pg_"))
        # PostgreSQL refuses to run as root: as root, the server runs as Debian's `postgres` user.
        as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(root, owner.pw_uid, owner.pw_gid)
            as_user = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}",
                       "--clear-groups"]  # fmt: skip
        data = root / "data"
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        with open(data / "pg_hba.conf", "a") as rules:
            rules.writelines(f"host all all {network} trust\n" for network in trusted_networks)
        log = open(root / "server.log", "w")  # noqa: SIM115 (closed when the server is stopped)
        process = subprocess.Popen(
            wrap([*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                  "-c", f"listen_addresses={host}", "-c", f"unix_socket_directories={root}",
                  "-c", "fsync=off", "-c", "max_connections=200"]),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        server = cls(port, process, root, host)
        server.wait_ready(timeout)
        return server

    def connect(self, dbname: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user="postgres", dbname=dbname)

    def wait_ready(self, timeout: float) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.root / 'server.log').read_text()}")
            try:
                self.connect().close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"postgres not ready after {timeout}s") from None
                time.sleep(0.1)  # polling the server's readiness, not synchronising on a guess

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open sessions are ended), by PID; then the cluster is removed."""
        self.process.send_signal(2)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
