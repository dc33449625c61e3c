"""`ml-assets models` and `ml-assets reproduce VERSION`: the registry; how to rebuild a model."""

import re
from pathlib import Path

import typer
import yaml
from rich.table import Table

from ml_assets.cli.common import (
    FAILED,
    console,
    dagster_instance,
    fail,
    fmt,
    mlflow_tracking_uri,
)

MODEL_NAME = "ads_ctr_ranker"


def _client():
    from mlflow import MlflowClient

    uri = mlflow_tracking_uri()
    return MlflowClient(uri, uri), uri


def _versions(client, name: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        return sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    except MlflowException as error:
        fail(f"cannot read the model registry: {error}", "check MLFLOW_TRACKING_URI", FAILED)


app = typer.Typer(no_args_is_help=False)


@app.callback(invoke_without_command=True)
def models(
    context: typer.Context, name: str = typer.Option(MODEL_NAME, help="Registered model name.")
) -> None:
    """Registered versions with their aliases and the promotion gate's figures; `promote` and
    `rollback` move the champion by hand, with a reason."""
    if context.invoked_subcommand is not None:
        return
    client, uri = _client()
    versions = _versions(client, name)
    if not versions:
        fail(f"no versions of {name!r} in {uri}", "run `ml-assets demo` or `ml-assets run`")
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    table = Table(title=f"{name} @ {uri}")
    for column in ("version", "aliases", "promoted", "AUC", "NE", "calibration", "train dates"):
        table.add_column(column)
    for version in versions:
        number = str(version.version)  # an int from a SQLite store, a str over REST
        metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
        table.add_row(
            number,
            ", ".join(sorted(aliases.get(number, []))) or "-",
            version.tags.get("gate.promoted", "-"),
            fmt(metrics.get("holdout_model_auc")),
            fmt(metrics.get("holdout_model_normalized_entropy")),
            fmt(metrics.get("holdout_model_calibration")),
            _date_range(version.tags.get("train_dates", "-")),
        )
    console.print(table)


def _date_range(dates: str) -> str:
    """`['2026-11-01', ..., '2026-11-07']` (as the tag stores it) -> `2026-11-01..2026-11-07`."""
    found = re.findall(r"\d{4}-\d{2}-\d{2}", dates)
    return f"{found[0]}..{found[-1]}" if found else dates


def reproduce(
    version: str = typer.Argument(..., help="Model version number."),
    name: str = typer.Option(MODEL_NAME, help="Registered model name."),
    write_config: Path | None = typer.Option(None, help="Write the run config YAML here."),
) -> None:
    """The exact code version, config, data and cluster of a model version, and the command
    that rebuilds it."""
    from mlflow.exceptions import MlflowException

    if not version.isdigit():
        fail(f"version {version!r} is not a number", "see `ml-assets models`")
    client, uri = _client()
    try:
        model = client.get_model_version(name, version)
    except MlflowException:
        fail(f"{name} has no version {version} in {uri}", "see `ml-assets models`", FAILED)
    if not model.run_id:
        fail(f"{name} version {version} has no MLflow run to reproduce", code=FAILED)
    run = client.get_run(model.run_id)
    tags, params = run.data.tags, run.data.params
    dagster_run_id = tags.get("dagster.run_id")
    instance = dagster_instance()
    dagster_run = instance.get_run_by_id(dagster_run_id) if dagster_run_id else None
    holdout = _holdout_dates(instance, dagster_run.run_id) if dagster_run else []
    run_config = dict(dagster_run.run_config) if dagster_run is not None else {}
    run_config.pop("loggers", None)
    cluster = tags.get("ml_assets.ray_cluster", "-")
    profile = _profile_of(dagster_run_id, cluster)
    table = Table(show_header=False, title=f"{name} version {version}")
    rows = {
        "code version": tags.get("ml_assets.code_version", "(not recorded)"),
        "Dagster run": dagster_run_id or "-",
        "training window": params.get("train_dates", "-"),
        "training rows": params.get("train_rows", "-"),
        "holdout (gate)": ", ".join(holdout) or "-",
        "ray cluster": cluster,
        "cluster profile": profile or "local (embedded Ray)",
        "MLflow run": run.info.run_id,
    }
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)
    config_text = yaml.safe_dump({k: v for k, v in run_config.items() if k == "ops"} or {})
    console.print("[bold]run config[/bold]\n" + (config_text if run_config else "(defaults)"))
    if write_config is not None:
        write_config.write_text(config_text)
        console.print(f"wrote {write_config}")
    target = write_config or f"FILE (write it: ml-assets reproduce {version} --write-config FILE)"
    code = rows["code version"].split("+g")
    checkout = f"git checkout {code[1]} && " if len(code) == 2 else ""
    dates = [*str(params.get("train_dates", "")).split(".."), *holdout]
    window = f" --from {min(dates)} --to {max(dates)}" if len(dates) >= 2 else ""
    console.print(
        "[bold]rebuild[/bold]\n"
        f"{checkout}ml-assets run raw_impressions ad_features{window}"
        + (f" --profile {profile}" if profile else "")
        + " && ml-assets run feature_vocabulary ranking_model model_evaluation published_model"
        + (f" --profile {profile}" if profile else "")
        + f" --config {target}",
        soft_wrap=True,  # one line, to copy and paste
    )


