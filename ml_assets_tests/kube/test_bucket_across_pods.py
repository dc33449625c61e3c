"""Storage by URI in the production topology: the step's host and a Ray worker pod share no disk,
only a bucket on a real S3 server (SeaweedFS) inside the node's network. The worker pod gets the
bucket's endpoint and credentials from the `ml-assets-storage` Secret, as k8s/ deploys it."""

import json
import time

import polars as pl

from ml_assets.defs.resources import write_parquet_atomically
from ml_assets.storage import open_root, read_parquet
from ml_assets_tests.kube.conftest import (
    BUCKET,
    GROUP,
    NAMESPACE,
    PLURAL,
    RAY_TOKEN,
    VERSION,
)
from ml_assets_tests.kube.ray_probe import run_script_job
from ml_assets_tests.kube.test_real_operator import create_ready_cluster

# Runs as a Ray job on the head pod; its one task runs on the worker pod (the head has no CPUs).
ACROSS = """
import json, os, socket, sys, ray
ray.init()
@ray.remote(num_cpus=0.5)
def summarise(root_uri, host_folder):
    from ml_assets.atomic import atomic_path
    from ml_assets.storage import open_root, read_parquet
    root = open_root(root_uri)
    window = read_parquet(root / "encoded" / "2026-11-01.parquet")
    summary = {
        "host": socket.gethostname(),
        "rows": window.height,
        "clicks": int(window["label"].sum()),
        "sees_the_steps_folder": os.path.exists(host_folder),
        "credentials_from": sorted(k for k in os.environ if k.startswith("AWS_")),
    }
    with atomic_path(root / "from_worker" / "summary.json") as temporary:
        temporary.write_text(json.dumps(summary))
    return summary["host"]
print("PROBE " + json.dumps({"host": ray.get(summarise.remote(sys.argv[1], sys.argv[2]))}))
"""


def test_a_worker_pod_reads_the_window_the_step_wrote_and_writes_back(
    real_operator, node_s3, admin, tmp_path
):
    from kubernetes import client

    core = client.CoreV1Api(admin)
    # node_s3 created the Secret and set this process's AWS_* variables
    root_uri = f"s3://{BUCKET}/across-pods"
    root = open_root(root_uri)
    window = pl.DataFrame({"label": [1, 0, 0, 1, 0] * 200, "C1": ["a"] * 1000})
    write_parquet_atomically(window, root / "encoded" / "2026-11-01.parquet")
    window.write_parquet(tmp_path / "the-steps-own-copy.parquet")  # on the step's disk only

    started = time.monotonic()
    name, status = create_ready_cluster(admin, "dev")
    # The step's folder is passed as text: the job's command line may name it, not reach it.
    script = ACROSS.replace("sys.argv[1], sys.argv[2]", f"{root_uri!r}, {str(tmp_path)!r}")
    ran = run_script_job(f"http://{status['head']['podIP']}:8265", RAY_TOKEN, script)
    print(f"cluster ready and the task done {time.monotonic() - started:.1f}s after request")

    summary = json.loads((root / "from_worker" / "summary.json").read_text())
    worker = next(
        pod.metadata.name
        for pod in core.list_namespaced_pod(
            NAMESPACE, label_selector=f"ray.io/cluster={name},ray.io/node-type=worker"
        ).items
    )
    assert ran["host"] == summary["host"] == worker
    assert summary["rows"] == 1000 and summary["clicks"] == 400
    assert summary["sees_the_steps_folder"] is False  # no shared disk
    assert summary["credentials_from"] == [
        "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY"
    ]  # fmt: skip
    assert read_parquet(root / "encoded" / "2026-11-01.parquet").equals(window)
    client.CustomObjectsApi(admin).delete_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, name
    )
