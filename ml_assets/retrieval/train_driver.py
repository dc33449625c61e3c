"""The Ray driver of a retrieval training: what runs on the Ray cluster's side, wherever that is
(in the step's process on the embedded Ray, as a Ray job on a KubeRay head). JSON in and out;
every file is a storage URI (the bucket's credentials come from the pod, not the request)."""


def train_window(request: dict) -> dict:
    """Trains the two-tower model on the window's request files: the JSON result of
    `training.driver.fit_on_connected_cluster`."""
    import numpy as np
    import pyarrow.parquet as pq

    from ml_assets.retrieval.model import TwoTowerConfig
    from ml_assets.retrieval.task import TwoTowerTask, log_engagement_share
    from ml_assets.retrieval.world import AD_COLUMNS
    from ml_assets.storage import arrow_filesystem, arrow_path, open_root, resolve
    from ml_assets.training.config import LoopConfig
    from ml_assets.training.driver import fit_on_connected_cluster

    root = open_root(request["storage_root"], endpoint_url=request.get("s3_endpoint_url", ""))
    train_files = [resolve(uri, root) for uri in request["train_files"]]
    filesystem = arrow_filesystem(train_files[0])
    engaged = np.concatenate([
        pq.read_table(arrow_path(f), columns=["ad_id"], filesystem=filesystem)["ad_id"].to_numpy()
        for f in train_files
    ])  # fmt: skip
    catalog_file = resolve(request["catalog"], root)
    table = pq.read_table(arrow_path(catalog_file), filesystem=filesystem)
    catalog = np.column_stack([table[name].to_numpy() for name in AD_COLUMNS])
    config = TwoTowerConfig.from_dict(request["model_config"])
    task = TwoTowerTask(
        model_config=config,
        loop=LoopConfig(**request["loop"]),
        catalog=catalog.astype(np.int64),
        log_q=log_engagement_share(engaged, config.ad_cardinalities[0]),
        k=request["k"],
    )
    return fit_on_connected_cluster(
        task,
        train_files,
        num_workers=request["num_workers"],
        data_cpu_share=request["data_cpu_share"],
        checkpoint_root=resolve(request["checkpoint_root"], root),
        run_name=request["run_name"],
        max_failures=request["max_failures"],
        validation_files=[resolve(uri, root) for uri in request["validation_files"]],
    )
