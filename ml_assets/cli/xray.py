"""`ml-assets xray RUN_ID`: what a run's Ray clusters did, from the record that outlived them."""

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from ml_assets.cli.common import FAILED, console, fail, fmt, mlflow_tracking_uri


def _records_from_mlflow(run_id: str) -> list:
    """The records logged as `xray/xray.json` on MLflow runs tagged with this Dagster run."""
    import json
    import tempfile

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ml_assets.xray.record import XRayRecord

    client = MlflowClient(mlflow_tracking_uri())
    try:
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(
            experiments, filter_string=f"tags.`dagster.run_id` LIKE '{run_id}%'"
        )
    except MlflowException:
        return []
    records = []
    for run in runs:
        with tempfile.TemporaryDirectory() as directory:
            try:
                path = client.download_artifacts(run.info.run_id, "xray/xray.json", directory)
            except (MlflowException, OSError):
                continue
            records.append(XRayRecord.from_dict(json.loads(Path(path).read_text())))
    return records


def xray(
    run_id: str = typer.Argument(..., help="Dagster run id, or a unique prefix of it."),
    html: Path | None = typer.Option(None, help="Write the self-contained HTML report here."),
    root: str | None = typer.Option(
        None,
        help="Record folder or s3:// prefix; default `xray` under ML_ASSETS_STORAGE_ROOT, else "
        "$ML_ASSETS_HOME/xray.",
    ),
) -> None:
    """Show the X-Ray record of a run in the terminal, or write its HTML report."""
    from ml_assets import environment
    from ml_assets.storage import open_root
    from ml_assets.xray.record import EVENTS, load_records
    from ml_assets.xray.report import render_html

    directory = open_root(root or environment.xray_root())
    try:
        records = load_records(directory, run_id)
    except LookupError as error:
        # In production the step's pod, and its local records, are gone: MLflow has the copy.
        records = _records_from_mlflow(run_id)
        if not records:
            fail(
                f"{error}, nor in MLflow",
                "check the run id, ML_ASSETS_HOME, and MLFLOW_TRACKING_URI",
                FAILED,
            )
    for record in records:
        colour = "green" if record.outcome == "succeeded" else "red"
        console.rule(f"{record.step} on {record.cluster} [{colour}]{record.outcome}[/{colour}]")
        summary = Table(show_header=False)
        for key, value in record.summary().items():
            summary.add_row(key, fmt(value, 2 if "cost" not in key and "hours" not in key else 4))
        console.print(summary)
        timeline = Table(title="lifecycle")
        for column in ("event", "at (UTC)", "+s"):
            timeline.add_column(column)
        start = record.timeline.get("requested", 0.0)
        for event in EVENTS:
            if event in record.timeline:
                at = record.timeline[event]
                when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
                timeline.add_row(event, when, f"{at - start:.2f}")
        console.print(timeline)
        if record.epochs:
            epochs = Table(title="training")
            for column in ("epoch", "samples/s", "loss", "data wait"):
                epochs.add_column(column)
            for epoch in record.epochs:
                epochs.add_row(
                    str(epoch["epoch"]),
                    f"{epoch['samples_per_second']:,.0f}",
                    fmt(epoch.get("loss")),
                    fmt(epoch.get("wait_fraction"), 3),
                )
            console.print(epochs)
        if record.error:
            console.print(f"[red]error:[/red] {record.error}")
        console.print(
            f"{len(record.logs)} Ray log files kept: " + ", ".join(sorted(record.logs)[:6])
        )
    if html is not None:
        targets = (
            [html]
            if len(records) == 1
            else [html.with_name(f"{html.stem}-{r.step}{html.suffix}") for r in records]
        )
        for record, target in zip(records, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render_html(record))
            console.print(f"wrote {target}")
