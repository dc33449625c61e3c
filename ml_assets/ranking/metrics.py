"""Ads-ranking metrics: log loss, normalized entropy, AUC, calibration."""

import math
from dataclasses import asdict, dataclass

import numpy as np

_EPS = 1e-7


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1 - _EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def base_rate_entropy(labels: np.ndarray) -> float:
    """Log loss of always predicting the observed click rate: the denominator of NE."""
    ctr = float(np.mean(labels))
    if ctr <= 0.0 or ctr >= 1.0:
        raise ValueError(
            f"normalized entropy is undefined when every label is {int(ctr)}: "
            "the holdout needs both clicks and non-clicks"
        )
    return float(-(ctr * np.log(ctr) + (1 - ctr) * np.log(1 - ctr)))


def normalized_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """He et al. 2014: log loss divided by the entropy of the base CTR; < 1 beats the base rate."""
    return log_loss(labels, probabilities) / base_rate_entropy(labels)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney U) statistic, ties averaged."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one click and one non-click")
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # Average ranks over runs of tied scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(s)]))
    average_rank = (starts + ends + 1) / 2.0  # 1-based mean rank of each run
    ranks[order] = np.repeat(average_rank, ends - starts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def calibration(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Predicted clicks over observed clicks; 1.0 is perfectly calibrated in aggregate."""
    clicks = float(np.sum(labels))
    if clicks == 0:
        raise ValueError("calibration is undefined with no clicks")
    return float(np.sum(probabilities) / clicks)


@dataclass(frozen=True)
class RankingMetrics:
    rows: int
    ctr: float
    log_loss: float
    normalized_entropy: float
    auc: float
    calibration: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def ranking_metrics(labels: np.ndarray, probabilities: np.ndarray) -> RankingMetrics:
    return RankingMetrics(
        rows=len(labels),
        ctr=float(np.mean(labels)),
        log_loss=log_loss(labels, probabilities),
        normalized_entropy=normalized_entropy(labels, probabilities),
        auc=roc_auc(labels, probabilities),
        calibration=calibration(labels, probabilities),
    )


def gap_closed(model_log_loss: float, base_log_loss: float, optimal_log_loss: float) -> float:
    """Share of the distance from the base-rate log loss to the optimum that the model covers."""
    return (base_log_loss - model_log_loss) / (base_log_loss - optimal_log_loss)


def calibration_by_slice(
    labels: np.ndarray, probabilities: np.ndarray, slice_values: np.ndarray, top: int = 10
) -> dict[str, dict[str, float]]:
    """Calibration for the `top` most frequent values of a slicing column (e.g. an ad category)."""
    values, counts = np.unique(slice_values, return_counts=True)
    result: dict[str, dict[str, float]] = {}
    for value in values[np.argsort(-counts, kind="stable")][:top]:
        mask = slice_values == value
        clicks = float(labels[mask].sum())
        result[str(value)] = {
            "rows": int(mask.sum()),
            "clicks": int(clicks),
            "calibration": float(probabilities[mask].sum() / clicks) if clicks else float("nan"),
        }
    return result


def miscalibrated_slices(
    by_slice: dict[str, dict[str, float]], low: float, high: float, min_clicks: int
) -> tuple[dict[str, float], int]:
    """Slices with at least `min_clicks` clicks whose calibration lies outside [low, high]
    (fewer clicks: too noisy to judge; a ratio over 100 clicks has ~10% standard error), and how
    many slices were judged."""
    judged = {k: v for k, v in by_slice.items() if v["clicks"] >= min_clicks}
    bad = {k: v["calibration"] for k, v in judged.items() if not low <= v["calibration"] <= high}
    return bad, len(judged)


def calibration_curve(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted vs observed click rate in equal-count bins of the prediction."""
    order = np.argsort(probabilities)
    predicted, observed = [], []
    for chunk in np.array_split(order, bins):
        if len(chunk):
            predicted.append(float(probabilities[chunk].mean()))
            observed.append(float(labels[chunk].mean()))
    return np.array(predicted), np.array(observed)


def roc_curve(labels: np.ndarray, scores: np.ndarray, points: int = 200):
    """False/true positive rates at up to `points` thresholds, for plotting."""
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    y = np.asarray(labels)[order].astype(np.float64)
    tps = np.cumsum(y)
    fps = np.cumsum(1 - y)
    pick = np.unique(np.linspace(0, len(y) - 1, min(points, len(y))).astype(int))
    tpr = np.concatenate(([0.0], tps[pick] / max(tps[-1], 1)))
    fpr = np.concatenate(([0.0], fps[pick] / max(fps[-1], 1)))
    return fpr, tpr


def row_log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Each row's log loss: their mean is `log_loss`, their paired comparison the gate's."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1 - _EPS)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def log_loss_difference_z(
    labels: np.ndarray, model: np.ndarray, reference: np.ndarray
) -> tuple[float, float]:
    """Mean per-row log-loss difference (model - reference) and its z-score.

    Against the true probabilities, a model can only come out ahead by noise; a large negative z
    means it saw something it should not have (label leakage).
    """
    y = np.asarray(labels, dtype=np.float64)
    pm = np.clip(model, _EPS, 1 - _EPS)
    pr = np.clip(reference, _EPS, 1 - _EPS)
    diff = -(y * np.log(pm) + (1 - y) * np.log1p(-pm)) + (y * np.log(pr) + (1 - y) * np.log1p(-pr))
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    mean = float(diff.mean())
    return mean, mean / se if se > 0 else 0.0


def calibration_interval(calibration: float, clicks: int, z: float = 1.96) -> tuple[float, float]:
    """The range the overall calibration (predicted / observed clicks) could take from the
    Poisson noise of the observed click count alone (normal approximation)."""
    predicted = calibration * clicks
    spread = z * math.sqrt(max(clicks, 1))
    return predicted / (clicks + spread), predicted / max(clicks - spread, 0.5)
