"""The MLflow pyfunc model: raw impressions in, click probabilities out."""

from pathlib import Path

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
