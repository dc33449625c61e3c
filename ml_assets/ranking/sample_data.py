"""Encoded synthetic training files, ready for `fit_distributed`: what benchmarks and training
tests share (generate days, transform, fit a vocabulary, encode)."""

from pathlib import Path

import polars as pl

from ml_assets.ranking.encoding import encode
from ml_assets.ranking.features import transform
from ml_assets.ranking.model import ModelConfig
from ml_assets.ranking.schema import FeatureSchema
from ml_assets.ranking.sources import read_synthetic_day
from ml_assets.ranking.synthetic import SyntheticSpec
from ml_assets.ranking.vocabulary import fit_vocabulary

DAYS = ("2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04")


def encoded_synthetic_days(
    directory: Path, rows: int, days: tuple[str, ...] = DAYS
) -> tuple[FeatureSchema, list[str], ModelConfig]:
    """`rows` synthetic rows over `days`, encoded as one Parquet file per day in `directory`;
    returns the schema, the files and a DCN-v2 config sized to the vocabulary."""
    spec = SyntheticSpec()
    feature_files = []
    for day in days:
        raw, _ = read_synthetic_day(spec, day, rows // len(days))
        path = directory / f"features-{day}.parquet"
        transform(raw, spec.schema).write_parquet(path)
        feature_files.append(path)
    vocabulary = fit_vocabulary(
        feature_files,
        spec.schema,
        train_dates=list(days),
        holdout_dates=[],
        min_count=3,
        max_size=100_000,
    )
    encoded = []
    for path in feature_files:
        target = directory / path.name.replace("features", "encoded")
        encode(pl.read_parquet(path), vocabulary).write_parquet(target)
        encoded.append(str(target))
    config = ModelConfig(
        cardinalities=tuple(vocabulary.cardinality(c) for c in spec.schema.categorical),
        dense_features=len(spec.schema.dense),
    )
    return spec.schema, encoded, config
