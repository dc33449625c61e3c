"""The optimizer step: torch's default AdamW on CPU (a loop of small ops per tensor) vs fused.

The CI-sized DCN-v2 of bench.training, one batch of 1024 rows, the training loop's own
optimizer (`make_optimizer`, its decay groups) with `fused` on and off, the machine's threads.
Each round times both, in alternating order, over the same steps; reported are the medians of
the per-round step times and of the whole batch (forward, backward, step), and what fusing
saves of the batch.
Run: .venv/bin/python -m bench.optimizer [--rounds 5] [--steps 300]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import write_result
from ml_assets.ranking.configs import TrainConfig
from ml_assets.ranking.loop import make_optimizer
from ml_assets.ranking.model import build_model
from ml_assets.ranking.sample_data import encoded_synthetic_days

# The training asset's decay on the deep tower and cross layers: the optimizer users get.
TRAIN_CONFIG = TrainConfig(learning_rate=1e-3, deep_weight_decay=1.0, cross_weight_decay=0.1)


def time_steps(model_config, fused: bool, steps: int, batch: int) -> dict:
    """Milliseconds per optimizer step and per whole batch, after a warm-up of 50 steps."""
    torch.manual_seed(0)
    model = build_model(model_config)
    optimizer = make_optimizer(model, TRAIN_CONFIG, fused=fused)
    dense = torch.randn(batch, model_config.dense_features)
    ids = torch.stack([torch.randint(0, c, (batch,)) for c in model_config.cardinalities], 1)
    labels = torch.randint(0, 2, (batch,)).float()
    step_s = batch_s = 0.0
    for index in range(50 + steps):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(dense, ids), labels)
        loss.backward()
        stepped = time.perf_counter()
        optimizer.step()
        if index >= 50:
            step_s += time.perf_counter() - stepped
            batch_s += time.perf_counter() - started
    return {"step_ms": step_s / steps * 1e3, "batch_ms": batch_s / steps * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        _, _, model_config = encoded_synthetic_days(Path(directory), 20_000)
    runs: dict[str, list[dict]] = {"unfused": [], "fused": []}
    for round_ in range(args.rounds):
        order = ("unfused", "fused") if round_ % 2 == 0 else ("fused", "unfused")
        for side in order:
            runs[side].append(time_steps(model_config, side == "fused", args.steps, args.batch))

    def median(side: str, key: str) -> float:
        return float(np.median([run[key] for run in runs[side]]))

    summary = {side: {k: median(side, k) for k in ("step_ms", "batch_ms")} for side in runs}
    step_ratio = summary["fused"]["step_ms"] / summary["unfused"]["step_ms"]
    batch_ratio = summary["fused"]["batch_ms"] / summary["unfused"]["batch_ms"]
    for side, row in summary.items():
        print(f"{side:8s} step {row['step_ms']:.3f} ms  whole batch {row['batch_ms']:.3f} ms")
    print(f"fused / unfused: step {step_ratio:.3f}, whole batch {batch_ratio:.3f} "
          f"({torch.get_num_threads()} threads, batch {args.batch})")  # fmt: skip
    write_result(
        "optimizer",
        {
            "rounds": args.rounds,
            "steps": args.steps,
            "batch": args.batch,
            "threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in build_model(model_config).parameters()),
            "runs": runs,
            "summary": summary,
            "fused_over_unfused_step": step_ratio,
            "fused_over_unfused_batch": batch_ratio,
        },
    )


if __name__ == "__main__":
    main()
