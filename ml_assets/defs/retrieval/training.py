"""retrieval_model: the two-tower model, trained on a window of ad requests on the step's Ray
cluster by the platform's training driver."""

import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster_ray import RayResource
from pydantic import Field

from ml_assets.defs.metadata import png_markdown
from ml_assets.defs.ray_resource import RAY_POOL
from ml_assets.defs.resources import MlflowResource, StorageResource
from ml_assets.defs.retrieval import EXPERIMENT, GROUP, OWNERS
from ml_assets.defs.retrieval.ingest import (
    RequestSource,
    ad_requests,
    catalog_file,
    requests_file,
)
from ml_assets.defs.training_step import (
    checkpoint_run_name,
    default_workers,
    keep_trained_model,
    train_on_cluster,
    training_outcome,
    window_end,
)
from ml_assets.defs.window import require_partition_files, window_dates
from ml_assets.defs.xray_hooks import xray_metadata


class RetrievalTrainingConfig(dg.Config):
    end_date: str = Field(
        default="",
        description="Last holdout day, YYYY-MM-DD. Empty: in a backfill, the backfill's last "
        "day; otherwise the latest day with ad_requests.",
    )
    train_days: int = Field(ge=1, default=7, description="Days of requests to train on.")
    holdout_days: int = Field(ge=1, default=1, description="Later days held out for evaluation.")
    epochs: int = Field(ge=1, default=3, description="Passes over the training window.")
    batch_size: int = Field(
        ge=2, default=1024, description="Requests per step over all workers: each row's "
        "negatives are the other rows' ads, so larger batches give more negatives.",
    )  # fmt: skip
    learning_rate: float = Field(gt=0, default=5e-3, description="AdamW learning rate (peak).")
    temperature: float = Field(gt=0, default=0.1, description="Softmax temperature.")
    k: int = Field(ge=1, default=10, description="Ads retrieved per request.")
    num_workers: int | None = Field(
        ge=1, default=None, description="Ray Train workers. None: the cluster's default."
    )
    data_cpu_share: float = Field(
        gt=0, lt=1, default=0.5, description="Share of the cluster's CPUs kept for Ray Data (at "
        "least one CPU); the rest is split between the workers.",
    )  # fmt: skip
    max_failures: int = Field(ge=0, default=1, description="Worker-group restarts tolerated.")
    seed: int = Field(default=0, description="Seed for initialisation and shuffling.")


