"""X-Ray plots as PNG bytes: utilization over time, training loss and throughput per epoch."""

import io

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def utilization_png(samples: list[dict], start: float) -> bytes:
    """CPU % and memory per node and per Ray Train worker, against seconds since `start`."""
    figure, (cpu_axis, memory_axis) = plt.subplots(2, 1, figsize=(7, 4.5), sharex=True)
    series: dict[str, list[dict]] = {}
    for row in samples:
        series.setdefault(f"{row['node']}:{row['process']}", []).append(row)
    for name, rows in sorted(series.items()):
        seconds = [row["t"] - start for row in rows]
        cpu_axis.plot(seconds, [row.get("gpu_percent", row["cpu_percent"]) for row in rows],
                      label=name)  # fmt: skip
        memory_axis.plot(seconds, [row.get("gpu_memory_mib", row["rss_mib"]) for row in rows])
    cpu_axis.set_ylabel("CPU % (GPU % for gpu-*)")
    memory_axis.set_ylabel("memory MiB")
    memory_axis.set_xlabel("seconds since the cluster was requested")
    if series:
        cpu_axis.legend(fontsize=7, loc="upper left")
    cpu_axis.set_title("utilization")
    return _png(figure)


def throughput_png(epochs: list[dict]) -> bytes:
    figure, axis = plt.subplots(figsize=(7, 2.8))
    axis.bar([str(e["epoch"]) for e in epochs], [e["samples_per_second"] for e in epochs])
    axis.set_xlabel("epoch")
    axis.set_ylabel("samples / s (all workers)")
    axis.set_title("training throughput")
    return _png(figure)


def loss_curve_png(history: list[dict]) -> bytes:
    """Training loss against samples seen, across epochs, and the holdout log loss after each
    epoch where the history has it (the learning curve)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    offset = 0
    validation = []
    for record in history:
        curve = np.array(record["curve"]) if record["curve"] else np.zeros((0, 2))
        if len(curve):
            ax.plot(curve[:, 0] + offset, curve[:, 1], label=f"epoch {record['epoch']}")
        offset += record["samples"]
        if "validation_log_loss" in record:
            validation.append((offset, record["validation_log_loss"]))
    if validation:
        xs, ys = zip(*validation, strict=True)
        ax.plot(xs, ys, "ko-", label="holdout, after the epoch")
    ax.set_xlabel("samples seen")
    ax.set_ylabel("log loss")
    ax.set_title("Training and holdout loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)
