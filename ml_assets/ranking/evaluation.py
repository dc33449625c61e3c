"""Holdout evaluation of a trained model: metrics, the optimum on synthetic data, plots."""

from dataclasses import dataclass, field

import numpy as np

from ml_assets.ranking import metrics as m
from ml_assets.ranking.plots import calibration_png, roc_png


@dataclass
class EvaluationReport:
    model: m.RankingMetrics
    optimum: m.RankingMetrics | None
    base_log_loss: float
    gap_closed: float | None
    leakage_z: float | None
    calibration_by_slice: dict[str, dict[str, float]]
    plots: dict[str, bytes] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        figures = {f"model_{k}": float(v) for k, v in self.model.to_dict().items()}
        figures["base_log_loss"] = self.base_log_loss
        if self.optimum is not None:
            figures |= {f"optimum_{k}": float(v) for k, v in self.optimum.to_dict().items()}
        if self.gap_closed is not None:
            figures["gap_closed"] = self.gap_closed
        if self.leakage_z is not None:
            figures["leakage_z"] = self.leakage_z
        return figures


def evaluate(
    labels: np.ndarray,
    probabilities: np.ndarray,
    slice_values: np.ndarray,
    true_probabilities: np.ndarray | None,
) -> EvaluationReport:
    model = m.ranking_metrics(labels, probabilities)
    base = m.base_rate_entropy(labels)
    optimum = gap = leakage = None
    optimum_roc = None
    if true_probabilities is not None:
        optimum = m.ranking_metrics(labels, true_probabilities)
        gap = m.gap_closed(model.log_loss, base, optimum.log_loss)
        leakage = m.log_loss_difference_z(labels, probabilities, true_probabilities)[1]
        optimum_roc = (*m.roc_curve(labels, true_probabilities), optimum.auc)
    fpr, tpr = m.roc_curve(labels, probabilities)
    predicted, observed = m.calibration_curve(labels, probabilities)
    return EvaluationReport(
        model=model,
        optimum=optimum,
        base_log_loss=base,
        gap_closed=gap,
        leakage_z=leakage,
        calibration_by_slice=m.calibration_by_slice(labels, probabilities, slice_values),
        plots={
            "roc": roc_png(fpr, tpr, model.auc, optimum_roc),
            "calibration": calibration_png(predicted, observed),
        },
    )
