"""The retrieval model in MLflow: request features in, each request's top K ad ids out. The ad
tower runs once, when the model is packaged: the catalog's embeddings and biases travel in the
model, so serving runs only the request tower and one matrix product."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import torch
from mlflow.pyfunc.model import PythonModel

from ml_assets.packaging import code_paths, pip_requirements
from ml_assets.retrieval.model import TwoTower, TwoTowerConfig
from ml_assets.retrieval.world import USER_COLUMNS, top_k

WEIGHTS, AD_EMBEDDINGS, SETTINGS = "weights.pt", "ad_embeddings.npz", "settings.json"
MODEL_ARTIFACT = "model_dir"


def save_model_dir(
    directory: Path, state: dict, config: TwoTowerConfig, catalog: np.ndarray, k: int
) -> Path:
    """Weights, the catalog's embeddings and biases (ad i in row i), and the settings."""
    model = TwoTower(config)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        embeddings = model.ad_tower(torch.from_numpy(catalog.astype(np.int64))).numpy()
        bias = model.ad_bias.weight[:, 0].numpy()
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / WEIGHTS)
    np.savez(directory / AD_EMBEDDINGS, embeddings=embeddings, bias=bias, ad_ids=catalog[:, 0])
    (directory / SETTINGS).write_text(json.dumps({"model_config": config.to_dict(), "k": k}))
    return directory


@dataclass
class LoadedRetrievalModel:
    model: TwoTower
    embeddings: np.ndarray  # (ads, d)
    bias: np.ndarray  # (ads,)
    ad_ids: np.ndarray  # (ads,)
    k: int

    @classmethod
    def load(cls, directory: Path) -> "LoadedRetrievalModel":
        settings = json.loads((directory / SETTINGS).read_text())
        model = TwoTower(TwoTowerConfig.from_dict(settings["model_config"]))
        # Opened as files: the directory may be a bucket's (ml_assets.storage).
        with (directory / WEIGHTS).open("rb") as weights:
            model.load_state_dict(torch.load(weights, weights_only=True))
        model.eval()
        with (directory / AD_EMBEDDINGS).open("rb") as handle:
            ads = dict(np.load(handle))
        return cls(model, ads["embeddings"], ads["bias"], ads["ad_ids"], settings["k"])

    def scores(self, users: np.ndarray) -> np.ndarray:
        """(n, ads) logits of every request (id, segment, region) for every ad."""
        with torch.no_grad():
            vectors = self.model.user_tower(torch.from_numpy(users.astype(np.int64))).numpy()
        return vectors @ self.embeddings.T / self.model.config.temperature + self.bias

    def top_ads(self, users: np.ndarray) -> np.ndarray:
        """(n, k) ad ids, best first."""
        return self.ad_ids[top_k(self.scores(users), self.k)]


class RetrievalModel(PythonModel):
    def load_context(self, context):
        self._loaded = LoadedRetrievalModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None):  # pyright: ignore[reportIncompatibleMethodOverride]
        missing = [name for name in USER_COLUMNS if name not in model_input.columns]
        if missing:
            from mlflow.exceptions import MlflowException

            raise MlflowException.invalid_parameter_value(
                f"requests lack column(s) {', '.join(missing)}; each request needs "
                f"{', '.join(USER_COLUMNS)}"
            )
        return self._loaded.top_ads(model_input[list(USER_COLUMNS)].to_numpy())


def log_retrieval_model(name: str, model_dir: Path, example: pl.DataFrame):
    """Logs the model into the active MLflow run, its code and the ml_assets package with it."""
    import mlflow

    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).with_name("two_tower_model.py")),
        artifacts={MODEL_ARTIFACT: str(model_dir)},
        code_paths=code_paths(),
        pip_requirements=pip_requirements(),
        input_example=example.select(USER_COLUMNS).head(3).to_pandas(),
    )
