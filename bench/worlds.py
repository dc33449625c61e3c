"""The default model on every world of the suite (ranking.worlds), at the same row counts, beside
a logistic-regression baseline and the estimation floor.

Per world, the same training rows and holdout for both models: DCN-v2 with the defaults that
ship (ranking.configs) and `logistic` (one-hot ids and dense features, same loop and priors),
each trained by `fit_distributed` (the training asset's code path) on one local Ray; the
holdout's gap closed ((LL_base - LL_model) / (LL_base - LL_opt)) and AUC distance to the
optimum; and the estimation floor (ranking.estimation_floor): the gaps of an oracle that knows
the world's structure and learns each id from the same rows, the best any model could do.
Goals: at least 85% of the gap closed on every world at 350k training rows, 90% at 2M.
Run: .venv/bin/python -m bench.worlds [--rows 350000] [--worlds spread,few_signal]
     [--architectures dcn_v2] [--set feature_gate_penalty=30 ...]
     (7 to 11 minutes for all worlds at 350k rows on 2 cores)
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from bench.common import write_result
from bench.learning_curve import days
from ml_assets.ranking import metrics as m
from ml_assets.ranking.configs import TrainConfig
from ml_assets.ranking.estimation_floor import estimation_floor
from ml_assets.ranking.sample_data import encoded_synthetic_window
from ml_assets.ranking.synthetic import _world
from ml_assets.ranking.worlds import WORLDS, world
from ml_assets.ray.scaling import WorkerPlan
from ml_assets.training.checkpoints import CHECKPOINT_FILE

ARCHITECTURES = ("dcn_v2", "logistic")
MIN_COUNT = 10  # feature_vocabulary's default


def judge(window, architecture: str, directory: Path, plan: WorkerPlan, train_config=None) -> dict:
    """Train one architecture on the window and score the last epoch on its holdout."""
    from ml_assets.ranking.distributed import fit_distributed

    schema = window.encoded_schema
    started = time.perf_counter()
    outcome = fit_distributed(
        window.train_files,
        model_config=dataclasses.replace(window.model_config, architecture=architecture),
        train_config=train_config or TrainConfig(),
        plan=plan,
        dense=schema.dense,
        categorical=schema.categorical,
        label=schema.label,
        checkpoint_root=directory / "checkpoints",
        run_name=f"worlds-{architecture}-{time.monotonic_ns()}",
        id_counts=window.vocabulary.id_counts(),
        base_rate=window.vocabulary.base_rate,
        validation_files=window.holdout_files,
    )
    last = outcome.history[-1]
    return {
        "log_loss": last.validation["log_loss"],
        "auc": last.validation["auc"],
        "fit_seconds": round(time.perf_counter() - started, 1),
        **open_gates(outcome.checkpoint_dir / CHECKPOINT_FILE, schema.dense, schema.categorical),
    }


def open_gates(checkpoint: Path, dense: tuple[str, ...], categorical: tuple[str, ...]) -> dict:
    """How many of the model's feature gates training left open, dense inputs and categorical
    features apart, and which categorical features it closed (none when it has no gates, or
    trained them under no penalty)."""
    import torch

    from ml_assets.ranking.model import open_gates as gates_left_open

    is_open = gates_left_open(torch.load(checkpoint, weights_only=True)["model"])
    if is_open is None:
        return {}
    on_categorical = is_open[len(dense) :]
    return {
        "open_gates": {
            "dense_inputs": f"{sum(is_open[: len(dense)])} of {len(dense)}",
            "categorical": f"{sum(on_categorical)} of {len(categorical)}",
            "closed_categorical": [
                n for n, o in zip(categorical, on_categorical, strict=True) if not o
            ],
        }
    }


def one_world(
    name: str,
    rows: int,
    holdout_rows: int,
    plan: WorkerPlan,
    architectures=ARCHITECTURES,
    train_config: TrainConfig | None = None,
) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        window = world_window(name, rows, holdout_rows, Path(directory))
        models = {a: judge(window, a, Path(directory), plan, train_config) for a in architectures}
        return scored_world(name, window, models)


def world_window(name: str, rows: int, holdout_rows: int, directory: Path):
    """`rows` training rows of the world over 7 days, and a holdout day of `holdout_rows`."""
    train_days = days("2026-10-01", 7)
    (holdout_day,) = days(train_days[-1], 2)[1:]
    return encoded_synthetic_window(
        directory,
        rows_per_day=-(-rows // len(train_days)),
        train_days=train_days,
        holdout_days=(holdout_day,),
        holdout_rows_per_day=holdout_rows,
        min_count=MIN_COUNT,
        spec=world(name).spec,
    )


def scored_world(name: str, window, models: dict[str, dict]) -> dict:
    """Each model's holdout scores as gap closed and AUC distance to the world's optimum, beside
    the estimation floor's."""
    spec = world(name).spec
    labels = pq.read_table(window.holdout_files[0]).column("label").to_numpy()
    train_rows = sum(pq.read_metadata(f).num_rows for f in window.train_files)
    truth = window.holdout_truth
    base = m.base_rate_entropy(labels)
    optimum = {"log_loss": m.log_loss(labels, truth), "auc": m.roc_auc(labels, truth)}
    floor = estimation_floor(train_rows, spec, holdout_rows=int(labels.size))
    floor_log_loss = optimum["log_loss"] + floor.log_loss_gap
    scored = {
        **{
            a: {
                **r,
                "gap_closed": m.gap_closed(r["log_loss"], base, optimum["log_loss"]),
                "auc_gap": optimum["auc"] - r["auc"],
            }
            for a, r in models.items()
        },
        "estimation_floor": {
            "gap_closed": m.gap_closed(floor_log_loss, base, optimum["log_loss"]),
            "auc_gap": floor.auc_gap,
        },
    }
    return {
        "description": world(name).description,
        "spec": dataclasses.asdict(spec),
        # The features in the world's crosses: the ones DCN-v2's towers are there for.
        "crossed_features": sorted(
            {spec.schema.categorical[f] for pair in _world(spec).cross_pairs for f in pair}
        ),
        "train_rows": train_rows,
        "holdout_rows": int(labels.size),
        "holdout_clicks": int(labels.sum()),
        "base_rate_log_loss": base,
        "optimum": optimum,
        "models": scored,
    }