def _holdout_dates(instance, dagster_run_id: str) -> list[str]:
    """The holdout days model_evaluation used in that run (its materialization metadata)."""
    import dagster as dg

    records = instance.get_records_for_run(
        dagster_run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key.to_user_string() == (
            "model_evaluation"
        ):
            value = materialization.metadata.get("holdout_dates")  # "first..last"
            return sorted(set(str(value.value).split(".."))) if value is not None else []
    return []


def _profile_of(dagster_run_id: str | None, cluster: str) -> str | None:
    """The profile a run's cluster came from, from its X-Ray record (kuberay mode only)."""
    from ml_assets import environment
    from ml_assets.storage import open_root
    from ml_assets.xray.record import load_records

    if not dagster_run_id:
        return None
    try:
        records = load_records(open_root(environment.xray_root()), dagster_run_id)
    except LookupError:
        return None
    return next((r.profile for r in records if r.cluster == cluster and r.profile), None)


def _move(action, name: str):
    """Runs a registry move, turning a refusal into the CLI's failure message."""
    from mlflow.exceptions import MlflowException

    client, uri = _client()
    try:
        return action(client)
    except ValueError as error:
        fail(str(error), "see `ml-assets models`", FAILED)
    except MlflowException as error:
        fail(f"cannot change {name} in {uri}: {error.message}", "see `ml-assets models`", FAILED)


def _version_option(value: str | None) -> str | None:
    if value is not None and not value.isdigit():
        fail(f"version {value!r} is not a number", "see `ml-assets models`")
    return value


REASON = typer.Option(..., "--reason", help="Why; recorded on the model versions.")


@app.command()
def promote(
    version: str = typer.Argument(..., help="Version to make champion."),
    reason: str = REASON,
    name: str = typer.Option(MODEL_NAME, help="Registered model name."),
) -> None:
    """Make a version champion by hand, past the gate (say, a model of an older window)."""
    from ml_assets.model_registry import force_promote, who

    _version_option(version)
    replaced = _move(
        lambda client: force_promote(client, name, version, by=who(), reason=reason), name
    )
    console.print(f"{name}: champion is version {version} (was {replaced or 'none'})")


@app.command()
def rollback(
    reason: str = REASON,
    to: str | None = typer.Option(
        None, "--to", help="Version to make champion. Default: the one the champion replaced."
    ),
    name: str = typer.Option(MODEL_NAME, help="Registered model name."),
) -> None:
    """Move the champion back: to the version the current champion replaced, or `--to`."""
    from ml_assets.model_registry import rollback as move_back
    from ml_assets.model_registry import who

    _version_option(to)
    moved = _move(lambda client: move_back(client, name, to, by=who(), reason=reason), name)
    console.print(
        f"{name}: champion is version {moved.champion} again (was {moved.replaced}; "
        f"version {moved.replaced} is tagged promotion.rolled_back_to={moved.champion})"
    )
