"""Distributed training of any model family with Ray Train: the per-worker loop and the driver
call around it. The model's side is a `TrainingTask`; this module knows no model.

Imports Ray, never Dagster; `fit` runs where a Ray driver can: in the step's process on the
embedded Ray, inside a Ray job on a cluster (ranking.train_driver is the click model's).
"""

import dataclasses
import json
import logging
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from ml_assets.ray.scaling import WorkerPlan
from ml_assets.storage import arrow_filesystem, arrow_path
from ml_assets.training.accelerator import (
    autocast,
    fill_device_batch_size,
    scaled_learning_rate,
    to_device,
)
from ml_assets.training.checkpoints import (
    CHECKPOINT_FILE,
    HISTORY_FILE,
    checkpoint_problem,
    finished_checkpoint,
    set_aside,
)
from ml_assets.training.config import LoopConfig
from ml_assets.training.epoch import train_one_epoch
from ml_assets.training.records import EpochRecord, TrainingOutcome
from ml_assets.training.shard_cache import read_shard
from ml_assets.training.task import Arrays, Batch, TrainingTask

log = logging.getLogger(__name__)


def _worker_loop(config: dict) -> None:
    import ray.train
    import ray.train.torch

    task: TrainingTask = config["task"]
    loop = task.loop
    torch.set_num_threads(config["threads_per_worker"])
    torch.manual_seed(loop.seed)
    context = ray.train.get_context()
    rank = context.get_world_rank()
    world = context.get_world_size()
    device = ray.train.torch.get_device()
    # batch_size is the global batch: N workers see the same optimization as one process.
    worker_batch = max(1, loop.batch_size // world)
    loop_started_at = time.time()  # tells the epochs of each (re)start apart in the history
    model = task.build_model()
    if device.type == "cuda" and loop.auto_batch_size:
        # The loop's config sets the learning rate at every step: the scaled one takes over.
        worker_batch, loop = _fill_the_gpu(model.to(device), task, worker_batch)
    task.initialize(model)
    optimizer = task.make_optimizer(model)
    history: list[EpochRecord] = []
    start_epoch = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        # Resume after a worker failure or a retried step: lose at most one epoch of work.
        with checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = [EpochRecord.from_dict(record) for record in state["history"]]
        start_epoch = state["epoch"] + 1
    model = ray.train.torch.prepare_model(model)
    # A small window: this worker reads its own shard once and keeps it (shard_cache).
    kept = (
        read_rows(task, config["train_files"], config["filesystem"], rank, world)
        if config["train_files"]
        else None
    )

    def chunks() -> Iterator[Arrays]:
        # Ray Data hands over large chunks (its per-batch cost is then paid once per chunk);
        # the task slices them into shuffled mini-batches.
        shard = ray.train.get_dataset_shard("train")
        assert shard is not None, "the trainer was given no 'train' dataset"
        for chunk in shard.iter_batches(
            batch_size=worker_batch * config["chunk_batches"],
            batch_format="numpy",
            prefetch_batches=2,
        ):
            yield task.to_arrays(cast(dict[str, np.ndarray], chunk))

    def batches(epoch: int) -> Iterator[Batch]:
        rng = np.random.default_rng([loop.seed, epoch, rank])
        if kept is not None:  # a new permutation of every row of the shard each epoch
            source = task.batches(kept, worker_batch, rng)
        else:
            source = (
                batch for arrays in chunks() for batch in task.batches(arrays, worker_batch, rng)
            )
        for batch in source:
            yield to_device(batch, device)

    def log(message: str) -> None:
        if rank == 0:
            print(f"[{task.name}] {message}", flush=True)  # noqa: T201 (Ray forwards it)

    # The validation rows, for rank 0 only: one holdout day is small.
    validation = (
        read_rows(task, config["validation_files"], config["filesystem"])
        if rank == 0 and config["validation_files"]
        else None
    )
    total_steps = steps_per_worker(config["train_rows"], loop, world, worker_batch)
    for epoch in range(start_epoch, loop.epochs):
        started_at = time.time()
        stats = train_one_epoch(
            model,
            optimizer,
            batches(epoch),
            loop,
            loss=task.loss,
            epoch=epoch,
            on_log=log,
            total_steps=total_steps,
        )
        unwrapped = cast(nn.Module, getattr(model, "module", model))
        record = EpochRecord(
            epoch=epoch,
            started_at=started_at,
            loop_started_at=loop_started_at,
            finished_at=time.time(),
            loss=stats.loss,
            samples=stats.samples * world,
            seconds=stats.seconds,
            samples_per_second=stats.samples_per_second * world,
            wait_fraction=stats.wait_seconds / stats.seconds if stats.seconds else 0.0,
            curve=[(s * world, loss) for s, loss in stats.curve],
            validation=_validate(task, unwrapped, validation) if validation is not None else {},
        )
        history.append(record)
        log(
            f"epoch {epoch} done: loss {stats.loss:.4f}, {record.samples_per_second:,.0f}/s"
            + "".join(f", validation {name} {v:.4f}" for name, v in record.validation.items())
        )
        metrics = {k: v for k, v in record.to_dict().items() if k != "curve"}
        with tempfile.TemporaryDirectory() as directory:
            checkpoint = None
            if rank == 0:
                records = [r.to_dict() for r in history]
                torch.save(
                    {
                        "model": unwrapped.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "epoch": epoch,
                        "history": records,
                        "task": task.describe(),
                    },
                    Path(directory) / CHECKPOINT_FILE,
                )
                (Path(directory) / HISTORY_FILE).write_text(json.dumps(records))
                checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=checkpoint)


