"""Run config files (`resources:` for every run, `ops: {asset: {config: ...}}` per asset): what
`ml-assets run --config`, `ml-assets reproduce --write-config`, backfills and the automation
sensors share."""

from pathlib import Path

import yaml

SECTIONS = ("resources", "ops", "execution", "loggers")
# Dagster's own message for a wrong field spells out the whole expected schema, often pages long.
MAX_ERROR_CHARS = 300


def load_run_config(path: str | Path) -> dict:
    """The YAML run config at `path`; ValueError naming the problem and the fix otherwise."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"run config {file} does not exist; give the path of a YAML run config")
    try:
        config = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as error:
        raise ValueError(f"run config {file} is not UTF-8 text ({error.reason})") from error
    except yaml.YAMLError as error:
        raise ValueError(f"run config {file} is not valid YAML: {error}; fix the file") from error
    _check_sections(config, file)
    return config


def _check_sections(config: object, file: Path) -> None:
    if not isinstance(config, dict):
        raise ValueError(f"run config {file} is not a mapping; write `resources:` and/or `ops:`")
    unknown = [key for key in config if key not in SECTIONS]
    if unknown:
        raise ValueError(
            f"run config {file} has unknown section(s) {', '.join(map(repr, unknown[:3]))}; "
            f"a run config holds only {', '.join(f'`{name}:`' for name in SECTIONS)}"
        )
    for section in SECTIONS:
        if config.get(section) is not None and not isinstance(config[section], dict):
            raise ValueError(
                f"run config {file}: `{section}:` holds a value of type "
                f"{type(config[section]).__name__}; it must map names to their settings: "
                f"`{section}: {{name: {{config: {{...}}}}}}`"
            )
    for section in ("ops", "resources"):
        for name, entry in (config.get(section) or {}).items():
            settings = entry.get("config") if isinstance(entry, dict) else None
            if not isinstance(entry, dict | None) or not isinstance(settings, dict | None):
                raise ValueError(
                    f"run config {file}: `{section}: {name}:` is not of the form "
                    f"`{section}: {{{name}: {{config: {{field: value}}}}}}`"
                )


def config_for(run_config: dict, asset_names: set[str] | list[str]) -> dict:
    """The part of the run config that applies to a run of these assets (Dagster refuses config
    for ops outside the run)."""
    names = set(asset_names)
    ops = {name: value for name, value in (run_config.get("ops") or {}).items() if name in names}
    return (
        {**run_config, "ops": ops} if ops else {k: v for k, v in run_config.items() if k != "ops"}
    )


def checked_config_for(job, asset_keys, run_config: dict) -> dict:
    """`config_for` these assets, checked against the schema of a run of exactly them; a
    ValueError listing what Dagster refused, before anything runs."""
    import dagster as dg

    config = config_for(run_config, [key.to_user_string() for key in asset_keys])
    try:
        dg.validate_run_config(job.get_subset(asset_selection=set(asset_keys)), config)
    except dg.DagsterInvalidConfigError as error:
        problems = [_shortened(problem.message) for problem in error.errors[:3]]
        raise ValueError(
            "the run config does not fit these assets: " + "; ".join(problems)
        ) from error
    return config


def _shortened(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS] + "..."
