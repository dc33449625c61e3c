"""Synthetic ad impressions with a known click probability, so model quality has a known ceiling.

The "world" (per-id effects, crosses, dense weights, intercept) depends only on the world seed, so
it is identical for every day; each day's rows depend on (seed, date). Clicks are drawn as
y ~ Bernoulli(sigmoid(z)); the true probability is returned apart from the features so evaluation
can report the optimum without it ever reaching the model.
"""

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

from ml_assets.ranking.schema import CRITEO_CATEGORICAL, CRITEO_DENSE, LABEL, FeatureSchema

TRUE_PROBABILITY = "true_probability"


@dataclass(frozen=True)
class SyntheticSpec:
    """Knobs of the generator. Defaults give a Criteo-shaped problem learnable on a laptop."""

    seed: int = 7
    base_ctr: float = 0.25
    max_vocabulary: int = 5_000
    zipf_exponent: float = 1.15
    id_effect_scale: float = 0.55
    cross_pairs: int = 6
    cross_rank: int = 2
    cross_scale: float = 0.45
    dense_effect_scale: float = 0.35
    # 0: every categorical feature carries signal. k > 0: only k of them do (drawn by the seed),
    # the rest are noise whose ids have no effect, and crosses join signal features only.
    signal_features: int = 0
    # Crosses join a small-vocabulary feature (fewer than 100 values) with a large one.
    small_large_crosses: bool = False

    @property
    def schema(self) -> FeatureSchema:
        return FeatureSchema(dense=CRITEO_DENSE, categorical=CRITEO_CATEGORICAL, label=LABEL)


@dataclass(frozen=True)
class _World:
    vocab_sizes: np.ndarray  # (n_cat,)
    id_cdfs: tuple[np.ndarray, ...]  # Zipf CDF per categorical feature
    missing_rates: np.ndarray  # (n_cat,)
    id_effects: tuple[np.ndarray, ...]  # per-id logit effect per feature
    cross_pairs: tuple[tuple[int, int], ...]
    cross_left: tuple[np.ndarray, ...]  # (V_f, rank)
    cross_right: tuple[np.ndarray, ...]  # (V_g, rank)
    dense_mu: np.ndarray
    dense_sigma: np.ndarray
    dense_missing: np.ndarray
    dense_weights: np.ndarray
    intercept: float


def _build_world(spec: SyntheticSpec) -> _World:
    rng = np.random.default_rng([spec.seed, 0])
    n_cat, n_dense = len(CRITEO_CATEGORICAL), len(CRITEO_DENSE)
    # Vocabulary sizes spread geometrically like Criteo's (a handful of tiny, many large features).
    sizes = np.unique(np.geomspace(3, spec.max_vocabulary, n_cat).astype(int))
    sizes = np.sort(np.resize(sizes, n_cat))
    rng.shuffle(sizes)
    cdfs, effects = [], []
    for size in sizes:
        weights = 1.0 / np.arange(1, size + 1) ** spec.zipf_exponent
        cdfs.append(np.cumsum(weights) / weights.sum())
        scale = spec.id_effect_scale * rng.uniform(0.3, 1.0)
        effects.append(rng.normal(0.0, scale, size))
    missing = np.where(rng.random(n_cat) < 0.3, rng.uniform(0.02, 0.2, n_cat), 0.0)
    # Extra draws come from a generator of their own, so that the default world stays the same.
    knobs = np.random.default_rng([spec.seed, 4])
    signal = np.arange(n_cat)
    if spec.signal_features:
        signal = np.sort(knobs.choice(n_cat, spec.signal_features, replace=False))
        effects = [e if f in signal else np.zeros_like(e) for f, e in enumerate(effects)]
    pairs = _cross_pairs(spec, rng, knobs, signal, sizes)
    left = tuple(rng.normal(0, spec.cross_scale, (sizes[f], spec.cross_rank)) for f, _ in pairs)
    right = tuple(rng.normal(0, spec.cross_scale, (sizes[g], spec.cross_rank)) for _, g in pairs)
    world = _World(
        vocab_sizes=sizes,
        id_cdfs=tuple(cdfs),
        missing_rates=missing,
        id_effects=tuple(effects),
        cross_pairs=tuple(pairs),
        cross_left=left,
        cross_right=right,
        dense_mu=rng.uniform(0.0, 4.0, n_dense),
        dense_sigma=rng.uniform(0.5, 1.5, n_dense),
        dense_missing=np.where(rng.random(n_dense) < 0.4, rng.uniform(0.01, 0.3, n_dense), 0.0),
        dense_weights=rng.normal(0.0, spec.dense_effect_scale, n_dense),
        intercept=0.0,
    )
    # Solve the intercept so the expected CTR hits the target (bisection on a reference sample).
    logits = _sample(world, np.random.default_rng([spec.seed, 1]), 200_000)[2]
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(logits + mid).mean() < spec.base_ctr:
            lo = mid
        else:
            hi = mid
    return _World(**{**world.__dict__, "intercept": (lo + hi) / 2})