def suite_options(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str]]:
    """The options every benchmark over the suite takes (`--rows`, `--holdout-rows`,
    `--worlds`) parsed beside the caller's own, and the worlds' names, each checked: an unknown
    name fails before anything runs."""
    parser.add_argument("--rows", type=int, default=350_000, help="training rows per world")
    parser.add_argument("--holdout-rows", type=int, default=200_000)
    parser.add_argument("--worlds", default=",".join(WORLDS), help="comma-separated names")
    args = parser.parse_args()
    names = [n for n in args.worlds.split(",") if n]
    for name in names:
        world(name)
    return args, names


def suite_result_name(
    benchmark: str,
    args: argparse.Namespace,
    names: list[str],
    models: tuple[str, ...] | list[str] = (),
    settings: tuple[str, ...] | list[str] = (),
) -> str:
    """A run's result file, named by what its command changed: the rows other than 350k, the
    models (when not all), the worlds (when not all), the settings other than the defaults."""
    parts = [] if args.rows == 350_000 else [str(args.rows)]
    parts += [*models, *([] if set(names) == set(WORLDS) else names), *settings]
    return "-".join([benchmark, *parts])


def suite_plan() -> WorkerPlan:
    """One worker with every core's threads: on 2 cores the fastest layout (bench.training)."""
    cores = os.cpu_count() or 1
    return WorkerPlan(num_workers=1, cpus_per_worker=1, threads_per_worker=cores, use_gpu=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--architectures", default=",".join(ARCHITECTURES), help="dcn_v2 and/or logistic"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="a TrainConfig setting other than its default, to judge it on the suite",
    )
    args, names = suite_options(parser)
    architectures = [a for a in args.architectures.split(",") if a]
    if not architectures or not set(architectures) <= set(ARCHITECTURES):
        parser.error(f"--architectures takes dcn_v2 and/or logistic, got {architectures}")
    try:
        train_config = changed_settings(args.set)
    except ValueError as error:
        parser.error(str(error))
    import ray

    plan = suite_plan()
    cores = plan.threads_per_worker
    goal = 0.90 if args.rows >= 2_000_000 else 0.85
    results = {}
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    try:
        for index, name in enumerate(names, 1):
            print(f"[{index}/{len(names)}] {name}: {world(name).description}", flush=True)
            results[name] = one_world(
                name, args.rows, args.holdout_rows, plan, architectures, train_config
            )
            print_world(results[name])
    finally:
        ray.shutdown()
    print(f"\n{'world':<20} " + " ".join(f"{a:>8}" for a in (*architectures, "floor"))
          + "   (gap closed)")  # fmt: skip
    for name, result in results.items():
        gaps = [result["models"][k]["gap_closed"] for k in (*architectures, "estimation_floor")]
        print(f"{name:<20} " + " ".join(f"{g:>8.1%}" for g in gaps))
    goals_met = {
        f"{name}: DCN-v2 gap closed >= {goal:.0%}": r["models"]["dcn_v2"]["gap_closed"] >= goal
        for name, r in results.items()
        if "dcn_v2" in r["models"]
    }
    print(goals_met)
    # The command names its file: architectures and settings other than the defaults.
    write_result(
        suite_result_name(
            "worlds",
            args,
            names,
            models=[] if set(architectures) == set(ARCHITECTURES) else architectures,
            settings=args.set,
        ),
        {
            "args": vars(args),
            "train_config": train_config.to_dict(),
            "worlds": results,
            "goals_met": goals_met,
        },
    )


def changed_settings(changes: list[str]) -> TrainConfig:
    """The defaults with `changes` ("setting=value", the value as JSON or else a string)."""
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    values = {}
    for change in changes:
        setting, _, value = change.partition("=")
        if setting not in fields or not value:
            raise ValueError(
                f"--set takes SETTING=VALUE with one of {', '.join(fields)}, got {change!r}"
            )
        try:
            values[setting] = json.loads(value)
        except json.JSONDecodeError:
            values[setting] = value
    return dataclasses.replace(TrainConfig(), **values)


def print_world(result: dict) -> None:
    for name, scores in result["models"].items():
        gates = scores.get("open_gates")
        print(f"  {name:<17} gap closed {scores['gap_closed']:>7.1%}  "
              f"AUC gap {scores['auc_gap']:.4f}"
              + (f"  open gates: {gates['categorical']} categorical, "
                 f"{gates['dense_inputs']} dense inputs" if gates else ""))  # fmt: skip
        if gates:
            print(f"    closed {', '.join(gates['closed_categorical']) or 'none'}; the world's "
                  f"crosses are on {', '.join(result['crossed_features']) or 'none'}")  # fmt: skip


if __name__ == "__main__":
    main()
