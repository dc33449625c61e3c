"""Encoded synthetic training files, ready for `fit_distributed`: what benchmarks and training
tests share (generate days, transform, fit a vocabulary, encode)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ml_assets.ranking.configs import ModelConfig
from ml_assets.ranking.encoding import encode
from ml_assets.ranking.features import transform
from ml_assets.ranking.schema import FeatureSchema
from ml_assets.ranking.sources import read_synthetic_day
from ml_assets.ranking.synthetic import SyntheticSpec
from ml_assets.ranking.vocabulary import Vocabulary, fit_vocabulary

DAYS = ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04")


@dataclass
class EncodedWindow:
    encoded_schema: FeatureSchema  # the encoded files' layout: dense includes missing flags
    train_files: list[str]
    holdout_files: list[str]
    holdout_truth: np.ndarray  # true click probability of the holdout rows, in file order
    vocabulary: Vocabulary
    model_config: ModelConfig  # DCN-v2 sized to the vocabulary


def encoded_synthetic_window(
    directory: Path,
    rows_per_day: int,
    train_days: tuple[str, ...],
    holdout_days: tuple[str, ...] = (),
    holdout_rows_per_day: int = 0,
    min_count: int = 3,
    spec: SyntheticSpec | None = None,
) -> EncodedWindow:
    """Synthetic days of `spec`'s world (the default world unless given), one encoded Parquet
    file each, with a vocabulary fitted on the training days only (as feature_vocabulary does) of
    the values seen at least `min_count` times."""
    spec = spec or SyntheticSpec()
    feature_files, truths = {}, []
    for day in (*train_days, *holdout_days):
        rows = rows_per_day if day in train_days else holdout_rows_per_day
        raw, truth = read_synthetic_day(spec, day, rows)
        path = directory / f"features-{day}.parquet"
        transform(raw, spec.schema).write_parquet(path)
        feature_files[day] = path
        if day in holdout_days:
            truths.append(truth.to_numpy())
    vocabulary = fit_vocabulary(
        [feature_files[day] for day in train_days],
        spec.schema,
        train_dates=list(train_days),
        holdout_dates=list(holdout_days),
        min_count=min_count,
        max_size=100_000,
    )
    encoded = {}
    for day, path in feature_files.items():
        target = directory / path.name.replace("features", "encoded")
        encode(pl.read_parquet(path), vocabulary).write_parquet(target)
        encoded[day] = str(target)
    return EncodedWindow(
        encoded_schema=FeatureSchema(
            dense=vocabulary.dense_inputs,
            categorical=spec.schema.categorical,
            label=spec.schema.label,
        ),
        train_files=[encoded[day] for day in train_days],
        holdout_files=[encoded[day] for day in holdout_days],
        holdout_truth=np.concatenate(truths) if truths else np.zeros(0),
        vocabulary=vocabulary,
        model_config=ModelConfig(
            cardinalities=tuple(vocabulary.cardinality(c) for c in spec.schema.categorical),
            dense_features=len(vocabulary.dense_inputs),
        ),
    )


def encoded_synthetic_days(
    directory: Path, rows: int, days: tuple[str, ...] = DAYS
) -> tuple[FeatureSchema, list[str], ModelConfig]:
    """`rows` synthetic training rows over `days`: the encoded files' schema, the files and a
    DCN-v2 config sized to the vocabulary."""
    window = encoded_synthetic_window(directory, rows // len(days), days)
    return window.encoded_schema, window.train_files, window.model_config
