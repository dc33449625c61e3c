"""The Ray driver of a training: what runs on the Ray cluster's side, wherever that is.

On the embedded Ray it runs in the step's process. On KubeRay it runs as a Ray job on the head
pod (`ml_assets.ray.job_entrypoint`): a driver needs its node's raylet and shared memory, which
a run pod does not have. So its request and result are plain JSON, and every file is a storage
URI (the bucket's credentials come from the pod's environment, never from the request).
"""

import dataclasses
import logging

log = logging.getLogger(__name__)


def train_window(request: dict) -> dict:
    """Plans the workers on the connected cluster and trains. Returns the plan, the epoch
    history and the checkpoint's URI; or `failure` (`code` or `infrastructure`) and `error`
    when Ray Train gave up, so the step decides about retrying without unpickling Ray's errors."""
    import ray
    import ray.train

    from ml_assets.ranking.configs import ModelConfig, TrainConfig
    from ml_assets.ranking.distributed import fit_distributed
    from ml_assets.ranking.vocabulary import Vocabulary
    from ml_assets.ray.scaling import plan_workers
    from ml_assets.storage import open_root, resolve
    from ml_assets.training.driver import is_infrastructure_failure

    root = open_root(request["storage_root"], endpoint_url=request.get("s3_endpoint_url", ""))

    def at(uri: str):
        return resolve(uri, root)

    vocabulary = Vocabulary.load(at(request["vocabulary"]))
    node_cpus = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node["Alive"]]
    plan = plan_workers(
        node_cpus,
        ray.cluster_resources().get("GPU", 0),
        request["num_workers"],
        request["data_cpu_share"],
    )
    log.info(f"training with {plan}")
    try:
        outcome = fit_distributed(
            [at(uri) for uri in request["train_files"]],
            model_config=ModelConfig.from_dict(request["model_config"]),
            train_config=TrainConfig(**request["train_config"]),
            plan=plan,
            dense=tuple(request["dense"]),
            categorical=tuple(request["categorical"]),
            label=request["label"],
            checkpoint_root=at(request["checkpoint_root"]),
            run_name=request["run_name"],
            max_failures=request["max_failures"],
            chunk_batches=request["chunk_batches"],
            cache_below_bytes=request["cache_below_bytes"],
            stream_budget_bytes=request["stream_budget_bytes"],
            id_counts=vocabulary.id_counts(),
            base_rate=vocabulary.base_rate,
            validation_files=[at(uri) for uri in request["validation_files"]],
        )
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
