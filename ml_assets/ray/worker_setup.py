"""Set-up run in every worker process of the embedded local Ray (its runtime env's
`worker_process_setup_hook`). Imports no Dagster, and no Ray: a worker runs it before any task.
"""

import logging

# Ray Train's PlacementGroupCleaner asks the State API once a second whether the training
# controller still lives, so it can free the workers' placement group if the controller dies
# abruptly. The State API is served by Ray's dashboard, which the embedded Ray runs without (it
# is not in `ray[train,data]`), so every ask fails and logs this warning; the driver forwards it
# into the step's log for as long as training runs. Nothing is lost by dropping it: the embedded
# Ray is shut down with the step, which frees every placement group.
_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
_STATE_API_MISSING = "State API may be temporarily unavailable"


class _DropStateApiWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _STATE_API_MISSING not in record.getMessage()


def quiet_missing_state_api() -> None:
    logging.getLogger(_CLEANER_LOGGER).addFilter(_DropStateApiWarnings())
