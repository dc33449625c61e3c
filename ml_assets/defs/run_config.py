"""Run config files (`resources:` for every run, `ops: {asset: {config: ...}}` per asset): what
`ml-assets run --config`, `ml-assets reproduce --write-config`, backfills and the automation
sensors share."""

from pathlib import Path

import yaml


def load_run_config(path: str | Path) -> dict:
    """The YAML run config at `path`; ValueError naming the problem and the fix otherwise."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"run config {file} does not exist; give the path of a YAML run config")
    try:
        config = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"run config {file} is not valid YAML: {error}; fix the file") from error
    if not isinstance(config, dict):
        raise ValueError(f"run config {file} is not a mapping; write `resources:` and/or `ops:`")
    return config


def config_for(run_config: dict, asset_names: set[str] | list[str]) -> dict:
    """The part of the run config that applies to a run of these assets (Dagster refuses config
    for ops outside the run)."""
    names = set(asset_names)
    ops = {name: value for name, value in (run_config.get("ops") or {}).items() if name in names}
    return (
        {**run_config, "ops": ops} if ops else {k: v for k, v in run_config.items() if k != "ops"}
    )
