"""The click model's promotion gate: NE as the gate metric, calibration and AUC as vetoes."""

from dataclasses import dataclass

import numpy as np

from ml_assets.promotion import GateDecision, GateMetric, decide
from ml_assets.ranking.metrics import ranking_metrics, row_log_loss


@dataclass(frozen=True)
class GatePolicy:
    min_relative_ne_gain: float = 0.001
    max_auc_drop: float = 0.0005
    calibration_low: float = 0.95
    calibration_high: float = 1.05
    bootstrap_resamples: int = 200


def decide_promotion(
    policy: GatePolicy,
    labels: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray | None,
) -> GateDecision:
    """Promote when the challenger is calibrated and, if a champion exists, clearly better on NE
    (the platform's paired bootstrap on per-row log loss) without losing AUC."""
    mine = ranking_metrics(labels, challenger)
    figures = {
        "challenger_ne": mine.normalized_entropy,
        "challenger_auc": mine.auc,
        "challenger_calibration": mine.calibration,
    }
    vetoes: list[str] = []
    if not policy.calibration_low <= mine.calibration <= policy.calibration_high:
        vetoes.append(
            f"calibration {mine.calibration:.4f} outside "
            f"[{policy.calibration_low}, {policy.calibration_high}]"
        )
    metric = None
    if champion is not None:
        theirs = ranking_metrics(labels, champion)
        figures |= {"champion_ne": theirs.normalized_entropy, "champion_auc": theirs.auc}
        if mine.auc < theirs.auc - policy.max_auc_drop:
            vetoes.append(
                f"AUC {mine.auc:.4f} is lower than the champion's {theirs.auc:.4f} "
                f"by more than {policy.max_auc_drop}"
            )
        # NE's denominator is shared by both models on the same rows, so the relative NE change
        # is the relative change of the mean per-row log loss.
        metric = GateMetric(
            key="ne",
            label="NE",
            challenger=row_log_loss(labels, challenger),
            champion=row_log_loss(labels, champion),
            higher_is_better=False,
        )
    return decide(
        metric,
        min_relative_gain=policy.min_relative_ne_gain,
        resamples=policy.bootstrap_resamples,
        vetoes=vetoes,
        figures=figures,
    )


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