def _cross_pairs(spec: SyntheticSpec, rng, knobs, signal: np.ndarray, sizes) -> list:
    """The crossed feature pairs, among the signal features. The default world draws them from
    the world's generator `rng` (so that its data stays as it is); the knobs draw from theirs."""
    pairs: list[tuple[int, int]] = []
    small = [int(f) for f in signal if sizes[f] < 100]
    large = [int(f) for f in signal if sizes[f] >= 100]
    if spec.small_large_crosses and not (small and large):
        raise ValueError("small_large_crosses needs signal features of both kinds of vocabulary")
    most = len(signal) * (len(signal) - 1) // 2
    if spec.small_large_crosses:
        most = len(small) * len(large)
    if spec.cross_pairs > most:
        raise ValueError(f"cross_pairs={spec.cross_pairs}, but only {most} pairs can be drawn")
    while len(pairs) < spec.cross_pairs:
        if spec.small_large_crosses:
            f, g = int(knobs.choice(small)), int(knobs.choice(large))
        elif len(signal) < len(sizes):
            f, g = (int(x) for x in knobs.choice(signal, 2, replace=False))
        else:
            f, g = (int(x) for x in rng.choice(len(sizes), 2, replace=False))
        if (f, g) not in pairs and (g, f) not in pairs:
            pairs.append((f, g))
    return pairs


@lru_cache(maxsize=8)
def _world(spec: SyntheticSpec) -> _World:
    return _build_world(spec)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _sample(world: _World, rng: np.random.Generator, rows: int):
    """Draw ids and dense values: (ids per feature, dense matrix with NaN, logit without bias)."""
    ids = []
    for f, cdf in enumerate(world.id_cdfs):
        idx = np.minimum(np.searchsorted(cdf, rng.random(rows)), len(cdf) - 1)
        missing = rng.random(rows) < world.missing_rates[f]
        ids.append(np.where(missing, -1, idx))
    n_dense = len(world.dense_mu)
    raw = np.floor(np.exp(rng.normal(world.dense_mu, world.dense_sigma, (rows, n_dense)))) - 1
    raw = np.maximum(raw, 0.0)
    missing = rng.random((rows, n_dense)) < world.dense_missing
    dense = np.where(missing, np.nan, raw)
    return ids, dense, _logit(world, ids, dense)


def _logit(
    world: _World,
    ids: list[np.ndarray],
    dense: np.ndarray,
    id_effects: tuple[np.ndarray, ...] | None = None,
    cross_left: tuple[np.ndarray, ...] | None = None,
    cross_right: tuple[np.ndarray, ...] | None = None,
) -> np.ndarray:
    """The logit without the intercept (a missing id or dense value adds nothing). The effect
    tables default to the world's; estimation_floor passes estimated ones."""
    id_effects = world.id_effects if id_effects is None else id_effects
    cross_left = world.cross_left if cross_left is None else cross_left
    cross_right = world.cross_right if cross_right is None else cross_right
    logit = np.zeros(len(dense))
    for f, effects in enumerate(id_effects):
        logit += np.where(ids[f] >= 0, effects[np.maximum(ids[f], 0)], 0.0)
    for (f, g), left, right in zip(world.cross_pairs, cross_left, cross_right, strict=True):
        a, b = ids[f], ids[g]
        term = np.einsum("ij,ij->i", left[np.maximum(a, 0)], right[np.maximum(b, 0)])
        logit += np.where((a >= 0) & (b >= 0), term, 0.0)
    missing = np.isnan(dense)
    standardized = (np.log1p(np.nan_to_num(dense)) - world.dense_mu) / world.dense_sigma
    # A saturating effect: the model has to learn a nonlinearity, not just a weight.
    effect = np.tanh(standardized) * world.dense_weights
    return logit + np.where(missing, 0.0, effect).sum(axis=1)


def _day_seed(date: str) -> int:
    return dt.date.fromisoformat(date).toordinal()


def generate_day(spec: SyntheticSpec, date: str, rows: int) -> tuple[pl.DataFrame, pl.Series]:
    """One day of impressions (label, I1..I13, C1..C26) and, apart, the true click probability."""
    world = _world(spec)
    rng = np.random.default_rng([spec.seed, 2, _day_seed(date)])
    ids, dense, logit = _sample(world, rng, rows)
    probability = _sigmoid(logit + world.intercept)
    clicks = (rng.random(rows) < probability).astype(np.int8)
    columns: dict[str, pl.Series] = {LABEL: pl.Series(LABEL, clicks)}
    for j, name in enumerate(CRITEO_DENSE):
        # Criteo's integer features are counts with nulls.
        columns[name] = pl.Series(name, dense[:, j]).fill_nan(None).cast(pl.Int64)
    for f, name in enumerate(CRITEO_CATEGORICAL):
        values = pl.Series(name, ids[f]).cast(pl.String)
        columns[name] = values.set(pl.Series(ids[f] < 0), None)  # type: ignore[arg-type]
    return pl.DataFrame(columns), pl.Series(TRUE_PROBABILITY, probability)
