"""A registered model scores with the code it was logged with, not the code of the process that
asks (real MLflow, a real fresh interpreter)."""

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import ml_assets
from ml_assets.ranking.serving import ClickThroughModel, predict_with_its_own_code

pytestmark = pytest.mark.slow  # a fresh interpreter importing MLflow and torch


def test_a_model_version_scores_with_the_code_it_was_logged_with(tmp_path, monkeypatch):
    import mlflow

    # The package as it was at training time: its model predicts 0.25 for every row.
    then = tmp_path / "code-then" / "ml_assets"
    shutil.copytree(Path(ml_assets.__file__).parent, then, ignore=shutil.ignore_patterns("*.pyc"))
    serving = then / "ranking" / "serving.py"
    text = serving.read_text()
    text = text.replace(
        "        self._loaded = LoadedModel.load(Path(context.artifacts[MODEL_ARTIFACT]))",
        "        self._loaded = None",
    ).replace(
        "        return self._loaded.predict_raw(pl.from_pandas(model_input))",
        "        return np.full(len(model_input), 0.25)",
    )
    serving.write_text(text)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    monkeypatch.chdir(tmp_path)  # the default artifact root is relative to here
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=ClickThroughModel(), code_paths=[str(then)]
        )
    rows = tmp_path / "rows.parquet"
    pl.DataFrame({"label": [0, 1, 0], "C1": ["a", "b", "c"]}).write_parquet(rows)
    probabilities = predict_with_its_own_code(info.model_uri, rows, uri)
    # This process's ClickThroughModel would need the weights it was not given, and fail.
    assert probabilities.tolist() == [0.25, 0.25, 0.25]
    assert np.asarray(probabilities).dtype == np.float64


def test_a_model_that_cannot_score_fails_with_its_error(tmp_path):
    rows = tmp_path / "rows.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(rows)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(RuntimeError, match=r"scoring models:/no_such_model/1 failed \(exit 1\)"):
        predict_with_its_own_code("models:/no_such_model/1", rows, uri)
