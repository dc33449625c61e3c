"""A registered model scores with the code it was logged with, not the code of the process that
asks (real MLflow, a real fresh interpreter)."""

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import ml_assets
from ml_assets.ranking.artifacts import LoadedModel
from ml_assets.ranking.serving import predict_with_their_own_code

pytestmark = pytest.mark.slow  # a fresh interpreter importing MLflow and torch


def test_a_model_version_scores_with_the_code_it_was_logged_with(tmp_path, monkeypatch):
    import mlflow

    from ml_assets.ranking import serving

    # The package as it was at training time: its model predicts 0.25 for every row.
    then = tmp_path / "code-then" / "ml_assets"
    shutil.copytree(Path(ml_assets.__file__).parent, then, ignore=shutil.ignore_patterns("*.pyc"))
    logged_serving = then / "ranking" / "serving.py"
    text = logged_serving.read_text()
    now = "        return self._loaded.predict_raw(frame)"
    assert now in text
    logged_serving.write_text(text.replace(now, "        return np.full(len(frame), 0.25)"))
    current_code = serving.code_paths
    monkeypatch.setattr(serving, "code_paths", lambda: [str(then)])
    model_dir, raw = trained_model_dir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    monkeypatch.chdir(tmp_path)  # the default artifact root is relative to here
    with mlflow.start_run():
        then_model = serving.log_click_model("model", model_dir, raw)
    monkeypatch.setattr(serving, "code_paths", current_code)
    with mlflow.start_run():
        now_model = serving.log_click_model("model", model_dir, raw)
    rows = tmp_path / "rows.parquet"
    raw.head(3).write_parquet(rows)
    # Scored side by side, each in its own interpreter with its own code.
    then_scores, now_scores = predict_with_their_own_code(
        [then_model.model_uri, now_model.model_uri], rows, uri
    )
    assert then_scores.tolist() == [0.25] * 3
    here = LoadedModel.load(model_dir).predict_raw(raw.head(3))
    assert here.tolist() != [0.25] * 3
    np.testing.assert_allclose(now_scores, here, atol=1e-6)


def test_a_model_that_cannot_score_fails_with_its_error(tmp_path):
    rows = tmp_path / "rows.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(rows)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(RuntimeError, match=r"scoring models:/no_such_model/1 failed \(exit 1\)"):
        predict_with_their_own_code(["models:/no_such_model/1"], rows, uri)


def trained_model_dir(tmp_path: Path) -> tuple[Path, pl.DataFrame]:
    """A model directory as the training asset writes it (untrained weights: serving is what is
    tested here), and raw impressions to score."""
    import torch

    from ml_assets.ranking.artifacts import save_model_dir
    from ml_assets.ranking.configs import ModelConfig
    from ml_assets.ranking.features import transform
    from ml_assets.ranking.model import build_model
    from ml_assets.ranking.schema import FeatureSchema
    from ml_assets.ranking.synthetic import SyntheticSpec, generate_day
    from ml_assets.ranking.vocabulary import fit_vocabulary

    schema = FeatureSchema()
    raw, _ = generate_day(SyntheticSpec(), "2026-11-01", 2000)
    features = tmp_path / "features.parquet"
    transform(raw, schema).write_parquet(features)
    vocabulary = fit_vocabulary(
        [features], schema, train_dates=["2026-11-01"], holdout_dates=[], min_count=2, max_size=50
    )
    torch.manual_seed(0)
    config = ModelConfig(
        cardinalities=tuple(vocabulary.cardinality(c) for c in schema.categorical),
        dense_features=len(vocabulary.dense_inputs),
        deep_layers=(16,),
    )
    model_dir = save_model_dir(
        tmp_path / "model_dir",
        build_model(config).state_dict(),
        config,
        vocabulary=vocabulary,
    )
    return model_dir, raw


def test_the_logged_model_is_source_with_a_signature_and_serves_over_http(tmp_path, monkeypatch):
    """`mlflow models serve` scores raw impressions as the step does, and refuses a request that
    breaks the signature with the column's name."""
    import json
    import subprocess
    import urllib.error
    import urllib.request

    import mlflow

    from ml_assets.ranking.serving import log_click_model
    from ml_assets_tests.conftest import (
        VENV_BIN,
        free_port,
        stop_process_group,
        wait_until_healthy,
    )

    model_dir, raw = trained_model_dir(tmp_path)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run():
        info = log_click_model("model", model_dir, raw)
    logged = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "d")))
    assert not (logged / "python_model.pkl").exists()  # source, not a pickle
    assert (logged / "click_model.py").exists() or any(logged.rglob("click_model.py"))
    assert info.signature is not None and (logged / "input_example.json").exists()

    rows = raw.drop("label").head(50)
    expected = LoadedModel.load(model_dir).predict_raw(rows)
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "models", "serve", "-m", str(logged), "--env-manager",
         "local", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # It starts `uvicorn` by name, as an activated venv would find it.
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
    )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/ping", server, timeout=120)

        def invoke(frame: pl.DataFrame):
            body = json.dumps({"dataframe_split": frame.to_pandas().to_dict(orient="split")})
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["predictions"]

        served = np.asarray(invoke(rows), dtype=np.float64)
        np.testing.assert_allclose(served, expected, rtol=1e-6)
        with pytest.raises(urllib.error.HTTPError) as refused:
            invoke(rows.with_columns(pl.lit("many").alias("I3")))
        assert refused.value.code == 400 and "I3" in refused.value.read().decode()
    finally:
        stop_process_group(server, timeout=20)
        log.close()


def test_an_interrupted_scoring_leaves_no_interpreter_behind(tmp_path):
    import signal

    import psutil

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    rows = tmp_path / "rows.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(rows)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = signal.signal(signal.SIGALRM, interrupt)
    # Half a second in, both interpreters are still importing MLflow (seconds on any machine).
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(Interrupted):
            predict_with_their_own_code(["models:/a/1", "models:/b/1"], rows, uri)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    running = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "-I" in child.cmdline():
                running.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue  # exited (a zombie is another test's child not yet reaped): not running
    assert running == []
