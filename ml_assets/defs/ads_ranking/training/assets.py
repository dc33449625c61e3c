"""ranking_model: distributed training with Ray Train on the step's own Ray cluster."""

import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster_ray import RayResource
from pydantic import Field

from ml_assets.defs.ads_ranking import EXPERIMENT, GROUP, OWNERS
from ml_assets.defs.ads_ranking.features.assets import ad_features, features_file
from ml_assets.defs.ads_ranking.ingest.assets import raw_impressions, read_raw_days
from ml_assets.defs.ads_ranking.training.feature_gates import feature_gate_metadata
from ml_assets.defs.ads_ranking.training.tuning import TuningConfig, tuned_train_config
from ml_assets.defs.metadata import png_markdown
from ml_assets.defs.ray_resource import RAY_POOL, step_cluster
from ml_assets.defs.resources import (
    ImpressionSource,
    MlflowResource,
    StorageResource,
    write_parquet_atomically,
)
from ml_assets.defs.training_step import (
    EMBEDDED_WORKERS,
    checkpoint_run_name,
    default_workers,
    keep_trained_model,
    train_on_cluster,
    training_outcome,
)
from ml_assets.defs.xray_hooks import xray_metadata
from ml_assets.ranking.configs import ModelConfig, TrainConfig


class TrainingConfig(dg.Config):
    """The defaults are the model's and the loop's own (ranking.configs), so what the
    benchmarks measure is what a materialization trains."""

    architecture: str = Field(
        default=ModelConfig.architecture,
        description="Model: `dcn_v2` (embeddings + cross network + deep tower), or a baseline "
        "to compare it with: `dlrm` (pairwise dot-product interactions) or `logistic` "
        "(logistic regression on one-hot ids and dense features).",
    )
    epochs: int = Field(
        ge=1, default=TrainConfig.epochs, description="Passes over the training window."
    )
    batch_size: int = Field(
        ge=1,
        default=TrainConfig.batch_size,
        description="Rows per optimizer step, over all workers together.",
    )
    learning_rate: float = Field(
        gt=0, default=TrainConfig.learning_rate, description="Adam learning rate (the peak)."
    )
    lr_schedule: str = Field(
        default=TrainConfig.lr_schedule,
        description="`cosine` decays the learning rate to 0 over the run (better final "
        "models); `constant` keeps it.",
    )
    embedding_prior: float = Field(
        ge=0,
        default=TrainConfig.embedding_prior,
        description="Strength of the per-id Gaussian prior on embeddings: shrinks rarely seen "
        "ids towards 'no effect' and leaves frequent ones to the data. 0 disables it.",
    )
    first_order_prior: float = Field(
        ge=0,
        default=TrainConfig.first_order_prior,
        description="Strength of the per-id Gaussian prior on the first-order weights, in "
        "logit units (a prior variance of 1/(2 x strength) on an id's own effect). 0 disables "
        "it.",
    )
    deep_weight_decay: float = Field(
        ge=0,
        default=TrainConfig.deep_weight_decay,
        description="AdamW weight decay on DCN-v2's deep tower: holds it to what the data "
        "keeps confirming instead of noise in feature combinations. 0 disables it.",
    )
    cross_weight_decay: float = Field(
        ge=0,
        default=TrainConfig.cross_weight_decay,
        description="AdamW weight decay on DCN-v2's cross layers: the same for the feature "
        "pairs that carry no signal. 0 disables it.",
    )
    feature_gate_penalty: float = Field(
        ge=0,
        default=TrainConfig.feature_gate_penalty,
        description="DCN-v2: L1 penalty on a gate per feature on the crosses' and deep "
        "tower's input, in nats of the window's total log loss per unit of gate: features "
        "whose use there earns less are closed (their gates go to about 0) and the model says "
        "which in metadata. 0 (default) leaves every feature in; about 30 finds the few "
        "features that carry signal among many that carry none. A setting to search (tuning) "
        "rather than to fix: it helps on some data and costs on other.",
    )
    validation_curve: bool = Field(
        default=True,
        description="After every epoch, score the holdout days for the learning curve (a "
        "few seconds per epoch). Only watched, never used to choose a model.",
    )
    embedding_dim: int = Field(
        ge=1,
        default=ModelConfig.embedding_dim,
        description="Embedding width per categorical feature.",
    )
    cross_layers: int = Field(
        ge=0,
        default=ModelConfig.cross_layers,
        description="Cross-network layers (DCN-v2). One makes every pairwise feature cross; "
        "more add higher-degree crosses, which need much more data to pay off.",
    )
    first_order: bool = Field(
        default=ModelConfig.first_order,
        description="DCN-v2: add one weight per id to the logit (a 'wide' part), so each id's "
        "own effect is learned directly under first_order_prior.",
    )
    dense_curves: bool = Field(
        default=ModelConfig.dense_curves,
        description="DCN-v2: add a learned piecewise-linear curve per dense input to the "
        "logit, so a count's own bent effect is learned directly.",
    )
    deep_layers: list[int] = Field(
        default_factory=lambda: list(ModelConfig.deep_layers),
        description="Hidden sizes of the deep tower.",
    )
    num_workers: int | None = Field(
        ge=1,
        default=None,
        description="Ray Train workers (DDP processes). None: one per worker of the cluster's "
        f"profile on KubeRay, {EMBEDDED_WORKERS} on the embedded Ray.",
    )
    data_cpu_share: float = Field(
        gt=0,
        lt=1,
        default=0.5,
        description="Share of the cluster's CPUs kept for Ray Data (at least one CPU); the "
        "rest is split between the workers.",
    )
    max_steps_per_epoch: int = Field(
        ge=0, default=0, description="Stop each epoch after this many steps; 0 runs whole epochs."
    )
    cache_below_mb: int = Field(
        ge=0,
        default=2048,
        description="Windows smaller than this (uncompressed) are read once by the training "
        "workers themselves, each its own shard, and kept in memory, reshuffled each epoch; "
        "larger ones are streamed by Ray Data every epoch with flat memory.",
    )
    stream_budget_mb: int = Field(
        ge=0,
        default=512,
        description="Object-store memory Ray Data may fill while streaming a window larger "
        "than cache_below_mb (blocks read ahead of the trainers): memory stays flat at this "
        "budget. On a few cores it costs throughput (about half on 2 cores); 0 leaves Ray "
        "Data's own budget, a share of the object store.",
    )
    max_failures: int = Field(
        ge=0,
        default=1,
        description="Worker failures Ray Train recovers from (from the checkpoint).",
    )
    chunk_batches: int = Field(
        ge=1,
        default=16,
        description="Mini-batches per chunk read from Ray Data; rows are shuffled within a "
        "chunk. Larger chunks cost less per row and shuffle better, and use more memory.",
    )
    seed: int = Field(
        default=TrainConfig.seed, description="Seed for initialisation and shuffling."
    )
    tuning: TuningConfig | None = Field(
        default=None,
        description="Search the learning rate, priors and weight decays with Ray Tune (ASHA) "
        "on the step's own Ray cluster first; the chosen settings then train the model that "
        "evaluation and the gate judge. The trials, the chosen settings and a plot of the "
        "search become metadata. Unset: train with the settings above.",
    )