def read_rows(
    task: TrainingTask, files: list[str], filesystem, rank: int = 0, world: int = 1
) -> Arrays:
    """The task's columns of `rank`'s shard of `files` (all of them for rank 0 of 1)."""
    table = read_shard(files, filesystem, rank, world, list(task.columns))
    return task.to_arrays({name: table.column(name).to_numpy() for name in task.columns})


def _validate(task: TrainingTask, model: nn.Module, validation: Arrays) -> dict[str, float]:
    metrics = task.validate(model, validation)
    model.train()
    return metrics


def steps_per_worker(rows: int, loop: LoopConfig, num_workers: int, worker_batch: int) -> int:
    """Optimizer steps one worker takes over the whole run, for the learning-rate schedule.
    Ray Data splits rows about evenly; the cosine's tail tolerates the difference."""
    per_epoch = math.ceil(rows / num_workers / worker_batch)
    if loop.max_steps_per_epoch is not None:
        per_epoch = min(per_epoch, loop.max_steps_per_epoch)
    return per_epoch * loop.epochs


def _fill_the_gpu(
    model: nn.Module, task: TrainingTask, worker_batch: int
) -> tuple[int, LoopConfig]:
    """The per-worker batch that fills this GPU, agreed by all workers (the smallest, so every
    rank takes the same number of steps), and the learning rate scaled to it."""
    import torch.distributed as dist

    device = next(model.parameters()).device
    optimizer = task.make_optimizer(model)

    def try_step(size: int) -> None:
        with autocast(device):
            data_loss, penalty = task.loss(model, task.example_batch(size, device))
        (data_loss if penalty is None else data_loss + penalty).backward()
        optimizer.zero_grad(set_to_none=True)

    fitted = torch.tensor(fill_device_batch_size(worker_batch, device, try_step), device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(fitted, op=dist.ReduceOp.MIN)
    size = int(fitted.item())
    rate = scaled_learning_rate(task.loop.learning_rate, worker_batch, size)
    print(  # noqa: T201 (Ray forwards it)
        f"[{task.name}] GPU {torch.cuda.get_device_name(device)}: batch {size} per worker "
        f"(asked {worker_batch}), learning rate {rate:.2e}, bf16 autocast",
        flush=True,
    )
    return size, dataclasses.replace(task.loop, learning_rate=rate)


def fit(
    task: TrainingTask,
    train_files: list[Path],
    *,
    plan: WorkerPlan,
    checkpoint_root: Path,
    run_name: str,
    max_failures: int = 1,
    chunk_batches: int = 16,
    cache_below_bytes: int = 2 * 2**30,
    validation_files: list[Path] | None = None,
    stream_budget_bytes: int = 512 * 2**20,
) -> TrainingOutcome:
    """Train `task`'s model over Parquet files of its rows.

    Files and checkpoints are local paths or a bucket's UPaths (`ml_assets.storage`); every
    worker reads them through the same filesystem. A run with the same `run_name` and
    `checkpoint_root` resumes from its latest checkpoint (Ray Train restores it), which is what
    makes a retried Dagster step cheap; a checkpoint that cannot be resumed (damaged, diverged,
    or of a model the task no longer builds) is set aside and training starts over.

    A window whose rows take less than `cache_below_bytes` in memory is read once by the workers
    themselves, each its own equal shard, and kept as arrays (about 1.5x the shard's Parquet
    size; `shard_cache` says why not through Ray Data); every epoch is a new permutation of the
    shard's rows. Larger windows are streamed by Ray Data every epoch, the files in a new order
    each time, within `stream_budget_bytes` of object store (0: Ray Data's own budget), so
    memory stays flat.

    `validation_files`, with the same columns, add the task's holdout metrics to every epoch's
    record: the learning curve.
    """
    import ray
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    # Per-operator progress bars flood the Dagster compute log; the loop logs its own progress.
    data_context = ray.data.DataContext.get_current()
    data_context.enable_progress_bars = False
    data_context.print_on_execution_start = False
    filesystem = arrow_filesystem(checkpoint_root)
    existing = checkpoint_root / run_name
    problem = checkpoint_problem(existing, task)
    if problem is not None:
        moved = set_aside(existing, problem)
        problem = f"{problem}; set aside as {moved.name}, training restarts from scratch"
        log.error(f"unusable checkpoint for {run_name}: {problem}")
    finished = finished_checkpoint(existing, task.loop.epochs)
    if finished is not None:
        # A step retried after its training had finished (say, MLflow was down): nothing to redo.
        records = json.loads((finished / HISTORY_FILE).read_text())
        return TrainingOutcome(finished, [EpochRecord.from_dict(r) for r in records])
    train_paths = [arrow_path(file) for file in train_files]
    streamed = in_memory_bytes(train_paths, filesystem) >= cache_below_bytes
    dataset_config = None
    if streamed and stream_budget_bytes:
        # Flat memory whatever the window's size: Ray Data's default budget is a share of the
        # object store (30% of RAM), which a growing window fills with blocks read ahead. A
        # fixed budget keeps the read-ahead ahead of the trainer and no further. The price,
        # measured on 2 cores at 8M rows (bench.memory): about half the samples/s, since the
        # throttled reads now run beside the trainer instead of before it. 0 opts out.
        options = ray.train.DataConfig.default_ingest_options()
        options.resource_limits = options.resource_limits.copy(
            object_store_memory=stream_budget_bytes
        )
        dataset_config = ray.train.DataConfig(execution_options=options)
    datasets: dict | None = None
    if streamed:
        # Days arrive in date order; a new file order each epoch, plus the shuffle inside each
        # chunk in the worker loop, keeps the last day from dominating the final weights. The
        # files are shuffled, not the blocks (randomize_block_order is an all-to-all step: it
        # would hold every block of the epoch at once).
        shuffle = ray.data.FileShuffleConfig(seed=task.loop.seed, reseed_after_execution=True)
        read = ray.data.read_parquet(
            train_paths, shuffle=shuffle, filesystem=filesystem, columns=list(task.columns)
        )
        datasets = {"train": read}
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "task": task,
            "threads_per_worker": plan.threads_per_worker,
            "chunk_batches": chunk_batches,
            "train_files": [] if streamed else train_paths,  # read by the workers themselves
            "train_rows": parquet_rows(train_paths, filesystem),
            "validation_files": [arrow_path(file) for file in validation_files or []],
            "filesystem": filesystem,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=plan.num_workers,
            use_gpu=plan.use_gpu,
            resources_per_worker={"CPU": plan.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=arrow_path(checkpoint_root),
            storage_filesystem=filesystem,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            failure_config=ray.train.FailureConfig(max_failures=max_failures),
            worker_runtime_env={"env_vars": training_worker_env(plan)},
        ),
        datasets=datasets,
        dataset_config=dataset_config,
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError(
            f"Ray Train finished run {run_name!r} without a checkpoint; the training data may be "
            "empty (check the window's feature partitions)"
        )
    # The checkpoint lives in storage_path, which outlives the Ray cluster.
    directory = existing / Path(result.checkpoint.path).name
    records = json.loads((directory / HISTORY_FILE).read_text())
    return TrainingOutcome(
        checkpoint_dir=directory,
        history=[EpochRecord.from_dict(r) for r in records],
        discarded_checkpoint=problem,
    )


def training_worker_env(plan: WorkerPlan) -> dict[str, str]:
    """Environment variables of the Ray Train workers.

    `RAY_worker_niceness` 0: Ray starts every worker process at nice 15, so that a busy worker
    never starves Ray's own processes (GCS, raylet, the log monitor, at nice 0). For a trainer
    that means the kernel hands its core to any of them, or to anything else on the node at
    nice 0, the moment it wakes, and a trainer's intra-op threads then wait for the one that
    lost its core. At 0 the trainers share the cores evenly with Ray's processes, which need
    about 0.1 cores and still get them, and go before Ray's helper actors and Ray Data's tasks,
    which stay at 15. Measured on 2 cores, 1 worker x 2 threads, 5 back-to-back rounds against
    plain DDP (which runs at 0): 0.970 against 0.944 at Ray's default, and a streamed window
    1-11% faster in 3 of 3 rounds. Ray's job submission starts its drivers at 0 the same way.
    """
    return {
        "OMP_NUM_THREADS": str(plan.threads_per_worker),
        "RAY_worker_niceness": "0",
    }


def is_infrastructure_failure(error: BaseException) -> bool:
    """A lost worker, node or controller: worth resuming from the checkpoint. An exception raised
    by the training code itself (bad data, a NaN loss) would fail the same way again.

    Measured on Ray 2.60 with a SIGKILLed worker: `WorkerGroupError` whose failures are a
    `WorkerHealthCheckFailedError` for the dead rank and a gloo `RuntimeError` ("Connection reset
    by peer") for the survivor. User exceptions arrive as themselves, never as Ray errors.
    """
    import ray.exceptions
    import ray.train
    from ray.train.v2._internal.exceptions import RayTrainError  # the health-check failures' base

    if isinstance(error, ray.train.ControllerError | ray.train.PreemptionError):
        return True
    failures = getattr(error, "worker_failures", None) or {}
    return any(
        isinstance(failure, RayTrainError)
        or (
            isinstance(failure, ray.exceptions.RayError)
            and not isinstance(failure, ray.exceptions.RayTaskError)
        )
        for failure in failures.values()
    )


def parquet_rows(files: list[str], filesystem=None) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(file, filesystem=filesystem).num_rows for file in files)


