"""The Ray job entrypoint runs only ml_assets' own functions: its extras come over the network."""

import pytest

from ml_assets.ranking.train_driver import train_window
from ml_assets.ray.job_entrypoint import load_function


def test_only_functions_of_ml_assets_are_loaded():
    assert load_function("ml_assets.ranking.train_driver:train_window") is train_window
    for path in ("os:system", "builtins:eval", "ml_assets_evil.module:run", "ml_assets.ranking"):
        with pytest.raises(ValueError, match="is not a function of ml_assets"):
            load_function(path)
