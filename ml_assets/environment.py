"""The one place that decides which environment the code location runs in.

`ML_ASSETS_ENV=local` (default): embedded Ray, SQLite MLflow and data under `ML_ASSETS_HOME`.
`ML_ASSETS_ENV=production`: the same assets against external services configured by env vars.
"""

import datetime as dt
import math
import os
from pathlib import Path

ENVIRONMENTS = ("local", "production")


def environment() -> str:
    value = os.environ.get("ML_ASSETS_ENV", "local")
    if value not in ENVIRONMENTS:
        raise ValueError(
            f"ML_ASSETS_ENV={value!r} is not a known environment; set it to one of "
            f"{', '.join(ENVIRONMENTS)}"
        )
    return value


def home() -> Path:
    """Where local data, models and the local MLflow store live (`.ml_assets/` in the cwd)."""
    return Path(os.environ.get("ML_ASSETS_HOME", Path.cwd() / ".ml_assets")).resolve()


def local_mlflow_tracking_uri() -> str:
    return f"sqlite:///{home() / 'mlflow.db'}"


MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"


def mlflow_tracking_uri() -> str | None:
    """The MLflow server the deployment names (None: the local store). In production a store on
    the pod's own disk is refused: every run pod would get an empty registry of its own, find
    no champion, and promote every model."""
    uri = os.environ.get(MLFLOW_TRACKING_URI) or None
    if environment() == "production" and (
        uri is None or not uri.startswith(("http", "databricks"))
    ):
        raise ValueError(
            f"ML_ASSETS_ENV=production needs {MLFLOW_TRACKING_URI} set to the MLflow server "
            f"(http(s)://...), not {uri or 'unset'}: a local store is private to one pod"
        )
    return uri


STORAGE_ROOT = "ML_ASSETS_STORAGE_ROOT"
S3_SETTINGS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def storage_root() -> str | None:
    """Where pipeline data lives when the deployment names it (None: `$ML_ASSETS_HOME/storage`).
    In production it must be a bucket: run pods, Ray pods and the daemon share no disk, so a
    local root would leave each step unable to read what the one before it wrote."""
    root = os.environ.get(STORAGE_ROOT) or None
    if environment() == "production" and (root is None or not root.startswith("s3://")):
        raise ValueError(
            f"ML_ASSETS_ENV=production needs {STORAGE_ROOT} set to a bucket (s3://bucket/prefix, "
            f"with AWS_ENDPOINT_URL for a store other than AWS), not {root or 'unset'}: pods "
            "share no disk"
        )
    return root


def xray_root() -> str:
    """Where X-Ray records go by default: beside the pipeline's data."""
    root = storage_root()
    return f"{root.rstrip('/')}/xray" if root else str(home() / "xray")


def ray_mode() -> str:
    """Which Ray the steps use: `local` (embedded, default), `kuberay` (an ephemeral RayCluster
    per materialization) or `address` (an existing cluster)."""
    return os.environ.get("ML_ASSETS_RAY", "local")


def kuberay_settings() -> dict[str, str | None]:
    """`kuberay` mode's settings: profile name and folder, namespace override, how to reach the
    head, and the pod the step runs in."""
    return {
        "profile": os.environ.get("ML_ASSETS_RAY_PROFILE", "cpu-small"),
        "namespace": os.environ.get("ML_ASSETS_RAY_NAMESPACE"),
        "connect_host": os.environ.get("ML_ASSETS_RAY_CONNECT_HOST"),
        "head_address": os.environ.get("ML_ASSETS_RAY_HEAD_ADDRESS"),
        "profiles_dir": os.environ.get("ML_ASSETS_RAY_PROFILES_DIR"),
        "kube_config": os.environ.get("KUBECONFIG"),
        # The step's own pod (downward API), which then owns its clusters.
        "owner_pod_name": os.environ.get("ML_ASSETS_POD_NAME"),
        "owner_pod_uid": os.environ.get("ML_ASSETS_POD_UID"),
        "owner_pod_namespace": os.environ.get("ML_ASSETS_POD_NAMESPACE"),
    }


def positive_setting(name: str, default: float) -> float:
    """A positive, finite number from environment variable `name`: a negative or NaN setting
    would silently change what a sensor does (a negative age deletes live clusters, NaN none)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive number; unset it for {default:g}")
    return value


def sensor_interval_seconds() -> int:
    """How often the retraining sensors look (`ML_ASSETS_SENSOR_INTERVAL_S`, default 60): a new
    file is noticed within this long."""
    return max(1, round(positive_setting("ML_ASSETS_SENSOR_INTERVAL_S", 60)))


PARTITIONS_START = "ML_ASSETS_PARTITIONS_START"
DEFAULT_PARTITIONS_START = "2026-01-01"


def partitions_start() -> str:
    """The first day of the daily partitions: where the deployment's data starts."""
    raw = os.environ.get(PARTITIONS_START, DEFAULT_PARTITIONS_START)
    try:
        return dt.date.fromisoformat(raw).isoformat()
    except ValueError:
        raise ValueError(
            f"{PARTITIONS_START}={raw!r} is not a day; set it to the first day of your data, "
            "as YYYY-MM-DD"
        ) from None
