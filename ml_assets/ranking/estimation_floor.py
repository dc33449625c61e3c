"""How close to the optimum any model trained on N synthetic rows can get: the estimation floor.

The optimum (the true click probability) knows every id's effect exactly; a model learns them
from N rows, and an id seen c times is known only to within its sampling noise. This module
scores an oracle that is handed the true structure (which features cross, the tanh of the dense
features, each feature's prior variance) and estimates each id's effect and cross vector from
c noisy observations, shrunk by the exact Gaussian posterior. No model trained on N rows does
better in expectation (up to the Gaussian approximation of the likelihood), so the oracle's gap
to the optimum says how much of a model's gap is the data's and how much is the model's.
"""

from dataclasses import dataclass

import numpy as np

from ml_assets.ranking.metrics import log_loss, roc_auc
from ml_assets.ranking.synthetic import SyntheticSpec, _logit, _sample, _sigmoid, _world


@dataclass(frozen=True)
class EstimationFloor:
    train_rows: int
    log_loss_gap: float  # oracle log loss - optimum log loss, on a holdout
    auc_gap: float  # optimum AUC - oracle AUC


def _posterior_mean(true, counts, information_per_row, prior_variance, rng):
    """The Gaussian posterior mean of effects observed `counts` times with noise."""
    noise = 1.0 / np.maximum(counts * information_per_row, 1e-12)
    observed = true + rng.normal(0.0, 1.0, np.shape(true)) * np.sqrt(noise)
    return prior_variance / (prior_variance + noise) * observed


def estimation_floor(
    train_rows: int,
    spec: SyntheticSpec | None = None,
    holdout_rows: int = 300_000,
    seed: int = 0,
) -> EstimationFloor:
    """The oracle's gaps to the optimum on a fresh holdout of `holdout_rows`."""
    spec = spec or SyntheticSpec()
    world = _world(spec)
    rng = np.random.default_rng([spec.seed, 3, seed])
    ids, dense, logit = _sample(world, rng, holdout_rows)
    truth = _sigmoid(logit + world.intercept)
    labels = (rng.random(holdout_rows) < truth).astype(np.float64)
    # Fisher information of a logit per row: p(1 - p), averaged over the data.
    information = float(np.mean(truth * (1 - truth)))
    counts, effects = [], []
    for f, cdf in enumerate(world.id_cdfs):
        share = np.diff(cdf, prepend=0.0) * (1 - world.missing_rates[f])
        counts.append(rng.poisson(train_rows * share))
        true = world.id_effects[f]
        effects.append(_posterior_mean(true, counts[f], information, true.var(), rng))
    cross_variance = spec.cross_scale**2
    lefts, rights = [], []
    for (f, g), left, right in zip(
        world.cross_pairs, world.cross_left, world.cross_right, strict=True
    ):
        # One side's vector is seen through the other's, whose coordinates have this variance.
        seen_f = counts[f][:, None] * (1 - world.missing_rates[g])
        seen_g = counts[g][:, None] * (1 - world.missing_rates[f])
        per_row = information * cross_variance
        lefts.append(_posterior_mean(left, seen_f, per_row, cross_variance, rng))
        rights.append(_posterior_mean(right, seen_g, per_row, cross_variance, rng))
    # The dense part is the world's own: a few shared weights are no limit at these row counts.
    estimate = world.intercept + _logit(world, ids, dense, tuple(effects), tuple(lefts),
                                        tuple(rights))  # fmt: skip
    oracle = _sigmoid(estimate)
    return EstimationFloor(
        train_rows=train_rows,
        log_loss_gap=log_loss(labels, oracle) - log_loss(labels, truth),
        auc_gap=roc_auc(labels, truth) - roc_auc(labels, oracle),
    )
