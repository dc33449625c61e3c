"""What every `ml-assets` command shares: the console, errors with exit codes, the instance."""

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages stay one line: copy-pasteable

USAGE = 2  # bad arguments or input the user can fix
FAILED = 1  # the work itself failed, or something it needs is unreachable


def fail(message: str, fix: str | None = None, code: int = USAGE) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}")
    if fix:
        errors.print(f"[yellow]fix:[/yellow] {fix}")
    raise typer.Exit(code)


def dagster_instance():
    """The instance under DAGSTER_HOME (created with the project's dagster.yaml if missing)."""
    import dagster as dg

    from ml_assets.runner import ensure_dagster_home

    ensure_dagster_home()
    return dg.DagsterInstance.get()


def progress_bar():
    """The one progress bar style of the CLI: description, bar, n/total, elapsed."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )


def mlflow_tracking_uri() -> str:
    """The registry the CLI reads: MLFLOW_TRACKING_URI, else the local store of `demo`."""
    import os

    from ml_assets import environment

    return os.environ.get("MLFLOW_TRACKING_URI") or environment.local_mlflow_tracking_uri()


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
