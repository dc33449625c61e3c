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


def search_png(result: dict) -> bytes:
    """A hyperparameter search (training.tuning's result): every trial's validation metric after
    each epoch, those ASHA stopped in grey, the shipped defaults (trial 0) in black and the chosen
    trial in red; beside it, each trial's final metric."""
    fig, (curves, finals) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=(3, 2))
    chosen = result["chosen"]["trial"]
    for trial in result["trials"]:
        epochs = np.arange(1, len(trial["curve"]) + 1)
        if trial["trial"] == chosen:
            style = {"color": "tab:red", "linewidth": 2.5, "label": f"chosen (trial {chosen})"}
        elif trial["trial"] == 0:
            style = {"color": "black", "linewidth": 1.5, "label": "defaults (trial 0)"}
        elif trial["status"] == "stopped":
            style = {"color": "0.6", "linestyle": "--", "linewidth": 1}
        else:
            style = {"color": "tab:blue", "alpha": 0.6, "linewidth": 1}
        curves.plot(epochs, trial["curve"], marker="o", markersize=3, **style)
    curves.set_xticks(range(1, max(len(t["curve"]) for t in result["trials"]) + 1))
    curves.set_xlabel("epoch")
    curves.set_ylabel(f"validation {result['metric']}")
    curves.set_title(
        f"{len(result['trials'])} trials, {result['stopped_early']} stopped early (grey)"
    )
    curves.legend(fontsize=8)
    scored = [t for t in result["trials"] if t["curve"]]
    colors = ["tab:red" if t["trial"] == chosen else "0.6" if t["status"] == "stopped"
              else "black" if t["trial"] == 0 else "tab:blue" for t in scored]  # fmt: skip
    finals.bar([str(t["trial"]) for t in scored], [t["final"] for t in scored], color=colors)
    values = [t["final"] for t in scored]
    if values:
        spread = max(values) - min(values)
        finals.set_ylim(min(values) - 0.1 * spread - 1e-4, max(values) + 0.1 * spread + 1e-4)
    finals.set_xlabel("trial")
    finals.set_ylabel(f"last {result['metric']}")
    finals.set_title("where each trial ended\n(grey: stopped after fewer epochs)", fontsize=10)
    return _png(fig)


def feature_gates_png(names: list[str], gates: list[float], closed_below: float) -> bytes:
    """Each feature's gate on the towers' input (model.FeatureGates): the features the model
    found carry something, and those it closed."""
    fig, ax = plt.subplots(figsize=(6, 0.18 * len(names) + 1.2))
    magnitudes = np.abs(np.asarray(gates, dtype=float))
    closed = magnitudes < closed_below
    ax.barh(names, magnitudes, color=np.where(closed, "0.7", "tab:blue"))
    ax.invert_yaxis()  # the model's feature order, top to bottom
    ax.tick_params(axis="y", labelsize=6)
    ax.set_xlabel("|gate| on the crosses' and deep tower's input")
    ax.set_title(
        f"feature gates: {int((~closed).sum())} of {len(names)} open (grey: < {closed_below:g})"
    )
    return _png(fig)