@dg.asset(
    deps=[ad_requests],
    group_name=GROUP,
    owners=OWNERS,
    code_version="1",
    kinds={"ray", "pytorch", "mlflow"},
    pool=RAY_POOL,
    retry_policy=dg.RetryPolicy(max_retries=1, delay=10),
    description="A two-tower retrieval model (request tower, ad tower, in-batch sampled "
    "softmax with the logQ correction) trained with Ray Train on the window's requests; the "
    "MLflow model holds the catalog's ad embeddings and returns each request's top K ads.",
)
def retrieval_model(
    context: dg.AssetExecutionContext,
    config: RetrievalTrainingConfig,
    ray_cluster: RayResource,
    retrieval_source: RequestSource,
    storage: StorageResource,
    mlflow_tracking: MlflowResource,
) -> dg.MaterializeResult:
    import mlflow
    import torch

    from ml_assets.retrieval.model import TwoTowerConfig
    from ml_assets.retrieval.serving import log_retrieval_model, save_model_dir
    from ml_assets.storage import read_parquet
    from ml_assets.training.checkpoints import CHECKPOINT_FILE
    from ml_assets.training.config import LoopConfig
    from ml_assets.training.tracking import log_epochs, log_png
    from ml_assets.xray.plots import loss_curve_png

    started = time.perf_counter()
    end = config.end_date or window_end(context, ad_requests.key)
    train_dates, holdout_dates = window_dates(end, config.train_days, config.holdout_days)
    files = {day: requests_file(storage, day) for day in train_dates + holdout_dates}
    require_partition_files(
        files, "ad_requests", "a backfill of {first}..{last} of retrieval_daily_features"
    )
    world = retrieval_source.world()
    spec = world.spec
    model_config = TwoTowerConfig(
        user_cardinalities=(spec.users, spec.segments, spec.regions),
        ad_cardinalities=(spec.ads, spec.categories, spec.advertisers),
        temperature=config.temperature,
    )
    loop = LoopConfig(epochs=config.epochs, batch_size=config.batch_size,
                      learning_rate=config.learning_rate, seed=config.seed)  # fmt: skip
    checkpoints = checkpoint_run_name(
        "retrieval_model", context.run, config.model_dump(), train_dates
    )
    trained = train_on_cluster(
        ray_cluster,
        context,
        "ml_assets.retrieval.train_driver:train_window",
        {
            "storage_root": str(storage.root),
            "s3_endpoint_url": storage.s3_endpoint_url,
            "train_files": [str(files[day]) for day in train_dates],
            "validation_files": [str(files[day]) for day in holdout_dates],
            "catalog": str(catalog_file(storage, retrieval_source)),
            "checkpoint_root": str(storage.checkpoint_root),
            "run_name": checkpoints,
            "num_workers": config.num_workers or default_workers(ray_cluster),
            "data_cpu_share": config.data_cpu_share,
            "model_config": model_config.to_dict(),
            "loop": loop.to_dict(),
            "k": config.k,
            "max_failures": config.max_failures,
        },
    )
    outcome = training_outcome(trained, storage, context)
    with (outcome.checkpoint_dir / CHECKPOINT_FILE).open("rb") as checkpoint:
        state = torch.load(checkpoint, weights_only=True)
    staging = tempfile.TemporaryDirectory(prefix="ml_assets-retrieval-")
    model_dir = save_model_dir(Path(staging.name), state["model"], model_config, world.catalog,
                               config.k)  # fmt: skip
    curve_png = loss_curve_png(outcome.history_dicts())
    mlflow_tracking.client()  # points mlflow at the deployment's tracking server
    experiment = mlflow_tracking.experiment_id(EXPERIMENT)
    tags = {"dagster.run_id": context.run_id, "dagster.asset": "retrieval_model"}
    with mlflow.start_run(experiment_id=experiment, run_name=f"retrieval_model "
                          f"{context.run_id[:8]}", tags=tags) as run:  # fmt: skip
        mlflow.log_params({**config.model_dump(), "train_dates": f"{train_dates[0]}.."
                           f"{train_dates[-1]}"})  # fmt: skip
        log_epochs(outcome.history)
        log_png(curve_png, "plots/loss_curve.png")
        example = read_parquet(files[train_dates[0]]).head(3)
        model_uri = log_retrieval_model("model", model_dir, example).model_uri
        run_id = run.info.run_id
    stored_model = keep_trained_model(
        context, model_dir, storage=storage, checkpoints=checkpoints, ray_cluster=ray_cluster,
        mlflow_tracking=mlflow_tracking, mlflow_run_id=run_id,
    )  # fmt: skip
    staging.cleanup()
    last = outcome.history[-1]
    return dg.MaterializeResult(
        value={
            "model_dir": str(stored_model),
            "model_uri": model_uri,
            "mlflow_run_id": run_id,
            "train_dates": train_dates,
            "holdout_dates": holdout_dates,
            "k": config.k,
        },
        metadata={
            "mlflow_run_id": run_id,
            "mlflow_model_uri": model_uri,
            "train_dates": f"{train_dates[0]}..{train_dates[-1]}",
            "holdout_dates": f"{holdout_dates[0]}..{holdout_dates[-1]}",
            "epochs": len(outcome.history),
            "final_train_loss": last.loss,
            **{f"final_holdout_{name}": value for name, value in last.validation.items()},
            "samples_per_second": round(last.samples_per_second),
            "loss_curve": png_markdown(curve_png, "training loss"),
            "seconds": round(time.perf_counter() - started, 1),
            **xray_metadata(ray_cluster, outcome.history_dicts()),
        },
    )
