"""What every publish asset reports once its gate has decided: the version, where the champion
is, and why (the registry moves themselves are in ml_assets.model_registry)."""

from typing import Any

import dagster as dg

from ml_assets.model_registry import CHALLENGER, CHAMPION, Settled


def publication_result(
    context: Any, name: str, settled: Settled, figures: dict[str, float], **metadata: Any
) -> dg.MaterializeResult:
    """The publish asset's value (version, champion, promoted) and metadata: the gate's reasons
    and figures, plus the family's own `metadata`."""
    if settled.promoted:
        context.log.info(f"{name} version {settled.version} is the new {CHAMPION}")
    else:
        context.log.warning(
            f"{name} version {settled.version} stays {CHALLENGER}: {'; '.join(settled.reasons)}"
        )
    return dg.MaterializeResult(
        value={
            "version": settled.version,
            "champion_version": settled.champion,
            "promoted": settled.promoted,
        },
        metadata={
            "registered_model": name,
            "version": int(settled.version),
            "promoted": settled.promoted,
            "champion_version": int(settled.champion) if settled.champion else 0,
            "previous_champion_version": int(settled.previous_champion or 0),
            "champion_uri": f"models:/{name}@{CHAMPION}",
            "gate": dg.MetadataValue.md("\n".join(f"- {r}" for r in settled.reasons)),
            **{f"gate_{key}": dg.MetadataValue.float(v) for key, v in figures.items()},
            **metadata,
        },
    )
