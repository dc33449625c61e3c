"""`ml-assets backfill`: a Dagster asset backfill over a date range, executed by the daemon.

The daily assets run one day per run (their backfill policy), the training window once after all
of them, on the window that ends with the range's last day: one Ray cluster per backfill. The
backfill is the same object the UI's "Materialize" over a range creates, so it shows (and can be
cancelled or re-executed) on the UI's backfills page.
"""

import time
from collections.abc import Mapping
from pathlib import Path

import typer

from ml_assets.cli.common import FAILED, console, dagster_instance, fail, progress_bar
from ml_assets.cli.run import parse_days, read_config_option, require_partitions

BACKFILL_TAG = "dagster/backfill"


def backfill(
    start: str = typer.Option(..., "--from", help="First day (inclusive), YYYY-MM-DD."),
    end: str = typer.Option(..., "--to", help="Last day (inclusive), YYYY-MM-DD."),
    retrain: bool = typer.Option(
        True,
        "--retrain/--no-retrain",
        help="After the days, run the training window once (vocabulary -> published model) on "
        "the window ending with --to.",
    ),
    config: Path | None = typer.Option(
        None, help="YAML with `resources:` for every run of the backfill (no per-asset `ops:`)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow it to the end, with progress."),
    timeout: float = typer.Option(3600.0, help="With --wait: give up after this many seconds."),
) -> None:
    """Backfill the daily assets for --from..--to, then (by default) retrain once."""
    days = parse_days(None, start, end)
    run_config = read_config_option(config)
    if run_config.get("ops"):
        fail(
            "--config has `ops:`, but one backfill run config applies to runs of different assets",
            "keep only `resources:` here; for per-asset config use `ml-assets run --config`",
        )
    backfill_id = submit(days, retrain, run_config)
    if not wait:
        console.print("watch it in the UI (Runs > Backfills), or submit with --wait to follow it")
        return
    follow(backfill_id, expected_runs=len(days) + int(retrain), timeout=timeout)


def submit(days: list[str], retrain: bool, run_config: dict) -> str:
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._daemon.controller import get_daemon_statuses

    from ml_assets.definitions import defs
    from ml_assets.defs.ads_ranking.jobs import ADS_RANKING

    graph = defs.resolve_asset_graph()
    require_partitions(days, graph.get(ADS_RANKING.daily_assets[0].key).partitions_def)
    instance = dagster_instance()
    assets = [*ADS_RANKING.daily_assets, *(ADS_RANKING.window_assets if retrain else ())]
    selection = [asset.key for asset in assets]
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=graph,
        partition_names=days,
        asset_selection=selection,
        backfill_timestamp=time.time(),
        tags={"ml-assets/cli": "backfill"},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=f"{days[0]}..{days[-1]}" + (" + retrain" if retrain else ""),
        description="ml-assets backfill",
        run_config=run_config or None,
    )
    instance.add_backfill(backfill)
    console.print(
        f"backfill [bold]{backfill.backfill_id}[/bold]: {len(days)} day run(s)"
        + (", then one training run" if retrain else "")
        + f"; instance {instance.root_directory}"
    )
    status = get_daemon_statuses(instance, ["BACKFILL"]).get("BACKFILL")
    if status is not None and status.required and not status.healthy:
        console.print(
            "[yellow]no dagster-daemon serves this instance now[/yellow]: the backfill starts "
            "once one runs (`make dev`, or `dagster-daemon run -w workspace.yaml`)"
        )
    return backfill.backfill_id


def run_days(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """A run's days (first, last) from its partition tags; None for the window's run."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    first = tags.get("dagster/asset_partition_range_start")
    return (first, tags["dagster/asset_partition_range_end"]) if first else None


def follow(backfill_id: str, *, expected_runs: int, timeout: float) -> None:
    """Polls the instance until the backfill ends; one line per finished run."""
    import dagster as dg
    from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus

    instance = dagster_instance()
    reported: set[str] = set()
    deadline = time.monotonic() + timeout
    with progress_bar() as progress:
        task = progress.add_task(f"backfill {backfill_id}", total=expected_runs)
        while True:
            backfill = instance.get_backfill(backfill_id)
            runs = instance.get_runs(filters=dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
            for run in reversed(runs):
                if run.is_finished and run.run_id not in reported:
                    reported.add(run.run_id)
                    days = run_days(run.tags)
                    days = (
                        (days[0] if days[0] == days[1] else "..".join(days)) if days else "window"
                    )
                    mark = "green" if run.status == dg.DagsterRunStatus.SUCCESS else "red"
                    progress.console.print(
                        f"  {days}: [{mark}]{run.status.value.lower()}[/{mark}] {run.run_id}"
                    )
                    progress.advance(task)
            if backfill is None or backfill.status in BULK_ACTION_TERMINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                progress.stop()
                fail(f"backfill {backfill_id} still running after {timeout:.0f}s", code=FAILED)
            time.sleep(2)  # polling the instance for progress, as the UI does
    status = backfill.status if backfill is not None else None
    if status != BulkActionStatus.COMPLETED_SUCCESS:
        fail(
            f"backfill {backfill_id} ended {status.value if status else 'missing'}",
            "see the failed run(s) above in the UI, fix, and re-execute the backfill there",
            code=FAILED,
        )
    console.print(f"[green]done[/green]: {len(reported)} run(s)")
