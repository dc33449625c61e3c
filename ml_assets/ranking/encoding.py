"""Feature frames -> model inputs: categorical values to embedding ids, dense columns standardized.

Kept apart from the model so training (per Ray Data block), evaluation and the served MLflow model
encode exactly the same way.
"""

import numpy as np
import polars as pl

from ml_assets.ranking.schema import MISSING_FLAG_SUFFIX
from ml_assets.ranking.vocabulary import OOV_ID, Vocabulary


def encode(features: pl.DataFrame, vocabulary: Vocabulary) -> pl.DataFrame:
    """Categorical columns become Int32 ids (0 = unknown). Dense columns are standardized; a
    missing value becomes the mean (0) plus 1 in its `<name>__missing` column."""
    schema = vocabulary.schema
    vocabulary.require_features(schema)
    expressions = []
    if schema.label in features.columns:
        expressions.append(pl.col(schema.label).cast(pl.Float32))
    for name in schema.dense:
        mean, std = vocabulary.dense_mean[name], vocabulary.dense_std[name]
        value = pl.col(name)
        if not vocabulary.dense_missing_flags:
            value = value.fill_null(0.0)  # how models trained before missing flags saw it
        expressions.append(((value - mean) / std).fill_null(0.0).cast(pl.Float32).alias(name))
    if vocabulary.dense_missing_flags:
        expressions.extend(
            pl.col(name).is_null().cast(pl.Float32).alias(f"{name}{MISSING_FLAG_SUFFIX}")
            for name in schema.dense
        )
    for name in schema.categorical:
        known = vocabulary.values[name]
        expressions.append(
            pl.col(name)
            .replace_strict(
                known, list(range(1, len(known) + 1)), default=OOV_ID, return_dtype=pl.Int32
            )
            .alias(name)
        )
    return features.select(expressions)


def to_arrays(
    batch: dict[str, np.ndarray], dense: tuple[str, ...], categorical: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Column batch (as Ray Data yields it) -> (dense float32 [n, d], ids int64 [n, c])."""
    dense_matrix = np.stack([batch[c] for c in dense], axis=1).astype(np.float32, copy=False)
    id_matrix = np.stack([batch[c] for c in categorical], axis=1).astype(np.int64, copy=False)
    return dense_matrix, id_matrix
