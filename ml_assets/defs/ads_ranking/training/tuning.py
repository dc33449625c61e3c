"""ranking_model's tuning mode: a Ray Tune search on the step's own cluster before training,
whose chosen settings then train the candidate that evaluation and the gate judge."""

import dataclasses
from typing import Any

import dagster as dg
from dagster_ray import RayResource
from pydantic import Field

from ml_assets.defs.metadata import png_markdown, table
from ml_assets.defs.ray_resource import run_driver

TUNE_DRIVER = "ml_assets.ranking.train_driver:tune_window"


class TuningConfig(dg.Config):
    trials: int = Field(
        ge=1,
        default=12,
        description="Settings to try (the first is always the shipped defaults; the rest are "
        "drawn at random from the ranges).",
    )
    time_budget_minutes: float = Field(
        ge=0,
        default=0,
        description="Stop starting and running trials after this long; 0: no time limit. The "
        "trials that finished by then are compared.",
    )
    ranges: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Setting -> [low, high], searched on a log scale (epochs: the whole numbers "
        "in it). Empty: epochs, learning_rate, embedding_prior, first_order_prior, "
        "deep_weight_decay, cross_weight_decay and feature_gate_penalty over their default "
        "ranges (ranking.configs.TUNABLE).",
    )
    reduction_factor: int = Field(
        ge=2,
        default=3,
        description="ASHA keeps the best 1/reduction_factor of the trials at each epoch it "
        "compares them, and stops the rest.",
    )
    cpus_per_trial: float = Field(
        gt=0, default=1.0, description="CPUs per trial; trials run side by side on the cluster."
    )


def tuned_train_config(
    context: dg.AssetExecutionContext,
    ray_cluster: RayResource,
    tuning: TuningConfig,
    request: dict,
    *,
    train_files: list[str],
    experiment_root: str,
    name: str,
) -> tuple[Any, dict]:
    """Searches on the step's cluster, training on all but the window's last day and validating
    on that day, so the holdout days stay unseen for model_evaluation. Returns the request's
    TrainConfig with the chosen settings, and the search as metadata. A retried step resumes the
    search under `experiment_root`/`name`."""
    from ml_assets.ranking.configs import TUNABLE, TrainConfig
    from ml_assets.ranking.plots import search_png
    from ml_assets.training.tuning import check_ranges

    if len(train_files) < 2:
        raise dg.Failure(
            description="tuning needs at least two training days: trials train on all but the "
            "last one and are compared on it, so that the holdout days stay unseen for "
            "model_evaluation; widen the window (train_days) or drop tuning",
            allow_retries=False,
        )
    try:
        check_ranges(tuning.ranges, TUNABLE)  # here too, before the cluster is started
    except ValueError as error:
        raise dg.Failure(
            description=f"ranking_model's tuning.ranges: {error}", allow_retries=False
        ) from error
    searched = run_driver(
        ray_cluster,
        context,
        TUNE_DRIVER,
        request | {
            "train_files": train_files[:-1],
            "validation_files": train_files[-1:],
            "experiment_root": experiment_root,
            "name": name,
            "ranges": tuning.ranges,
            "budget": {
                "trials": tuning.trials,
                "time_budget_s": tuning.time_budget_minutes * 60 or None,
                "reduction_factor": tuning.reduction_factor,
                "cpus_per_trial": tuning.cpus_per_trial,
                "seed": request["train_config"]["seed"],
            },
        },
    )  # fmt: skip
    if "failure" in searched:
        raise dg.Failure(
            description=f"the hyperparameter search failed, and a retry would fail the same "
            f"way: {searched['error']}",
            allow_retries=False,
        )
    chosen = searched["chosen"]
    context.log.info(
        f"search of {len(searched['trials'])} trials in {searched['seconds']:.0f} s chose trial "
        f"{chosen['trial']}: {chosen['params']} ({searched['metric']} {chosen['final']:.4f})"
    )
    versus = chosen.get("versus_defaults")
    if versus and chosen["trial"] == 0:
        context.log.info(
            f"kept the defaults: trial {versus['best_trial']} led them by {versus['lead']:.5f} "
            f"on the validation day, {versus['z']:.1f} standard errors (less than "
            f"{versus['min_z']:g}: within noise)"
        )
    train_config = dataclasses.replace(TrainConfig(**request["train_config"]), **chosen["params"])
    return train_config, search_metadata(searched) | {
        "tuning_plot": png_markdown(search_png(searched), "hyperparameter search")
    }


def search_metadata(searched: dict) -> dict:
    """What a person checks about a search: every trial, what was chosen, what it cost."""
    names = sorted(searched["chosen"]["params"])
    defaults = next(t for t in searched["trials"] if t["trial"] == 0)
    rows = [
        {"trial": t["trial"], "status": t["status"], "epochs_run": len(t["curve"]),
         f"validation_{searched['metric']}": t["final"], **t["params"]}
        for t in searched["trials"]
    ]  # fmt: skip
    return {
        "tuning_trials": table(
            rows, ["trial", "status", "epochs_run", f"validation_{searched['metric']}", *names]
        ),
        "tuned_settings": dg.MetadataValue.json(searched["chosen"]["params"]),
        "tuning_chosen_trial": searched["chosen"]["trial"],
        # The best trial's lead over the defaults on the validation day, in standard errors of
        # the paired per-row difference: below the search's bar, the defaults are kept.
        "tuning_lead_over_defaults_z": (searched["chosen"].get("versus_defaults") or {}).get("z"),
        f"tuning_chosen_{searched['metric']}": searched["chosen"]["final"],
        f"tuning_defaults_{searched['metric']}": defaults["final"],
        "tuning_trials_stopped_early": searched["stopped_early"],
        "tuning_seconds": searched["seconds"],
        "tuning_trial_core_seconds": searched["trial_core_seconds"],
        "tuning_resumed": searched["resumed"],
    }
