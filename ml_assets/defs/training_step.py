"""What every training asset does around its model: how many workers, where checkpoints go,
the window's end, running the training's Ray driver on the step's cluster with its failure
turned into a retry (lost workers) or a final failure (the training code's own error), and
keeping the trained model once MLflow has it."""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_ray import RayResource

from ml_assets.defs.ray_resource import run_driver
from ml_assets.defs.xray_hooks import XRayHooks

EMBEDDED_WORKERS = 2


def default_workers(ray_cluster: RayResource) -> int:
    """One training worker per Ray worker pod of a KubeRay profile (the head trains nothing);
    on the embedded Ray, which is one node, EMBEDDED_WORKERS."""
    resolve = getattr(ray_cluster, "resolved_profile", None)
    workers = resolve().workers if resolve is not None else 0
    return workers or EMBEDDED_WORKERS


def checkpoint_run_name(asset: str, run: dg.DagsterRun, config: Any, dates: list[str]) -> str:
    """Where a training's checkpoints go under the checkpoint root. A step retry and a
    re-execution of the run (same root run) with the same config and window resume from them;
    anything else starts afresh rather than resume a different training."""
    inputs = json.dumps([config, dates], sort_keys=True, default=str)
    digest = hashlib.sha256(inputs.encode()).hexdigest()[:12]
    return f"{asset}-{run.root_run_id or run.run_id}-{digest}"


def window_end(context: dg.AssetExecutionContext, daily: dg.AssetKey) -> str:
    """Where a window without a configured end ends: in a backfill over a range of days, with the
    range (the model trains on what was just backfilled); otherwise on the latest day of `daily`."""
    backfill_id = context.run.tags.get("dagster/backfill")
    backfill = context.instance.get_backfill(backfill_id) if backfill_id else None
    data = backfill.asset_backfill_data if backfill is not None else None
    subset = data.target_subset.partitions_subsets_by_asset_key.get(daily) if data else None
    days = list(subset.get_partition_keys()) if subset is not None else []
    if days:
        return max(days)
    materialized = context.instance.get_materialized_partitions(daily)
    if not materialized:
        raise ValueError(
            f"no {daily.to_user_string()} partition is materialized yet, so the window has no "
            f"end: materialize some days first, or set end_date in {context.op_def.name}'s config"
        )
    return max(materialized)


def train_on_cluster(ray_cluster: RayResource, context: Any, function: str, request: dict) -> dict:
    """Runs the training's Ray driver (`module:name`, JSON in and out) on the step's cluster and
    returns its result. A lost worker, node or cluster raises an error the step's RetryPolicy
    retries (training resumes from its checkpoint); an error of the training code itself, or a
    cluster too small for the worker plan, is a Failure that is not retried: the same data on
    the same cluster would fail the same way."""
    trained = run_driver(ray_cluster, context, function, request)
    if trained.get("failure") == "plan":
        raise dg.Failure(
            description=f"the step's Ray cluster {ray_cluster.name} cannot hold this training, "
            f"and a retry would get the same cluster: {trained['error']}",
            allow_retries=False,
        )
    context.log.info(f"trained on {ray_cluster.name}: {trained['plan']}")
    if trained.get("failure") == "infrastructure":
        raise RuntimeError(f"training lost its cluster's workers: {trained['error']}")
    if trained.get("failure") == "code":
        raise dg.Failure(
            description="training failed in the training code itself, not the cluster; not "
            f"retried, the same data would fail the same way: {trained['error']}",
            allow_retries=False,
        )
    return trained


def training_outcome(trained: dict, storage: Any, context: Any):
    """The driver's result as a TrainingOutcome, what it discarded or resumed logged."""
    from ml_assets.training.records import EpochRecord, TrainingOutcome

    outcome = TrainingOutcome(
        checkpoint_dir=storage.path(trained["checkpoint"]),
        history=[EpochRecord.from_dict(record) for record in trained["history"]],
        discarded_checkpoint=trained["discarded_checkpoint"],
    )
    if outcome.discarded_checkpoint:
        context.log.error(f"unusable checkpoint: {outcome.discarded_checkpoint}")
    if outcome.restarts:
        context.log.warning(
            f"training resumed {outcome.restarts} time(s) from a checkpoint; the last resume "
            f"began at epoch {outcome.resumed_from_epoch}"
        )
    return outcome


def keep_trained_model(
    context: Any,
    model_dir: Path,
    *,
    storage: Any,
    checkpoints: str,
    ray_cluster: RayResource,
    mlflow_tracking: Any,
    mlflow_run_id: str,
) -> Path:
    """Once the model is logged to MLflow: copies its folder (staged on this pod's disk) into
    storage, where evaluation finds it from any pod; removes the training's checkpoints,
    which nothing resumes from any more; files X-Ray's record next to the MLflow run. Returns
    where the model is kept."""
    from ml_assets.storage import remove_tree, upload_tree

    stored = storage.run_dir(context.asset_key.path[-1], context.run_id)
    upload_tree(model_dir, stored)
    remove_tree(storage.checkpoint_root / checkpoints)
    if isinstance(ray_cluster, XRayHooks):
        ray_cluster.attach_mlflow_run(mlflow_tracking.resolved_tracking_uri, mlflow_run_id)
    return stored
