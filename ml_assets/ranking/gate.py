"""The champion/challenger promotion gate, as a pure decision."""

from dataclasses import dataclass, field

import numpy as np

from ml_assets.ranking.metrics import paired_bootstrap_ne_delta, ranking_metrics


@dataclass(frozen=True)
class GatePolicy:
    min_relative_ne_gain: float = 0.001
    max_auc_drop: float = 0.0005
    calibration_low: float = 0.95
    calibration_high: float = 1.05
    bootstrap_resamples: int = 200


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)


def decide_promotion(
    policy: GatePolicy,
    labels: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
) -> GateDecision:
    """Promote when the challenger is calibrated and, if a champion exists, clearly better."""
    mine = ranking_metrics(labels, challenger)
    figures = {
        "challenger_ne": mine.normalized_entropy,
        "challenger_auc": mine.auc,
        "challenger_calibration": mine.calibration,
    }
    reasons: list[str] = []
    if not policy.calibration_low <= mine.calibration <= policy.calibration_high:
        reasons.append(
            f"calibration {mine.calibration:.4f} outside "
            f"[{policy.calibration_low}, {policy.calibration_high}]"
        )
    if champion is None:
        if not reasons:
            reasons.append("no champion yet: the first passing model becomes champion")
            return GateDecision(True, reasons, figures)
        return GateDecision(False, reasons, figures)

    theirs = ranking_metrics(labels, champion)
    delta, low, high = paired_bootstrap_ne_delta(
        labels, challenger, champion, resamples=policy.bootstrap_resamples
    )
    figures |= {
        "champion_ne": theirs.normalized_entropy,
        "champion_auc": theirs.auc,
        "relative_ne_delta": delta,
        "relative_ne_delta_ci_low": low,
        "relative_ne_delta_ci_high": high,
    }
    if not (delta <= -policy.min_relative_ne_gain and high < 0):
        reasons.append(
            f"NE change {delta:+.4%} (95% CI {low:+.4%}..{high:+.4%}) is not an improvement of "
            f"at least {policy.min_relative_ne_gain:.2%} with the interval excluding zero"
        )
    if mine.auc < theirs.auc - policy.max_auc_drop:
        reasons.append(
            f"AUC {mine.auc:.4f} is lower than the champion's {theirs.auc:.4f} "
            f"by more than {policy.max_auc_drop}"
        )
    if reasons:
        return GateDecision(False, reasons, figures)
    return GateDecision(True, [f"NE improved by {-delta:.3%} with the CI excluding zero"], figures)


SERVING_TOLERANCE = 1e-6  # probabilities: what float32 inference in another batch order moves


def serving_skew(offline: np.ndarray, served: np.ndarray) -> tuple[float, str | None]:
    """The largest gap between the offline evaluation's probabilities and the logged model's on
    the same rows, and why that stops the model (training/serving skew), if it does."""
    if offline.shape != served.shape:
        return float("inf"), (
            f"the logged model scored {served.shape[0]} rows where evaluation scored "
            f"{offline.shape[0]}: training/serving skew"
        )
    gap = float(np.max(np.abs(offline - served))) if offline.size else 0.0
    if not gap <= SERVING_TOLERANCE:
        return gap, (
            f"the logged model's scores differ from the offline evaluation's by up to {gap:.3g} "
            f"(> {SERVING_TOLERANCE:g}) on the same rows: training/serving skew"
        )
    return gap, None
