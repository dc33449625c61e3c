"""`python -m ml_assets.ray.job_entrypoint`: a step's Ray driver, run as a Ray job on the cluster.

The step (`run_driver` of the KubeRay resource) submits this through the Jobs API with Dagster
Pipes: the extras name a function (`module:name`) and its JSON request; the function's JSON
result goes back as a Pipes custom message, its logs through the job's log, and an exception as
the Pipes session's failure.
"""

import importlib
import logging

FUNCTION = "function"
REQUEST = "request"


def load_function(path: str):
    """`module:name`, limited to this package: the extras come over the network."""
    module, _, name = path.partition(":")
    if not module.startswith("ml_assets.") or not name:
        raise ValueError(f"{path!r} is not a function of ml_assets (module:name)")
    return getattr(importlib.import_module(module), name)


def main() -> None:
    import ray
    from dagster_pipes import open_dagster_pipes

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with open_dagster_pipes() as pipes:
        function = load_function(pipes.get_extra(FUNCTION))
        ray.init()  # the cluster this job runs on
        try:
            result = function(pipes.get_extra(REQUEST))
        finally:
            ray.shutdown()
        pipes.report_custom_message(result)


if __name__ == "__main__":
    main()
