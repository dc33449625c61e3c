"""The code location as a deployment with a landing directory would configure it: a parquet file
source and automation settings from the environment (set by the daemon test)."""

import os

from ml_assets.definitions import build_definitions
from ml_assets.defs.automation.settings import AutomationSettings
from ml_assets.defs.resources import ImpressionSource

defs = build_definitions(
    "local",
    resources={
        "source": ImpressionSource(kind="parquet", path=os.environ["ML_ASSETS_TEST_LANDING"]),
        "automation": AutomationSettings(
            settle_seconds=0,  # the test lands files atomically (write, then rename)
            run_config_file=os.environ.get("ML_ASSETS_TEST_RUN_CONFIG", ""),
        ),
    },
)
