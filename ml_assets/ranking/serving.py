"""The MLflow pyfunc model: raw impressions in, click probabilities out."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from mlflow.pyfunc.model import PythonModel

from ml_assets.ranking.artifacts import LoadedModel

MODEL_ARTIFACT = "model_dir"


class ClickThroughModel(PythonModel):
    """Packages weights + vocabulary, so the registry version alone scores new impressions."""

    def load_context(self, context):
        self._loaded = LoadedModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None):  # pyright: ignore[reportIncompatibleMethodOverride]
        return self._loaded.predict_raw(pl.from_pandas(model_input))


def pip_requirements() -> list[str]:
    """Pinned from the running environment. MLflow would record `torch==2.13.0` without the
    `+cpu` local version and pull a multi-GB CUDA build on install; pin the CPU index instead."""
    from importlib.metadata import version

    torch_version = version("torch").split("+")[0]
    return [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        f"torch=={torch_version}",
        f"polars=={version('polars')}",
        f"numpy=={version('numpy')}",
        f"pandas=={version('pandas')}",
        f"mlflow=={version('mlflow')}",
    ]


def code_paths() -> list[str]:
    """The ml_assets package travels inside the model, so the version scores with the code it
    was trained with, also where ml_assets is not installed."""
    return [str(Path(__file__).resolve().parents[1])]


# Runs in a fresh interpreter that never imported ml_assets: MLflow puts the model's own copy of
# the package first on sys.path, so the version scores with the code it was trained with.
_PREDICT = """
import sys
import mlflow, numpy as np, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
np.save(sys.argv[3], np.asarray(model.predict(pd.read_parquet(sys.argv[2])), dtype=np.float64))
"""


def predict_with_its_own_code(model_uri: str, rows: Path, tracking_uri: str) -> np.ndarray:
    """Click probabilities of a registered model for the rows of a Parquet file."""
    with tempfile.TemporaryDirectory(prefix="ml-assets-score-") as scratch:
        out = Path(scratch, "probabilities.npy")
        # -I: neither the working directory nor PYTHONPATH may put another ml_assets first.
        done = subprocess.run(
            [sys.executable, "-I", "-c", _PREDICT, model_uri, str(rows), str(out)],
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"scoring {model_uri} failed (exit {done.returncode}): "
                f"{done.stderr.strip()[-2000:]}"
            )
        return np.load(out)
