"""The MLflow model's code file ("models from code"): MLflow runs it to build the model, so a
registered version holds source, not a pickle of this process's objects."""

from mlflow.models import set_model

from ml_assets.retrieval.serving import RetrievalModel

set_model(RetrievalModel())
