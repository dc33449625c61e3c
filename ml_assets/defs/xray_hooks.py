"""X-Ray collection wired into the Ray resources' lifecycle.

The resource owns the record: it marks the lifecycle events as dagster-ray's hooks fire, starts a
probe per node once connected, and collects the samples and Ray's logs *before* the cluster is
disconnected and deleted. The record outlives its cluster: the step adds what only it knows
(training times, throughput, its MLflow run) through `xray_record()` after its Ray work and
cluster are gone, and shows a summary with `xray_metadata()`; the resource's teardown writes the
record (JSON + self-contained HTML) with the step's outcome, next to the MLflow run when the step
attached one. Collection never fails a step: an X-Ray problem is logged as a warning.
"""

import time
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from ml_assets import environment
from ml_assets.xray.record import DEFAULT_PRICES, XRayRecord, record_dir


class XRayConfig(dg.Config):
    enabled: bool = Field(default=True, description="Collect an X-Ray record for this step.")
    interval_s: float = Field(gt=0, default=1.0, description="Seconds between utilization samples.")
    log_lines: int = Field(ge=0, default=200, description="Last lines kept of each Ray log file.")
    collect_timeout_s: float = Field(
        gt=0,
        default=10.0,
        description="Most seconds spent pulling samples and logs off the cluster before it is "
        "deleted; keep it well inside the run pod's termination grace (30 s by default).",
    )
    root: str | None = Field(
        default=None,
        description="Where records go: a folder or s3://bucket/prefix. None: `xray` under "
        "ML_ASSETS_STORAGE_ROOT, else $ML_ASSETS_HOME/xray.",
    )
    prices: dict[str, Any] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="USD per cpu_hour, memory_gib_hour, and gpu_hour by GPU type (an estimate).",
    )


def xray_root(config: XRayConfig) -> Path:
    from ml_assets.storage import open_root

    return open_root(config.root or environment.xray_root())


def executing_step(context: Any) -> str:
    """What a resource is initialized for: its step, or, where the executor initializes
    resources once per run (in-process), the run's selected assets; else the job."""
    step = context.log.metadata.get("step_key") if context.log is not None else None
    if step:
        return step
    run = context.dagster_run
    if run is not None and run.asset_selection:
        return ",".join(sorted(key.to_user_string() for key in run.asset_selection))
    return run.job_name if run is not None else "adhoc"


def step_failure(context: Any, run_id: str, step: str) -> str | None:
    """The error of this step's (or these comma-joined steps') STEP_FAILURE event, if any."""
    instance = getattr(context, "instance", None)
    if instance is None:
        return None
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    for record in records:
        entry = record.event_log_entry
        if entry.step_key in step.split(",") and entry.dagster_event is not None:
            failure, messages = entry.dagster_event.step_failure_data.error, []
            while failure is not None:  # Dagster's wrapper first, the user's error last
                messages.append(failure.message.strip())
                failure = failure.cause
            return "\ncaused by: ".join(messages) or "step failed"
    return None


