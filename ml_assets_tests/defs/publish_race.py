"""One `published_model` run with its upstream values handed in: `python -m
ml_assets_tests.defs.publish_race SPEC.json`. Two started together race for the champion as two
runs launched at once would; both wait at a barrier just before `published_model`, so their
claims on the `model_registry` pool really do coincide."""

import json
import sys
import time
from pathlib import Path

import dagster as dg


def meet(barrier: Path, me: str, parties: int, timeout: float = 180.0) -> None:
    """Returns once `parties` runs have reached the barrier folder."""
    (barrier / me).touch()
    deadline = time.monotonic() + timeout
    while len(list(barrier.iterdir())) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(barrier.iterdir()))} of {parties} runs came")
        time.sleep(0.05)  # polling for the other run, not a guess at its timing


def main(spec_file: str) -> None:
    from ml_assets.defs.ads_ranking.publish.assets import published_model
    from ml_assets.defs.resources import MlflowResource, StorageResource, StoredValuesIOManager

    spec = json.loads(Path(spec_file).read_text())

    @dg.asset(name="ranking_model")
    def handed_model() -> dict:
        return spec["ranking_model"]

    @dg.asset(name="model_evaluation", deps=["ranking_model"])
    def handed_evaluation() -> dict:
        meet(Path(spec["barrier"]), spec["name"], parties=2)
        return spec["model_evaluation"]

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [handed_model, handed_evaluation, published_model],
            instance=instance,
            resources={
                "storage": (storage := StorageResource(base_path=spec["storage"])),
                "io_manager": StoredValuesIOManager(storage=storage),
                "mlflow_tracking": MlflowResource(tracking_uri=spec["tracking_uri"]),
            },
            run_config={
                "ops": {
                    "published_model": {
                        "config": spec["promotion"]
                        | {"registered_model_name": spec["registered_model"]}
                    }
                }
            },
            tags={"race": spec["name"]},
            raise_on_error=False,
        )
    print(json.dumps({"run_id": result.run_id, "success": result.success}))


if __name__ == "__main__":
    main(sys.argv[1])
