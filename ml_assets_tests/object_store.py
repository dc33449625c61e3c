"""A real S3-compatible object store for the tests: SeaweedFS (`weed server` with its S3
gateway), built from its Go module by `devcluster/build_binaries.sh seaweedfs`, listening on
127.0.0.1 only, with SigV4 credentials of the session's own (anonymous requests are refused).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ml_assets_tests.kube.control_plane import BUILD_SCRIPT

# master, volume, filer and S3 gateway, each an HTTP and a gRPC port
PORTS = ("master", "volume", "filer", "s3")


def seaweedfs_binary() -> Path:
    """`weed`, built the first time (about 7 minutes on 2 cores), else found at once."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "seaweedfs"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"building SeaweedFS failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1], "bin", "weed")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    root: Path

    @classmethod
    def start(
        cls,
        timeout: float = 60,
        host: str = "127.0.0.1",
        wrap: Callable[[list[str]], list[str]] = list,
    ) -> "S3Server":
        """On `host`; `wrap` turns the command into one that runs elsewhere (a network
        namespace's `nsenter`)."""
        binary = seaweedfs_binary()
        root = Path(tempfile.mkdtemp(prefix="ml_assets_s3_"))
        access_key, secret_key = "ml-assets-test", secrets.token_hex(16)
        identity = {
            "name": "tests",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        (root / "data").mkdir()
        numbers = free_ports(2 * len(PORTS))
        ports = dict(zip(PORTS, numbers[: len(PORTS)], strict=True))
        grpc = dict(zip(PORTS, numbers[len(PORTS) :], strict=True))
        flags = [f"-{name}.port={port}" for name, port in ports.items()]
        flags += [f"-{name}.port.grpc={port}" for name, port in grpc.items()]
        log = open(root / "server.log", "w")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            wrap([str(binary), "server", f"-dir={root / 'data'}", f"-ip={host}",
                  f"-ip.bind={host}", "-filer", "-s3", f"-s3.config={root / 's3.json'}",
                  "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=256",
                  "-volume.max=32", f"-filer.localSocket={root / 'filer.sock'}", *flags]),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
        )  # fmt: skip
        server = cls(f"http://{host}:{ports['s3']}", access_key, secret_key, process, root)
        try:
            server.wait_ready(timeout)
        except BaseException:
            server.stop()  # a server that never became ready is not left running
            raise
        return server

    @property
    def environment(self) -> dict[str, str]:
        """What a client needs: the endpoint and the credentials, as AWS's variables."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint, key=self.access_key, secret=self.secret_key,
            skip_instance_cache=True,
        )  # fmt: skip

    def create_bucket(self, name: str) -> None:
        self.filesystem().mkdir(name)

    def wait_ready(self, timeout: float) -> None:
        from botocore.exceptions import EndpointConnectionError

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {(self.root / 'server.log').read_text()[-3000:]}")
            try:
                self.filesystem().ls("")  # a signed ListBuckets: the gateway and its filer answer
                return
            # Connection refused (the gateway is not listening yet) comes through s3fs as
            # botocore's EndpointConnectionError, which is not an OSError.
            except (OSError, PermissionError, EndpointConnectionError):
                if time.monotonic() > deadline:  # start() stops the server
                    raise TimeoutError(f"the S3 gateway was not ready after {timeout}s") from None
                time.sleep(0.2)  # polling the server's readiness, not synchronising on a guess

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it lingers; its data goes with it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