class XRayHooks:
    """Mixed into a dagster-ray `RayResource` that declares `xray: XRayConfig` and `_xray`."""

    xray: XRayConfig
    _xray: Any
    _xray_probes: Any
    _xray_mlflow: Any

    def cluster_facts(self) -> dict:
        """cpus, memory_gib, gpus, gpu_type, profile of the cluster; overridden per mode."""
        return {}

    def xray_start(self, context: Any, mode: str) -> XRayRecord | None:
        if self._xray is not None and "deleted" in self._xray.timeline:
            self.xray_finish(context, None)  # an earlier step's cluster, in the same process
        if not self.xray.enabled or self._xray is not None:
            return self._xray
        run = context.dagster_run
        self._xray = XRayRecord(
            run_id=run.run_id if run is not None else "no-run",
            step=executing_step(context),
            cluster="(not created)",
            mode=mode,
            prices=self.xray.prices,
        )
        self._xray.mark("requested")
        return self._xray

    def on_connect(self, context: Any) -> None:
        # dagster-ray's message says "via Ray Client"; these resources join as Ray drivers, or
        # (KubeRay) send the step's Ray work to the cluster as Ray jobs.
        name = self.name  # type: ignore[attr-defined]
        if hasattr(self, "run_driver"):
            context.log.info(f"{name} is ready; the step's Ray work goes to it as Ray jobs")
        else:
            context.log.info(f"connected to {name} as a Ray driver")

    def xray_failed(self, error: BaseException) -> None:
        """The step's Ray work raised: an interruption (SIGTERM of a run pod) ends the step
        before Dagster logs its failure, where `xray_collect` would look for it."""
        if self._xray is not None:
            self._xray.outcome = "failed"
            name = type(error).__name__
            self._xray.error = (f"{name}: {error}" if str(error) else name)[:4000]

    def xray_mark(self, event: str) -> None:
        if self._xray is not None:
            self._xray.mark(event)

    def xray_name_cluster(self) -> None:
        """The record takes the cluster's name and facts: at creation where the resource
        creates it (a cluster that never gets ready is still named in its record)."""
        record = self._xray
        if record is None:
            return
        record.cluster = self.name  # type: ignore[attr-defined]
        for key, value in self.cluster_facts().items():
            setattr(record, key, value)

    def xray_connected(self, context: Any, probes: bool = True) -> None:
        """The cluster is reachable: the record takes its name and facts, and, where this
        process joined it as a driver, utilization probes start on every node. A step whose
        driver runs as a Ray job (`probes=False`) keeps the lifecycle only."""
        record = self._xray
        if record is None:
            return
        self.xray_name_cluster()
        record.mark("connected")
        if not probes:
            return
        try:
            from ml_assets.xray.probe import start_probes

            self._xray_probes = start_probes(self.xray.interval_s)
        except Exception as error:  # X-Ray must never fail the step
            context.log.warning(f"X-Ray: could not start utilization probes: {error}")

    def xray_collect(self, context: Any) -> None:
        """Before teardown: pull samples and log tails off the cluster while it still exists,
        within `collect_timeout_s`. Never raises an Exception: the delete comes after it."""
        probes, self._xray_probes = self._xray_probes, None
        if self._xray is None or not probes:
            return
        try:
            from ml_assets.xray.probe import collect

            self._xray.samples, self._xray.logs = collect(
                probes, self.xray.log_lines, timeout_s=self.xray.collect_timeout_s
            )
        except Exception as error:
            context.log.warning(f"X-Ray: could not collect samples and logs: {error}")

    def xray_finish(self, context: Any, exception: BaseException | None) -> None:
        """The step is over: the record takes its outcome, is written and is attached to the
        MLflow run."""
        record = self._xray
        if record is None:
            return
        self._xray = None
        try:
            # A step's own exception is not thrown into its resources: ask the event log.
            error = (
                f"{type(exception).__name__}: {exception}"
                if exception is not None
                else step_failure(context, record.run_id, record.step)
            )
            if error:
                record.outcome, record.error = "failed", error[:4000]
            elif record.outcome != "failed":  # a failure the step's Ray work reported stands
                record.outcome = "succeeded"
        except Exception as error:
            context.log.warning(f"X-Ray: could not read the step's outcome: {error}")
        try:
            from ml_assets.storage import local_copy
            from ml_assets.xray.report import render_html

            directory = record_dir(xray_root(self.xray), record.run_id, record.step)
            path = record.save(directory)
            (directory / "report.html").write_text(render_html(record))
            context.log.info(f"X-Ray record of {record.cluster}: {path}")
            if self._xray_mlflow is not None and record.mlflow_run_id:
                from mlflow import MlflowClient

                with local_copy(directory) as files:
                    MlflowClient(self._xray_mlflow).log_artifacts(
                        record.mlflow_run_id, str(files), artifact_path="xray"
                    )
        except Exception as error:
            context.log.warning(f"X-Ray: could not write the record: {error}")

    # Used by steps ----------------------------------------------------------------------------

    def xray_record(self) -> XRayRecord | None:
        return self._xray

    def attach_mlflow_run(self, tracking_uri: str, run_id: str) -> None:
        if self._xray is not None:
            self._xray.mlflow_run_id = run_id
            self._xray_mlflow = tracking_uri

    def xray_snapshot(self) -> list[dict]:
        """The samples so far: the live probes', or those a Ray job sent back with its result."""
        if not self._xray_probes:
            return list(self._xray.samples) if self._xray is not None else []
        from ml_assets.xray.probe import snapshot

        return snapshot(self._xray_probes)


def xray_metadata(ray_cluster: Any, history: list[dict]) -> dict[str, Any]:
    """The step's X-Ray summary as asset metadata: key figures, the record's path, two plots."""
    from ml_assets.defs.metadata import png_markdown
    from ml_assets.xray.plots import throughput_png, utilization_png

    record = ray_cluster.xray_record() if isinstance(ray_cluster, XRayHooks) else None
    if record is None:
        return {}
    record.epochs = [dict(epoch) for epoch in history]
    if history and "started_at" in history[0]:
        record.mark("training_started", history[0]["started_at"])
        record.mark("training_finished", history[-1]["finished_at"])
    samples = ray_cluster.xray_snapshot()
    directory = record_dir(xray_root(ray_cluster.xray), record.run_id, record.step)
    # The step's outcome is known only once it ends: it comes with the record.
    summary = record.summary() | {"utilization_samples": len(samples)}
    metadata: dict[str, Any] = {
        f"xray_{key}": value
        for key, value in summary.items()
        if value is not None and key != "outcome"
    }
    metadata["xray_record"] = dg.MetadataValue.path(str(directory / "xray.json"))
    metadata["xray_report"] = dg.MetadataValue.path(str(directory / "report.html"))
    metadata["xray_lifecycle_s"] = dg.MetadataValue.json(record.durations())
    start = record.timeline.get("requested", time.time())
    if samples:
        metadata["xray_utilization"] = png_markdown(utilization_png(samples, start), "utilization")
    if history:
        metadata["xray_throughput"] = png_markdown(throughput_png(history), "throughput")
    return metadata
