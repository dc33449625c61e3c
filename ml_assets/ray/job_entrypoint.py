"""`python -m ml_assets.ray.job_entrypoint`: a step's Ray driver, run as a Ray job on the cluster.

The step (`run_driver` of the KubeRay resource) submits this through the Jobs API with Dagster
Pipes: the extras name a function (`module:name`) and its JSON request; the function's JSON
result goes back as a Pipes custom message (`{"result": ...}`), its logs through the job's log,
and an exception as the Pipes session's failure.

With an `xray` extra (`{"interval_s": ..., "log_lines": ...}`), X-Ray's probes sample every node
while the function runs, and their samples and every node's log tails go back first, as
`{"xray": {"samples": [...], "logs": {...}}}`, also when the function fails: the step cannot
join the cluster to collect them itself.
"""

import importlib
import logging

FUNCTION = "function"
REQUEST = "request"
XRAY = "xray"

logger = logging.getLogger("ml_assets.job")


def load_function(path: str):
    """`module:name`, limited to this package: the extras come over the network."""
    module, _, name = path.partition(":")
    if not module.startswith("ml_assets.") or not name:
        raise ValueError(f"{path!r} is not a function of ml_assets (module:name)")
    return getattr(importlib.import_module(module), name)


def _start_probes(settings: dict):
    try:
        from ml_assets.xray.probe import start_probes

        return start_probes(float(settings["interval_s"]))
    except Exception as error:  # X-Ray must never fail the job
        logger.warning(f"X-Ray: could not start utilization probes: {error}")
        return None


def _report_xray(pipes, probes, settings: dict) -> None:
    try:
        from ml_assets.xray.probe import collect

        samples, logs = collect(probes, int(settings["log_lines"]))
        pipes.report_custom_message({XRAY: {"samples": samples, "logs": logs}})
    except Exception as error:
        logger.warning(f"X-Ray: could not collect samples and logs: {error}")


def main() -> None:
    import ray
    from dagster_pipes import open_dagster_pipes

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with open_dagster_pipes() as pipes:
        function = load_function(pipes.get_extra(FUNCTION))
        xray = pipes.extras.get(XRAY)
        ray.init()  # the cluster this job runs on
        probes = _start_probes(xray) if xray else None
        try:
            result = function(pipes.get_extra(REQUEST))
        finally:
            if probes and xray:
                _report_xray(pipes, probes, xray)
            ray.shutdown()
        pipes.report_custom_message({"result": result})


if __name__ == "__main__":
    main()
