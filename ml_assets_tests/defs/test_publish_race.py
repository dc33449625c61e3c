"""Two `published_model` runs at once, each in a process of its own, on the production instance
(PostgreSQL, pool `model_registry` limited to 1) and a real MLflow tracking server: one waits
for the other, and exactly one champion is left, the model that beat the other."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from ml_assets_tests.conftest import VENV_BIN
from ml_assets_tests.defs.test_production_instance import PRODUCTION_YAML

pytestmark = pytest.mark.slow  # two runs, each scoring in fresh interpreters
TRAIN_DAY, HOLDOUT_DAY = "2026-11-01", "2026-11-02"
# Wide calibration limits: the weak model (three steps) must pass the gate alone, so that which
# run goes first decides whether it becomes champion before the strong one beats it.
PROMOTION = {"calibration_low": 0.2, "calibration_high": 5.0}


def logged_challengers(directory: Path, tracking_uri: str) -> dict[str, dict]:
    """A weak model (3 steps) and a strong one (an epoch), each logged to MLflow with its
    evaluation on one holdout, as `ranking_model` and `model_evaluation` hand them on."""
    import mlflow
    import torch

    from ml_assets.ranking.artifacts import LoadedModel, save_model_dir
    from ml_assets.ranking.configs import TrainConfig
    from ml_assets.ranking.encoding import to_arrays
    from ml_assets.ranking.loop import in_memory_batches, make_optimizer, train_one_epoch
    from ml_assets.ranking.model import build_model
    from ml_assets.ranking.sample_data import encoded_synthetic_window
    from ml_assets.ranking.serving import log_click_model
    from ml_assets.ranking.sources import read_synthetic_day
    from ml_assets.ranking.synthetic import SyntheticSpec

    window = encoded_synthetic_window(directory, 20_000, (TRAIN_DAY,))
    frame = pl.read_parquet(window.train_files[0])
    columns = {name: frame.get_column(name).to_numpy() for name in frame.columns}
    dense, ids = to_arrays(columns, window.encoded_schema.dense, window.encoded_schema.categorical)
    labels = columns[window.encoded_schema.label]
    holdout, _ = read_synthetic_day(SyntheticSpec(), HOLDOUT_DAY, 5_000)
    holdout_raw = directory / "holdout_raw.parquet"
    holdout.write_parquet(holdout_raw)
    mlflow.set_tracking_uri(tracking_uri)
    challengers = {}
    for name, steps in (("weak", 3), ("strong", None)):
        torch.manual_seed(0)
        model = build_model(window.model_config)
        config = TrainConfig(epochs=1, max_steps_per_epoch=steps, batch_size=256)
        batches = in_memory_batches(dense, ids, labels, config.batch_size, seed=0)
        train_one_epoch(model, make_optimizer(model, config), batches, config, epoch=0)
        model_dir = save_model_dir(
            directory / name, model.state_dict(), window.model_config, window.vocabulary
        )
        with mlflow.start_run(run_name=name):
            logged = log_click_model("model", model_dir, holdout)
        predictions = directory / f"{name}-predictions.parquet"
        pl.DataFrame(
            {
                "label": holdout.get_column(window.encoded_schema.label).cast(pl.Float64),
                "probability": LoadedModel.load(model_dir).predict_raw(holdout),
            }
        ).write_parquet(predictions)
        challengers[name] = {
            "ranking_model": {"model_uri": logged.model_uri},
            "model_evaluation": {
                "train_dates": [TRAIN_DAY],
                "holdout_dates": [HOLDOUT_DAY],
                "predictions": str(predictions),
                "holdout_raw": str(holdout_raw),
            },
        }
    return challengers


def published(instance, run_id: str) -> dict:
    """published_model's metadata in a run, when its step started and ended, and whether it
    waited for the pool."""
    events = [e for e in instance.all_logs(run_id) if e.dagster_event]
    kind = dg.DagsterEventType
    (materialization,) = [
        e.dagster_event.event_specific_data.materialization
        for e in events
        if e.dagster_event.event_type == kind.ASSET_MATERIALIZATION
        and e.dagster_event.asset_key == dg.AssetKey("published_model")
    ]
    step = [e for e in events if e.step_key == "published_model"]
    times = {e.dagster_event.event_type: e.timestamp for e in step}
    return {
        **{key: value.value for key, value in materialization.metadata.items()},
        "started": times[kind.STEP_START],
        "ended": times[kind.STEP_SUCCESS],
        "blocked": any("blocked by limit for pool model_registry" in e.message for e in step),
    }


def test_two_publish_runs_at_once_leave_one_champion_that_beat_the_other(
    postgres_database, mlflow_server, tmp_path, monkeypatch
):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)  # restored after the test
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_YAML, home / "dagster.yaml")
    environment = {**os.environ, "DAGSTER_HOME": str(home)}
    # The deployment step that dagster.production.yaml names: the pool's limit set explicitly.
    subprocess.run(
        [str(VENV_BIN / "dagster"), "instance", "concurrency", "set", "model_registry", "1"],
        env=environment, check=True, capture_output=True,
    )  # fmt: skip
    registered = f"race_{uuid.uuid4().hex[:8]}"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = {}
    for name, handed in logged_challengers(tmp_path, mlflow_server).items():
        spec = tmp_path / f"{name}.json"
        spec.write_text(json.dumps({
            **handed, "name": name, "barrier": str(barrier), "storage": str(tmp_path / "storage"),
            "tracking_uri": mlflow_server, "registered_model": registered, "promotion": PROMOTION,
        }))  # fmt: skip
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "ml_assets_tests.defs.publish_race", str(spec)],
            env=environment,
            stdout=subprocess.PIPE,
            text=True,
        )
    outcomes = {}
    for name, process in processes.items():
        stdout, _ = process.communicate(timeout=600)
        assert process.returncode == 0, stdout
        outcomes[name] = json.loads(stdout.strip().splitlines()[-1])
        assert outcomes[name]["success"], outcomes[name]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = {name: published(instance, o["run_id"]) for name, o in outcomes.items()}
    first, second = sorted(runs.values(), key=lambda run: run["started"])
    # The pool let one step in; the other waited, and started only after the first ended.
    assert [first["blocked"], second["blocked"]] == [False, True]
    assert second["started"] >= first["ended"]
    # The second compared itself with the champion the first left: a real paired comparison.
    assert first["promoted"] and second["previous_champion_version"] == first["version"]
    # Whichever order they ran in, the champion is the strong model, and the weak one is not.
    client = MlflowClient(mlflow_server, mlflow_server)
    champion = client.get_model_version_by_alias(registered, "champion")
    assert int(champion.version) == runs["strong"]["version"]
    assert runs["weak"]["version"] != runs["strong"]["version"]
    assert np.isfinite(runs["strong"]["gate_challenger_ne"])
