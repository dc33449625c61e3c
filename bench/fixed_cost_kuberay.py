"""Fixed cost per materialization in `kuberay` mode, deployed as production runs it.

The kube tier's real one-node cluster and KubeRay operator, `train_and_publish` launched `--runs`
times, each in a run pod of its own (K8sRunLauncher, `ML_ASSETS_ENV=production`), its training a
Ray job on a RayCluster of its own (a head pod and a worker pod), storage in a real S3 server's
bucket, the registry a tracking server in the node's network. Each run's X-Ray timeline is split
as `bench.fixed_cost` splits the embedded one, with one more part: ready to the Ray job sent
(`to_driver_s`, within `to_training_s`).

    .venv/bin/python -m bench.fixed_cost_kuberay [--runs 3]
"""

import argparse
import contextlib
import os
import statistics
import tempfile
from pathlib import Path

from bench.fixed_cost import GOAL_S, phases


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    args = parser.parse_args()
    import dagster as dg

    from bench.common import write_result
    from ml_assets import environment, runner
    from ml_assets.definitions import build_definitions
    from ml_assets.storage import open_root
    from ml_assets.xray.record import load_records
    from ml_assets_tests.kube.conftest import (
        BUCKET,
        delete_rayclusters,
        mlflow_in_node,
        postgres_in_node,
        prepared_cluster,
        s3_in_node,
    )
    from ml_assets_tests.kube.run_pods import delete_runs, finished_run, training_deployment

    request = runner.PipelineRequest(
        end_date="2026-11-03", train_days=2, holdout_days=1,
        source={"rows_per_day": args.rows_per_day},
        training={"epochs": 1, "batch_size": 512},
    )  # fmt: skip
    runs = []
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        work = Path(directory)
        os.environ["ML_ASSETS_HOME"] = str(work / "ml_home")
        print("starting the one-node cluster, its S3 server, PostgreSQL and MLflow", flush=True)
        cluster = stack.enter_context(prepared_cluster(work / "kube"))
        plane = cluster.control_plane
        assert plane is not None
        admin = plane.api_client()
        cluster.scale_operator(1)
        stack.callback(cluster.scale_operator, 0)
        stack.callback(delete_rayclusters, admin)
        bucket = stack.enter_context(s3_in_node(cluster))
        os.environ.update(bucket.environment)
        postgres = stack.enter_context(postgres_in_node(cluster))
        tracking = stack.enter_context(mlflow_in_node(cluster, work / "mlflow-server"))
        root = f"s3://{BUCKET}/fixed-cost"
        os.environ[environment.STORAGE_ROOT] = root
        deployment = training_deployment(
            admin, plane, postgres, work, root,
            ML_ASSETS_ENV="production", MLFLOW_TRACKING_URI=tracking,
        )  # fmt: skip
        stack.callback(delete_runs, admin)
        with dg.DagsterInstance.from_config(str(deployment.home)) as instance:
            runner.materialize_partitions(instance, request, definitions=build_definitions("local"))
            for index in range(args.runs):
                run_id = deployment.launch(request)
                finished_run(instance, admin, run_id)
                (record,) = load_records(open_root(f"{root}/xray"), run_id)
                parts = phases(record.timeline, record.epochs)
                parts["to_driver_s"] = (
                    record.timeline["driver_submitted"] - record.timeline["connected"]
                )
                runs.append(parts)
                print(f"run {index}: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    mean = {key: statistics.fmean(run[key] for run in runs) for key in runs[0]}
    print("mean: " + ", ".join(f"{k} {v:.1f}" for k, v in mean.items()))
    write_result(
        "fixed_cost_kuberay",
        {"mode": "kuberay", "rows_per_day": args.rows_per_day, "epochs": 1, "runs": runs,
         "mean": mean, "fixed_share": mean["fixed_s"] / mean["step_cluster_s"],
         "embedded_goal_s": GOAL_S},
    )  # fmt: skip


if __name__ == "__main__":
    main()
