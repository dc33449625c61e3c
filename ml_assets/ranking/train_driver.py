"""The Ray driver of a training: what runs on the Ray cluster's side, wherever that is.

On the embedded Ray it runs in the step's process. On KubeRay it runs as a Ray job on the head
pod (`ml_assets.ray.job_entrypoint`): a driver needs its node's raylet and shared memory, which
a run pod does not have. So its request and result are plain JSON, and every file is a storage
URI (the bucket's credentials come from the pod's environment, never from the request).
"""


def train_window(request: dict) -> dict:
    """Trains the click model on the connected cluster: the JSON result of
    `training.driver.fit_on_connected_cluster` (plan, records, checkpoint URI, or the failure)."""
    from ml_assets.training.driver import fit_on_connected_cluster

    at = _resolver(request)
    task = _click_task(request, at)
    return fit_on_connected_cluster(
        task,
        [at(uri) for uri in request["train_files"]],
        num_workers=request["num_workers"],
        data_cpu_share=request["data_cpu_share"],
        checkpoint_root=at(request["checkpoint_root"]),
        run_name=request["run_name"],
        max_failures=request["max_failures"],
        chunk_batches=request["chunk_batches"],
        cache_below_bytes=request["cache_below_bytes"],
        stream_budget_bytes=request["stream_budget_bytes"],
        validation_files=[at(uri) for uri in request["validation_files"]],
    )


def tune_window(request: dict) -> dict:
    """Searches the click model's settings on the connected cluster: the JSON result of
    `training.tuning.search`, or `failure` and `error` when it cannot run or no trial finished."""
    import pyarrow.parquet as pq

    from ml_assets.ranking.configs import TUNABLE
    from ml_assets.storage import arrow_filesystem, arrow_path
    from ml_assets.training.tuning import SearchBudget, check_ranges, search

    at = _resolver(request)
    experiments = at(request["experiment_root"])
    filesystem = arrow_filesystem(experiments)
    train_files = [arrow_path(at(uri)) for uri in request["train_files"]]
    rows = sum(pq.ParquetFile(f, filesystem=filesystem).metadata.num_rows for f in train_files)
    # The trials train on some of the window's days: their priors and gate penalty count the ids
    # of those rows, as the final training counts the whole window's, so that a setting means
    # the same in both.
    task = _click_task(request, at, counted_rows=rows)
    try:
        return search(
            task,
            train_files,
            [arrow_path(at(uri)) for uri in request["validation_files"]],
            filesystem=filesystem,
            ranges=check_ranges(request["ranges"], TUNABLE),
            budget=SearchBudget(**request["budget"]),
            storage_path=arrow_path(experiments),
            name=request["name"],
        )
    except (ValueError, RuntimeError) as error:
        return {"failure": "search", "error": str(error)}


def _resolver(request: dict):
    """How the request's URIs resolve against its storage."""
    from ml_assets.storage import open_root, resolve

    root = open_root(request["storage_root"], endpoint_url=request.get("s3_endpoint_url", ""))
    return lambda uri: resolve(uri, root)


def _click_task(request: dict, at, counted_rows: int | None = None):
    """The click model's task of the request. `counted_rows`: the task trains on this many of
    the window's rows, and its id counts are the window's scaled to them (the vocabulary keeps
    no counts per day)."""
    from ml_assets.ranking.configs import ModelConfig, TrainConfig
    from ml_assets.ranking.distributed import click_task
    from ml_assets.ranking.vocabulary import Vocabulary

    vocabulary = Vocabulary.load(at(request["vocabulary"]))
    id_counts = vocabulary.id_counts()
    if id_counts is not None and counted_rows is not None:
        id_counts = id_counts * (counted_rows / max(vocabulary.rows, 1))
    return click_task(
        ModelConfig.from_dict(request["model_config"]),
        TrainConfig(**request["train_config"]),
        tuple(request["dense"]),
        tuple(request["categorical"]),
        request["label"],
        id_counts=id_counts,
        base_rate=vocabulary.base_rate,
    )
