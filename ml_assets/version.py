"""The code version stamped on clusters, MLflow runs and model versions: package + git commit."""

import functools
import os
import subprocess
from importlib.metadata import version
from pathlib import Path


@functools.cache
def code_version() -> str:
    """`0.1.0+g1a2b3c4` from a git checkout or ML_ASSETS_GIT_SHA (set by the image build)."""
    base = version("ml-assets")
    sha = os.environ.get("ML_ASSETS_GIT_SHA", "")
    if not sha:
        try:
            sha = subprocess.run(
                ["git", "rev-parse", "--short=8", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            sha = ""
    return f"{base}+g{sha[:8]}" if sha else base