def checkpoint_name(run: dg.DagsterRun, config: TrainingConfig, train_dates: list[str]) -> str:
    return checkpoint_run_name("ranking_model", run, config.model_dump(), train_dates)


@dg.asset(
    # raw_impressions: the MLflow model's input example is raw rows of the window
    deps=[ad_features, raw_impressions],
    group_name=GROUP,
    owners=OWNERS,
    code_version="1",
    kinds={"ray", "pytorch", "mlflow"},
    pool=RAY_POOL,
    # A lost worker beyond max_failures, a lost node or cluster: the step runs again and resumes
    # from the checkpoint in storage (a new cluster in kuberay mode). Errors of the training code
    # itself raise Failure(allow_retries=False) and are not retried.
    retry_policy=dg.RetryPolicy(max_retries=1, delay=10),
    description=(
        "A click model (DCN-v2; DLRM and logistic-regression baselines by config) trained with "
        "Ray Train (TorchTrainer, DDP over gloo on CPU) on the window's encoded features, "
        "kept in the workers' memory (streamed by Ray Data when too large). Checkpoints go to "
        "storage that "
        "outlives the Ray cluster; the MLflow run holds params, per-epoch metrics and the model."
    ),
)
def ranking_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    feature_vocabulary: str,
    ray_cluster: RayResource,
    source: ImpressionSource,
    storage: StorageResource,
    mlflow_tracking: MlflowResource,
) -> dg.MaterializeResult:
    import torch

    from ml_assets.ranking.artifacts import save_model_dir
    from ml_assets.ranking.configs import ARCHITECTURES
    from ml_assets.ranking.encoding import encode
    from ml_assets.ranking.tracking import log_training_run
    from ml_assets.ranking.vocabulary import Vocabulary
    from ml_assets.ray.scaling import WorkerPlan
    from ml_assets.storage import read_parquet, remove_tree
    from ml_assets.training.checkpoints import CHECKPOINT_FILE
    from ml_assets.version import code_version
    from ml_assets.xray.plots import loss_curve_png

    if config.architecture not in ARCHITECTURES:
        raise ValueError(
            f"ranking_model config architecture={config.architecture!r} is unknown; set it to "
            f"one of {', '.join(ARCHITECTURES)}"
        )
    started = time.perf_counter()
    vocabulary = Vocabulary.load(storage.path(feature_vocabulary))
    schema = source.feature_schema
    vocabulary.require_features(schema)

    # Encode once per day with polars; Ray Data then streams plain numeric columns.
    encoded_dir = storage.run_dir("encoded", context.run_id)

    def encoded(dates: list[str]) -> list[Path]:
        files = []
        for date in dates:
            target = encoded_dir / f"{date}.parquet"
            if not target.exists():  # a retried step reuses what its first attempt encoded
                write_parquet_atomically(
                    encode(read_parquet(features_file(storage, date)), vocabulary), target
                )
            files.append(target)
        return files

    encoded_files = encoded(vocabulary.train_dates)
    validation_files = encoded(vocabulary.holdout_dates) if config.validation_curve else []
    context.log.info(f"encoded {len(encoded_files)} day(s) for training")

    model_config = ModelConfig(
        cardinalities=tuple(vocabulary.cardinality(c) for c in schema.categorical),
        dense_features=len(vocabulary.dense_inputs),
        embedding_dim=config.embedding_dim,
        cross_layers=config.cross_layers,
        deep_layers=tuple(config.deep_layers),
        architecture=config.architecture,
        first_order=config.first_order,
        dense_curves=config.dense_curves,
    )
    train_config = TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_schedule=config.lr_schedule,
        embedding_prior=config.embedding_prior,
        first_order_prior=config.first_order_prior,
        deep_weight_decay=config.deep_weight_decay,
        cross_weight_decay=config.cross_weight_decay,
        feature_gate_penalty=config.feature_gate_penalty,
        max_steps_per_epoch=config.max_steps_per_epoch or None,
        seed=config.seed,
    )
    checkpoints = checkpoint_name(context.run, config, vocabulary.train_dates)
    request = {
        "storage_root": str(storage.root),
        "s3_endpoint_url": storage.s3_endpoint_url,
        "vocabulary": str(storage.path(feature_vocabulary)),
        "model_config": model_config.to_dict(),
        "train_config": train_config.to_dict(),
        "dense": list(vocabulary.dense_inputs),
        "categorical": list(schema.categorical),
        "label": schema.label,
    }
    train_files = [str(file) for file in encoded_files]
    search_metadata: dict = {}
    with step_cluster(ray_cluster, context):  # one cluster for the search and the training
        if config.tuning is not None:
            train_config, search_metadata = tuned_train_config(
                context,
                ray_cluster,
                config.tuning,
                request,
                train_files=train_files,
                experiment_root=str(storage.checkpoint_root),
                name=f"{checkpoints}-search",
            )
        trained = train_on_cluster(
            ray_cluster,
            context,
            "ml_assets.ranking.train_driver:train_window",
            request | {
                "train_config": train_config.to_dict(),
                "train_files": train_files,
                "validation_files": [str(file) for file in validation_files],
                "checkpoint_root": str(storage.checkpoint_root),
                "run_name": checkpoints,
                "num_workers": config.num_workers or default_workers(ray_cluster),
                "data_cpu_share": config.data_cpu_share,
                "max_failures": config.max_failures,
                "chunk_batches": config.chunk_batches,
                "cache_below_bytes": config.cache_below_mb * 2**20,
                "stream_budget_bytes": config.stream_budget_mb * 2**20,
            },
        )  # fmt: skip
    plan = WorkerPlan(**trained["plan"])
    outcome = training_outcome(trained, storage, context)
    with (outcome.checkpoint_dir / CHECKPOINT_FILE).open("rb") as checkpoint:
        state = torch.load(checkpoint, weights_only=True)
    # Staged on this pod's disk for MLflow, then kept in storage for evaluation, which may run
    # in another pod.
    staging = tempfile.TemporaryDirectory(prefix="ml_assets-model-")
    model_dir = save_model_dir(Path(staging.name), state["model"], model_config, vocabulary)
    curve_png = loss_curve_png(outcome.history_dicts())
    run_id, model_uri = log_training_run(
        experiment_id=mlflow_tracking.experiment_id(EXPERIMENT),
        run_name=f"ranking_model {context.run_id[:8]}",
        params={
            **train_config.to_dict(),
            **{f"model_{k}": v for k, v in model_config.to_dict().items() if k != "cardinalities"},
            "total_ids": sum(model_config.cardinalities),
            "train_dates": f"{vocabulary.train_dates[0]}..{vocabulary.train_dates[-1]}",
            "train_rows": vocabulary.rows,
            "num_workers": plan.num_workers,
            "cpus_per_worker": plan.cpus_per_worker,
            "use_gpu": plan.use_gpu,
        },
        tags={
            "dagster.run_id": context.run_id,
            "dagster.asset": "ranking_model",
            "ml_assets.code_version": code_version(),
            "ml_assets.ray_cluster": ray_cluster.name,
            "ml_assets.tuned": str(config.tuning is not None).lower(),
        },
        history=outcome.history,
        model_dir=model_dir,
        loss_curve_png=curve_png,
        input_example=read_raw_days(storage, vocabulary.train_dates[:1]).head(3),
    )
    stored_model = keep_trained_model(
        context, model_dir, storage=storage, checkpoints=checkpoints, ray_cluster=ray_cluster,
        mlflow_tracking=mlflow_tracking, mlflow_run_id=run_id,
    )  # fmt: skip
    staging.cleanup()
    remove_tree(encoded_dir)
    remove_tree(storage.checkpoint_root / f"{checkpoints}-search")
    last = outcome.history[-1]
    return dg.MaterializeResult(
        value={
            "model_dir": str(stored_model),
            "mlflow_run_id": run_id,
            "model_uri": model_uri,
            "vocabulary": feature_vocabulary,
        },
        metadata={
            "mlflow_run_id": run_id,
            "mlflow_model_uri": model_uri,
            "mlflow_tracking_uri": mlflow_tracking.resolved_tracking_uri,
            "ray_cluster": ray_cluster.name,
            "architecture": config.architecture,
            "workers": plan.num_workers,
            "cpus_per_worker": plan.cpus_per_worker,
            "epochs": len(outcome.history),
            "resumed_from_epoch": outcome.resumed_from_epoch,
            "restarts": outcome.restarts,
            "discarded_checkpoint": outcome.discarded_checkpoint or "",
            "final_train_loss": last.loss,
            **(
                {"final_holdout_log_loss": last.validation["log_loss"]}
                if "log_loss" in last.validation
                else {}
            ),
            "samples_per_second": round(last.samples_per_second),
            "data_wait_fraction": round(last.wait_fraction, 3),
            "dagster/row_count": vocabulary.rows,
            "loss_curve": png_markdown(curve_png, "training loss"),
            "seconds": round(time.perf_counter() - started, 1),
            **search_metadata,
            **feature_gate_metadata(
                state["model"], [*vocabulary.dense_inputs, *schema.categorical]
            ),
            **xray_metadata(ray_cluster, outcome.history_dicts()),
        },
    )
