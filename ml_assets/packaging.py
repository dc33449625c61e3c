"""What every model logged to MLflow takes along: the ml_assets package as its code, and the
running environment's versions as its requirements."""

from pathlib import Path


def pip_requirements() -> list[str]:
    """Pinned from the running environment. MLflow would record `torch==2.13.0` without the
    `+cpu` local version and pull a multi-GB CUDA build on install; pin the CPU index instead."""
    from importlib.metadata import version

    torch_version = version("torch").split("+")[0]
    return [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        f"torch=={torch_version}",
        f"polars=={version('polars')}",
        f"numpy=={version('numpy')}",
        f"pandas=={version('pandas')}",
        f"mlflow=={version('mlflow')}",
    ]


def code_paths() -> list[str]:
    """The ml_assets package travels inside the model, so the version scores with the code it
    was trained with, also where ml_assets is not installed."""
    return [str(Path(__file__).resolve().parent)]
