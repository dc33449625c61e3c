"""Per-partition feature transforms (polars): what `ad_features` computes for one day."""

import polars as pl

from ml_assets.ranking.schema import MISSING_TOKEN, FeatureSchema


def transform(raw: pl.LazyFrame | pl.DataFrame, schema: FeatureSchema) -> pl.DataFrame:
    """Dense: log1p of the non-negative part; nulls stay null. A missing count is not a zero
    count (Criteo's missing values mean "not logged"), so the encoder turns them into a missing
    flag beside the value (ranking.encoding) instead of folding them into log1p(0).

    Categorical: nulls become an explicit missing token, so "missing" is a learnable value.
    The mapping of categorical values to embedding ids needs the vocabulary of the whole training
    window, so it happens later (ranking.encoding), not per partition.
    """
    lazy = raw.lazy()
    has_label = schema.label in lazy.collect_schema().names()  # absent when serving
    frame = lazy.select(
        *([pl.col(schema.label).cast(pl.Float32)] if has_label else []),
        *[pl.col(c).clip(lower_bound=0).log1p().cast(pl.Float32) for c in schema.dense],
        *[pl.col(c).fill_null(MISSING_TOKEN) for c in schema.categorical],
    )
    return frame.collect()
