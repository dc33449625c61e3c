"""The champion/challenger decision for any model family, as a pure function.

A family brings its own gate metric, given per example (a row's log loss, a request's recall)
for both models on the same holdout, and its own vetoes (calibration, a guard metric that must
not drop). The platform decides: a paired bootstrap on the relative change of the metric's
mean, which must be an improvement of at least a set size with its 95% interval excluding zero.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GateMetric:
    key: str  # in figure names: relative_<key>_delta
    label: str  # in reasons, e.g. "NE", "recall@10"
    challenger: np.ndarray  # per example, the same examples for both models
    champion: np.ndarray
    higher_is_better: bool


@dataclass(frozen=True)
class RelativeChange:
    """Relative change of the challenger's mean against the champion's, with its 95% interval."""

    point: float
    low: float
    high: float


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)


def paired_bootstrap(
    challenger: np.ndarray, champion: np.ndarray, *, resamples: int = 200, seed: int = 0
) -> RelativeChange:
    """Each resample draws the same examples for both models, so the interval reflects the
    models' difference, not the holdout's sampling noise."""
    challenger = np.asarray(challenger, dtype=np.float64)
    champion = np.asarray(champion, dtype=np.float64)
    if challenger.shape != champion.shape or challenger.ndim != 1 or not len(challenger):
        raise ValueError(
            f"a paired comparison needs both models' values on the same examples; got "
            f"{challenger.shape} and {champion.shape}"
        )
    rng = np.random.default_rng(seed)
    n = len(challenger)
    changes = np.empty(resamples)
    for i in range(resamples):
        pick = rng.integers(0, n, n)
        changes[i] = challenger[pick].mean() / champion[pick].mean() - 1
    low, high = np.percentile(changes, [2.5, 97.5])
    return RelativeChange(float(challenger.mean() / champion.mean() - 1), float(low), float(high))


def decide(
    metric: GateMetric | None,
    *,
    min_relative_gain: float,
    resamples: int,
    vetoes: list[str],
    figures: dict[str, float],
) -> GateDecision:
    """Promote when nothing vetoes the challenger and, if a champion exists (`metric` is then
    given), the challenger is clearly better on the gate metric."""
    if metric is None:
        if vetoes:
            return GateDecision(False, vetoes, figures)
        return GateDecision(
            True, ["no champion yet: the first passing model becomes champion"], figures
        )
    change = paired_bootstrap(metric.challenger, metric.champion, resamples=resamples)
    figures = figures | {
        f"relative_{metric.key}_delta": change.point,
        f"relative_{metric.key}_delta_ci_low": change.low,
        f"relative_{metric.key}_delta_ci_high": change.high,
    }
    if metric.higher_is_better:
        improved = change.point >= min_relative_gain and change.low > 0
    else:
        improved = change.point <= -min_relative_gain and change.high < 0
    reasons = list(vetoes)
    if not improved:
        reasons.insert(
            0,
            f"{metric.label} change {change.point:+.4%} (95% CI {change.low:+.4%}.."
            f"{change.high:+.4%}) is not an improvement of at least {min_relative_gain:.2%} "
            "with the interval excluding zero",
        )
    if reasons:
        return GateDecision(False, reasons, figures)
    gain = abs(change.point)
    return GateDecision(
        True, [f"{metric.label} improved by {gain:.3%} with the CI excluding zero"], figures
    )
