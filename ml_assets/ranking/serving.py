"""The MLflow pyfunc model: raw impressions in, click probabilities out."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from mlflow.pyfunc.model import PythonModel

from ml_assets.packaging import code_paths, pip_requirements
from ml_assets.ranking.artifacts import VOCABULARY, LoadedModel
from ml_assets.ranking.schema import FeatureSchema
from ml_assets.ranking.vocabulary import Vocabulary

MODEL_ARTIFACT = "model_dir"


class ClickThroughModel(PythonModel):
    """Packages weights + vocabulary, so the registry version alone scores new impressions."""

    def load_context(self, context):
        self._loaded = LoadedModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None):  # pyright: ignore[reportIncompatibleMethodOverride]
        frame = pl.from_pandas(model_input)
        refuse_non_numeric_dense(frame, self._loaded.vocabulary.schema)
        return self._loaded.predict_raw(frame)


def refuse_non_numeric_dense(frame: pl.DataFrame, schema: FeatureSchema) -> None:
    """The signature lets any type through for dense columns (JSON clients send counts as
    integers, which MLflow will not widen to double); text is refused here, by column."""
    from mlflow.exceptions import MlflowException

    for name in schema.dense:
        column = frame.get_column(name)
        unparsable = column.cast(pl.Float64, strict=False).null_count() - column.null_count()
        if unparsable:
            raise MlflowException.invalid_parameter_value(
                f"column {name}: {unparsable} value(s) that are not numbers; dense features "
                "are counts or measurements (null for missing)"
            )


def signature(schema: FeatureSchema):
    """Raw impressions in (every feature column, the label optional), probabilities out, so a
    request that lacks a column or sends text for a count is refused with the column's name."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    columns: list[ColSpec | TensorSpec] = [ColSpec("long", schema.label, required=False)]
    columns += [ColSpec(AnyType(), name) for name in schema.dense]  # see refuse_non_numeric_dense
    columns += [ColSpec("string", name) for name in schema.categorical]
    return ModelSignature(
        inputs=Schema(columns), outputs=Schema([TensorSpec(np.dtype(np.float64), (-1,))])
    )


def log_click_model(name: str, model_dir: Path, example: pl.DataFrame):
    """Logs the model into the active MLflow run: its code file and the ml_assets package as
    source, the model directory as an artifact, a signature and an input example."""
    import mlflow

    loaded_schema = Vocabulary.load(model_dir / VOCABULARY).schema  # no weights needed
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(__file__).with_name("click_model.py")),
        artifacts={MODEL_ARTIFACT: str(model_dir)},
        code_paths=code_paths(),
        pip_requirements=pip_requirements(),
        signature=signature(loaded_schema),
        input_example=example.drop(loaded_schema.label, strict=False).head(3).to_pandas(),
    )


_PREDICT = """
import sys
import mlflow, numpy as np, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
np.save(sys.argv[3], np.asarray(model.predict(pd.read_parquet(sys.argv[2])), dtype=np.float64))
"""


def predict_with_their_own_code(
    model_uris: list[str], rows: Path, tracking_uri: str
) -> list[np.ndarray]:
    """Click probabilities of registered models for the rows of a Parquet file, each scored in
    a fresh interpreter of its own. The interpreters run side by side: each spends most of its
    time importing torch and MLflow, so on 2 cores two take about the time of one."""
    with tempfile.TemporaryDirectory(prefix="ml-assets-score-") as scratch:
        outs = [Path(scratch, f"probabilities-{i}.npy") for i in range(len(model_uris))]
        logs = [Path(scratch, f"scoring-{i}.log") for i in range(len(model_uris))]
        processes: list[subprocess.Popen] = []
        try:
            for uri, out, log in zip(model_uris, outs, logs, strict=True):
                with log.open("w") as output:  # a file, not a pipe: none waits on a full pipe
                    # -I: neither the working directory nor PYTHONPATH may put another
                    # ml_assets first.
                    processes.append(
                        subprocess.Popen(
                            [sys.executable, "-I", "-c", _PREDICT, uri, str(rows), str(out)],
                            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
                            cwd=scratch,
                            stdout=output,
                            stderr=subprocess.STDOUT,
                        )
                    )
            codes = [process.wait() for process in processes]
        finally:  # an interrupted step leaves no scorer behind
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        for uri, code, log in zip(model_uris, codes, logs, strict=True):
            if code != 0:
                raise RuntimeError(
                    f"scoring {uri} failed (exit {code}): {log.read_text().strip()[-2000:]}"
                )
        return [np.load(out) for out in outs]
