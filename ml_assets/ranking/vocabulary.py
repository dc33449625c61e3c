"""Per-feature vocabularies and dense statistics over a training window."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ml_assets.atomic import atomic_path
from ml_assets.errors import DataValidationError
from ml_assets.ranking.schema import MISSING_FLAG_SUFFIX, FeatureSchema
from ml_assets.storage import scan_parquet

OOV_ID = 0  # id 0 of every feature is "not in the vocabulary"


@dataclass
class Vocabulary:
    schema: FeatureSchema
    values: dict[str, list[str]]  # feature -> values; a value's id is its index + 1
    dense_mean: dict[str, float]
    dense_std: dict[str, float]
    train_dates: list[str]
    holdout_dates: list[str]
    rows: int
    coverage: dict[str, float] = field(default_factory=dict)  # share of rows not OOV
    # Training rows per value, aligned with `values`: the embedding prior scales by them.
    # Empty for vocabularies saved before it existed (no prior then).
    counts: dict[str, list[int]] = field(default_factory=dict)
    # A 0/1 missing column per dense feature. False for vocabularies saved before flags existed:
    # their models saw missing counts as log1p(0), and keep being fed that way.
    dense_missing_flags: bool = True
    # Clicks in the training rows; None for vocabularies saved before it was kept.
    clicks: int | None = None

    @property
    def base_rate(self) -> float | None:
        """The training window's click rate, where this vocabulary knows it."""
        return None if self.clicks is None or not self.rows else self.clicks / self.rows

    @property
    def dense_inputs(self) -> tuple[str, ...]:
        """The encoded columns the model reads as its dense input, in order."""
        flags = [f"{c}{MISSING_FLAG_SUFFIX}" for c in self.schema.dense]
        return (*self.schema.dense, *(flags if self.dense_missing_flags else []))

    def cardinality(self, feature: str) -> int:
        """Embedding rows the feature needs: its values plus the OOV id."""
        return len(self.values[feature]) + 1

    def id_counts(self) -> np.ndarray | None:
        """Training rows per embedding row, features in schema order (the OOV row of each
        feature counts the rows that mapped to it); None when this vocabulary has no counts."""
        if not self.counts:
            return None
        per_feature = []
        for name in self.schema.categorical:
            known = self.counts[name]
            per_feature.append([max(self.rows - sum(known), 0), *known])
        return np.concatenate([np.asarray(c, dtype=np.int64) for c in per_feature])

    def require_features(self, schema: FeatureSchema) -> None:
        for name in schema.categorical:
            if name not in self.values:
                raise DataValidationError(
                    partition=None,
                    column=name,
                    problem="the feature vocabulary has no entry for this categorical feature",
                    fix="re-materialize feature_vocabulary for the current feature schema",
                )
        for name in schema.dense:
            if name not in self.dense_mean:
                raise DataValidationError(
                    partition=None,
                    column=name,
                    problem="the feature vocabulary has no statistics for this dense feature",
                    fix="re-materialize feature_vocabulary for the current feature schema",
                )

    def save(self, path: Path) -> None:
        payload = {
            "schema": self.schema.to_dict(),
            "values": self.values,
            "dense_mean": self.dense_mean,
            "dense_std": self.dense_std,
            "train_dates": self.train_dates,
            "holdout_dates": self.holdout_dates,
            "rows": self.rows,
            "coverage": self.coverage,
            "counts": self.counts,
            "dense_missing_flags": self.dense_missing_flags,
            "clicks": self.clicks,
        }
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(payload))

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        payload = json.loads(path.read_text())
        return cls(
            schema=FeatureSchema.from_dict(payload["schema"]),
            values=payload["values"],
            dense_mean=payload["dense_mean"],
            dense_std=payload["dense_std"],
            train_dates=payload["train_dates"],
            holdout_dates=payload["holdout_dates"],
            rows=payload["rows"],
            coverage=payload.get("coverage", {}),
            counts=payload.get("counts", {}),
            dense_missing_flags=payload.get("dense_missing_flags", False),
            clicks=payload.get("clicks"),
        )


def fit_vocabulary(
    feature_files: list[Path],
    schema: FeatureSchema,
    *,
    train_dates: list[str],
    holdout_dates: list[str],
    min_count: int,
    max_size: int,
) -> Vocabulary:
    """Keep each categorical value seen at least `min_count` times (at most `max_size` per
    feature, most frequent first); everything else maps to the OOV id."""
    scan = scan_parquet(feature_files)
    rows = int(scan.select(pl.len()).collect().item())
    values: dict[str, list[str]] = {}
    coverage: dict[str, float] = {}
    kept_counts: dict[str, list[int]] = {}
    for name in schema.categorical:
        counts = (
            scan.group_by(name)
            .agg(pl.len().alias("n"))
            .filter(pl.col("n") >= min_count)
            .sort(["n", name], descending=[True, False])
            .head(max_size)
            .collect()
        )
        values[name] = counts.get_column(name).to_list()
        kept_counts[name] = counts.get_column("n").to_list()
        coverage[name] = float(counts.get_column("n").sum()) / max(rows, 1)
    stats = scan.select(
        pl.col(schema.label).sum().alias("clicks"),
        *[pl.col(c).mean().alias(f"{c}__mean") for c in schema.dense],
        *[pl.col(c).std().alias(f"{c}__std") for c in schema.dense],
    ).collect()
    return Vocabulary(
        schema=schema,
        values=values,
        dense_mean={c: float(stats[f"{c}__mean"][0] or 0.0) for c in schema.dense},
        # A constant column would divide by zero; 1.0 leaves it centred and harmless.
        dense_std={c: float(stats[f"{c}__std"][0] or 0.0) or 1.0 for c in schema.dense},
        train_dates=train_dates,
        holdout_dates=holdout_dates,
        rows=rows,
        coverage=coverage,
        counts=kept_counts,
        clicks=int(stats["clicks"][0] or 0),
    )
