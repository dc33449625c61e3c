"""The embedded Ray's worker set-up, on a real local Ray: Ray Train's once-a-second complaint
about the missing State API stays out of the driver's (the step's) log; other worker logs, the
same logger's included, still reach it."""

import logging
import time

import pytest
import ray

from ml_assets.defs.ray_resource import embedded_ray_options
from ml_assets.ray.worker_setup import _CLEANER_LOGGER, _STATE_API_MISSING

pytestmark = pytest.mark.slow

KEPT = "a warning of the cleaner that stays"


@ray.remote
def complain_like_the_cleaner() -> None:
    logger = logging.getLogger(_CLEANER_LOGGER)
    logger.warning(f"Failed to query Ray Train Controller actor state. {_STATE_API_MISSING}.")
    logger.warning(KEPT)


@pytest.mark.parametrize("with_setup_hook", [True, False], ids=["embedded", "without the hook"])
def test_only_the_missing_state_api_warning_is_dropped(capfd, with_setup_hook):
    options = embedded_ray_options()
    if not with_setup_hook:
        options.pop("runtime_env")
    ray.init(num_cpus=1, **options)
    forwarded = ""
    try:
        ray.get(complain_like_the_cleaner.remote())
        # The driver prints worker logs as Ray's log monitor forwards them: poll until the last
        # line logged has arrived (lines of one worker arrive in order).
        deadline = time.monotonic() + 60
        while KEPT not in forwarded and time.monotonic() < deadline:
            captured = capfd.readouterr()
            forwarded += captured.out + captured.err
            time.sleep(0.1)
    finally:
        ray.shutdown()
    assert KEPT in forwarded
    assert (_STATE_API_MISSING in forwarded) is not with_setup_hook
