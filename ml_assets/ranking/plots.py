"""Plots a person would rather look at than read: PNG bytes, rendered headless."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def roc_png(fpr: np.ndarray, tpr: np.ndarray, auc: float, optimum: tuple | None) -> bytes:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"model AUC {auc:.4f}")
    if optimum is not None:
        ax.plot(optimum[0], optimum[1], "--", label=f"true CTR AUC {optimum[2]:.4f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC (holdout)")
    ax.legend(loc="lower right")
    return _png(fig)


def calibration_png(predicted: np.ndarray, observed: np.ndarray) -> bytes:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    top = float(max(predicted.max(), observed.max()))
    ax.plot([0, top], [0, top], ":", color="grey", label="perfect")
    ax.plot(predicted, observed, "o-", label="model")
    ax.set_xlabel("mean predicted CTR (bin)")
    ax.set_ylabel("observed CTR (bin)")
    ax.set_title("Calibration (holdout)")
    ax.legend()
    return _png(fig)