def in_memory_bytes(files: list[str], filesystem=None) -> int:
    """Rows x uncompressed row width, from the Parquet footers alone."""
    import pyarrow.parquet as pq

    total = 0
    for file in files:
        metadata = pq.read_metadata(file, filesystem=filesystem)
        for group in range(metadata.num_row_groups):
            total += metadata.row_group(group).total_byte_size
    return total


def fit_on_connected_cluster(
    task: TrainingTask, train_files: list[Path], *, num_workers: int, data_cpu_share: float,
    **fit_options,
) -> dict:  # fmt: skip
    """A step's training on the Ray it is connected to, as JSON: the worker plan for this
    cluster, then `fit`'s records and checkpoint; or `failure` (`code` or `infrastructure`)
    and `error` when Ray Train gave up, so the step decides about retrying without unpickling
    Ray's errors. A cluster too small for the plan is failure `plan`: another attempt would get
    the same cluster."""
    import ray
    import ray.train

    from ml_assets.ray.scaling import plan_workers

    node_cpus = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]]
    gpus = ray.cluster_resources().get("GPU", 0)
    try:
        plan = plan_workers(node_cpus, gpus, num_workers, data_cpu_share)
    except ValueError as error:
        return {"plan": None, "failure": "plan", "error": str(error)}
    log.info(f"training with {plan}")
    try:
        outcome = fit(task, train_files, plan=plan, **fit_options)
    except ray.train.TrainingFailedError as error:
        kind = "infrastructure" if is_infrastructure_failure(error) else "code"
        error_text = f"{type(error).__name__}: {error}"[-4000:]
        return {"plan": dataclasses.asdict(plan), "failure": kind, "error": error_text}
    return {
        "plan": dataclasses.asdict(plan),
        "history": outcome.history_dicts(),
        "checkpoint": str(outcome.checkpoint_dir),
        "discarded_checkpoint": outcome.discarded_checkpoint,
    }
