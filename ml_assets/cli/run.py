"""`ml-assets run`: materialize assets through Dagster, per partition or once, locally or on a
cluster profile, with a progress bar over the runs."""

import datetime as dt
from pathlib import Path

import typer

from ml_assets.cli.common import FAILED, console, dagster_instance, fail, progress_bar
from ml_assets.defs.run_config import checked_config_for, load_run_config
from ml_assets.defs.window import days_between


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date", "write it as YYYY-MM-DD, e.g. 2026-11-08")


def parse_days(partition: str | None, start: str | None, end: str | None) -> list[str]:
    if partition and (start or end):
        fail("--partition and --from/--to exclude each other", "give one day, or a range")
    if partition:
        return [_date(partition, "--partition").isoformat()]
    if bool(start) != bool(end):
        fail("--from and --to go together", "give both ends of the range (inclusive)")
    if not start or not end:
        return []
    first, last = _date(start, "--from"), _date(end, "--to")
    if first > last:
        fail(f"--from {first} is after --to {last}", "swap them")
    return days_between(first.isoformat(), last.isoformat())


def read_config_option(config: Path | None) -> dict:
    """The --config file's run config ({} without one); a usage error when it is unusable."""
    if config is None:
        return {}
    try:
        return load_run_config(config)
    except ValueError as error:
        fail(f"--config: {error}")


def require_partitions(days: list[str], partitions) -> None:
    """Usage error naming the valid range when a day is outside the daily partitions."""
    valid = set(partitions.get_partition_keys())
    outside = [day for day in days if day not in valid]
    if outside:
        fail(
            f"day(s) {', '.join(outside[:3])} are outside the daily partitions",
            f"use days from {min(valid)} to {max(valid)}; for data that starts earlier, set "
            "ML_ASSETS_PARTITIONS_START to its first day",
        )


def run(
    assets: list[str] = typer.Argument(None, help="Asset names; default: all of them."),
    partition: str | None = typer.Option(None, help="One day for the daily assets."),
    start: str | None = typer.Option(None, "--from", help="First day of a range (inclusive)."),
    end: str | None = typer.Option(None, "--to", help="Last day of a range (inclusive)."),
    profile: str | None = typer.Option(
        None, help="Run Ray steps on an ephemeral KubeRay cluster of this profile."
    ),
    config: Path | None = typer.Option(
        None,
        help="YAML run config: `resources:` for every run, `ops: {asset: {config: ...}}` for "
        "the runs that include the asset (e.g. from `ml-assets reproduce`).",
    ),
) -> None:
    """Materialize ASSETS: the daily ones once per day of --partition / --from..--to, the
    others once after them (their window is the latest materialized days)."""
    days = parse_days(partition, start, end)
    run_config = read_config_option(config)
    if profile:
        from ml_assets.ray.profiles import ProfileError, load_profile, preflight

        try:
            preflight(load_profile(profile))
        except ProfileError as error:
            fail(str(error))

    from ml_assets.definitions import build_definitions, defs

    if profile:
        defs = build_definitions("kuberay", profile)

    graph = defs.resolve_asset_graph()
    known = {key.to_user_string(): key for key in graph.get_all_asset_keys()}
    unknown = sorted(set(assets or ()) - set(known))
    if unknown:
        fail(f"unknown asset(s): {', '.join(unknown)}", f"choose from {', '.join(sorted(known))}")
    selected = [known[name] for name in (assets or sorted(known))]
    daily = [key for key in selected if graph.get(key).partitions_def is not None]
    once = [key for key in selected if graph.get(key).partitions_def is None]
    if daily and not days:
        fail(
            f"{', '.join(k.to_user_string() for k in daily)} are daily assets",
            "give --partition YYYY-MM-DD or --from YYYY-MM-DD --to YYYY-MM-DD",
        )
    partitions = graph.get(daily[0]).partitions_def if daily else None
    if partitions is not None:
        require_partitions(days, partitions)

    job = defs.resolve_implicit_global_asset_job_def()
    plan = [(day, daily) for day in days if daily] + ([(None, once)] if once else [])
    try:
        # One check per set of assets: every day of a range runs the same daily assets.
        selections = {tuple(keys) for _, keys in plan}
        configs = {keys: checked_config_for(job, keys, run_config) for keys in selections}
    except ValueError as error:
        fail(f"--config: {error}", "fix the named fields; `ml-assets reproduce` writes a valid one")

    instance = dagster_instance()
    where = f"profile {profile} (kuberay)" if profile else "local Ray"
    console.print(f"{len(plan)} run(s) on {where}; instance {instance.root_directory}")
    with progress_bar() as progress:
        task = progress.add_task("materializing", total=len(plan))
        for day, keys in plan:
            names = ", ".join(key.to_user_string() for key in keys)
            progress.update(task, description=f"{day or 'window'}: {names}")
            result = job.execute_in_process(
                instance=instance,
                asset_selection=keys,
                partition_key=day,
                run_config=configs[tuple(keys)],
                raise_on_error=False,
                tags={"ml-assets/cli": "run"},
            )
            if not result.success:
                failure = next(
                    (e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None
                )
                error = failure.step_failure_data.error if failure else None
                detail = error.message.strip() if error else "see the Dagster run's logs"
                progress.stop()
                fail(f"run {result.run_id} ({day or 'window'}) failed: {detail}", code=FAILED)
            progress.console.print(
                f"  {day or 'window'}: {names} [green]ok[/green] {result.run_id}"
            )
            progress.advance(task)
    console.print("[green]done[/green]")
