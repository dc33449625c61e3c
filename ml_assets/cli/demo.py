"""`ml-assets demo`: the whole pipeline on embedded defaults, then the champion."""

import datetime as dt
import time

import typer
from rich.table import Table

from ml_assets.cli.common import console, fmt, progress_bar
from ml_assets.ranking.configs import TrainConfig

DEMO_END_DATE = "2026-11-08"  # fixed, so the demo's numbers are reproducible


def demo(
    end_date: str = typer.Option(DEMO_END_DATE, help="Last holdout day (YYYY-MM-DD)."),
    train_days: int = typer.Option(7, min=1, help="Training days before the holdout."),
    holdout_days: int = typer.Option(1, min=1, help="Held-out days after training."),
    rows_per_day: int = typer.Option(150_000, min=1000, help="Synthetic impressions per day."),
    epochs: int = typer.Option(TrainConfig.epochs, min=1, help="Training epochs."),
    workers: int = typer.Option(2, min=1, help="Ray Train workers."),
    force: bool = typer.Option(False, help="Re-run days and training even if already done."),
) -> None:
    """Materialize the whole pipeline on embedded defaults and print the champion."""
    from ml_assets import runner

    try:
        dt.date.fromisoformat(end_date)
    except ValueError:
        console.print(f"[red]--end-date {end_date!r} is not a YYYY-MM-DD date[/red]")
        raise typer.Exit(2) from None
    home = runner.ensure_dagster_home()
    import dagster as dg

    instance = dg.DagsterInstance.get()
    request = runner.PipelineRequest(
        end_date=end_date,
        train_days=train_days,
        holdout_days=holdout_days,
        source={"rows_per_day": rows_per_day},
        training={"epochs": epochs, "num_workers": workers},
    )
    console.print(f"Dagster instance: [bold]{home}[/bold] (SQLite); window ends {end_date}")
    started = time.perf_counter()
    days = request.dates()
    with progress_bar() as progress:
        task = progress.add_task("raw_impressions + ad_features", total=len(days))

        def advance(day: str, skipped: bool) -> None:
            progress.console.print(f"  {day}: {'already materialized' if skipped else 'done'}")
            progress.advance(task)

        runner.materialize_partitions(instance, request, force=force, on_day=advance)

    if not force and runner.previous_identical_run(instance, request) is not None:
        console.print("Training for this exact window and config already ran; --force retrains.")
    else:
        console.print("Training, evaluating and publishing (Dagster logs follow) ...")
        result = runner.train_and_publish(instance, request, raise_on_error=False)
        if not result.success:
            console.print("[red]train_and_publish failed; the champion is unchanged.[/red]")
            raise typer.Exit(1)
    _print_summary(instance, time.perf_counter() - started)


def _print_summary(instance, seconds: float) -> None:
    from ml_assets.runner import latest_metadata

    published = latest_metadata(instance, "published_model")
    evaluation = latest_metadata(instance, "model_evaluation")
    if not published:
        console.print("[red]No model has been published yet.[/red]")
        raise typer.Exit(1)
    if published["champion_version"]:
        console.print(
            f"\nChampion: [bold green]{published['champion_uri']}[/bold green] = "
            f"{published['registered_model']} version {published['champion_version']} "
            f"(this run's version {published['version']}, promoted: {published['promoted']})"
        )
    else:
        console.print(
            f"\n[yellow]No champion yet[/yellow]: version {published['version']} did not pass "
            f"the promotion gate:\n{published['gate']}"
        )
    console.print(f"MLflow tracking URI: {published['mlflow_tracking_uri']}")
    table = Table(title=f"Holdout {evaluation.get('holdout_dates', '')}")
    for column in ("metric", "model", "optimum (true CTR)"):
        table.add_column(column)
    for metric in ("auc", "log_loss", "normalized_entropy", "calibration"):
        model = evaluation.get(f"model_{metric}")
        optimum = evaluation.get(f"optimum_{metric}")
        table.add_row(metric, fmt(model), fmt(optimum))
    table.add_row("gap closed (log loss)", fmt(evaluation.get("gap_closed")), "1.0")
    console.print(table)
    console.print(f"Finished in {seconds:.0f} s.")
