"""A trained model on disk: weights, model config and the vocabulary it was trained with.

One directory is everything needed to score raw impressions, which is what the MLflow model
packages and what evaluation and the promotion gate load.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from ml_assets.ranking.configs import ModelConfig
from ml_assets.ranking.encoding import encode, to_arrays
from ml_assets.ranking.features import transform
from ml_assets.ranking.loop import predict_probabilities
from ml_assets.ranking.model import build_model
from ml_assets.ranking.vocabulary import Vocabulary

WEIGHTS = "weights.pt"
MODEL_CONFIG = "model_config.json"
VOCABULARY = "vocabulary.json"


def save_model_dir(
    directory: Path, state_dict: dict, config: ModelConfig, vocabulary: Vocabulary
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, directory / WEIGHTS)
    (directory / MODEL_CONFIG).write_text(json.dumps(config.to_dict()))
    vocabulary.save(directory / VOCABULARY)
    return directory


@dataclass
class LoadedModel:
    model: nn.Module
    vocabulary: Vocabulary

    @classmethod
    def load(cls, directory: Path) -> "LoadedModel":
        """From a local folder or a bucket's (a UPath)."""
        config = ModelConfig.from_dict(json.loads((directory / MODEL_CONFIG).read_text()))
        model = build_model(config)
        with (directory / WEIGHTS).open("rb") as weights:
            model.load_state_dict(torch.load(weights, weights_only=True))
        model.eval()
        return cls(model, Vocabulary.load(directory / VOCABULARY))

    def predict_features(self, features: pl.DataFrame) -> np.ndarray:
        """Click probabilities for rows in the `ad_features` layout."""
        schema = self.vocabulary.schema
        dense_inputs = self.vocabulary.dense_inputs
        encoded = encode(features, self.vocabulary)
        columns = {
            c: encoded.get_column(c).to_numpy() for c in (*dense_inputs, *schema.categorical)
        }
        dense, ids = to_arrays(columns, dense_inputs, schema.categorical)
        return predict_probabilities(self.model, dense, ids)

    def predict_raw(self, raw: pl.DataFrame) -> np.ndarray:
        """Click probabilities for raw impressions (the canonical source layout, label optional)."""
        return self.predict_features(transform(raw, self.vocabulary.schema))
