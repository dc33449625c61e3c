"""Moving the champion alias safely: no stale model, no lost race, a record to roll back by.

MLflow's registry has no compare-and-set on aliases, so a promotion re-reads the champion just
before it moves the alias and gives up when another run moved it meanwhile; what remains is the
window between that read and the write (milliseconds, against runs that take minutes).
"""

import datetime as dt
import getpass
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml_assets.promotion import GateDecision

CHAMPION = "champion"
CHALLENGER = "challenger"
TRAIN_END_TAG = "train_end"  # the last training day, YYYY-MM-DD: comparable as text
PREVIOUS_TAG = "promotion.previous_champion"  # the version this one replaced as champion
ROLLED_BACK_TAG = "promotion.rolled_back_to"
HISTORY_TAG = "promotion.history"  # JSON list of {action, at, by, reason, ...}, oldest first
HISTORY_LIMIT = 4000  # characters: MLflow caps a tag value; the oldest entries go first


def who() -> str:
    """Who acts, as the registry records it: the OS user of a CLI call."""
    try:
        return getpass.getuser()
    except OSError:  # no user name in a container without a passwd entry
        return "unknown"


def history(client, name: str, version: str) -> list[dict]:
    return json.loads(client.get_model_version(name, version).tags.get(HISTORY_TAG) or "[]")


def _record(client, name: str, version: str, **entry: str) -> None:
    entries = history(client, name, version)
    entries.append({"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **entry})
    text = json.dumps(entries)
    while len(text) > HISTORY_LIMIT and len(entries) > 1:
        entries.pop(0)
        text = json.dumps(entries)
    client.set_model_version_tag(name, version, HISTORY_TAG, text)


def current_champion(client, name: str) -> str | None:
    """The champion's version number, or None before the first promotion."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def stale_reason(client, name: str, champion: str | None, train_end: str) -> str | None:
    """Why a model trained up to `train_end` may not replace the champion: the champion saw
    later days (a backfill over an old range must not undo a newer model)."""
    if champion is None:
        return None
    champion_end = client.get_model_version(name, champion).tags.get(TRAIN_END_TAG)
    if champion_end and champion_end > train_end:
        return (
            f"its training data ends {train_end}, before the champion's (version {champion}, "
            f"{champion_end}); a model of older days is never promoted over a newer one"
        )
    return None


def promote(
    client, name: str, version: str, champion_at_start: str | None, *, by: str, reason: str
) -> str | None:
    """Moves the champion alias to `version` if the champion is still the one this run compared
    against; returns why not otherwise. Who, when, why and the replaced champion are recorded
    on `version`."""
    champion_now = current_champion(client, name)
    if champion_now != champion_at_start:
        return (
            f"the champion moved from version {champion_at_start} to {champion_now} while this "
            "run evaluated; it was not compared against the new champion, so it stays challenger"
        )
    _move(client, name, version, champion_now, by=by, reason=reason)
    return None


def register_challenger(
    client, name: str, model_uri: str, *, train_end: str, tags: dict[str, str]
) -> tuple[str, str | None]:
    """Registers `model_uri` as a new version of `name` with the alias `challenger`. Returns the
    version and the champion it will be compared against (read first, so a champion that
    moves while the run evaluates is noticed by `promote`)."""
    import mlflow

    champion = current_champion(client, name)
    registered = mlflow.register_model(model_uri, name, tags={**tags, TRAIN_END_TAG: train_end})
    client.set_registered_model_alias(name, CHALLENGER, registered.version)
    return str(registered.version), champion


@dataclass(frozen=True)
class Settled:
    """Where a registered challenger ended up after its gate."""

    version: str
    promoted: bool
    champion: str | None  # the champion now
    previous_champion: str | None  # the champion it was compared against
    reasons: list[str]


def settle(
    client,
    name: str,
    version: str,
    previous_champion: str | None,
    decision: "GateDecision",
    *,
    train_end: str,
    by: str,
    hold: str | None = None,
) -> Settled:
    """Records the gate's figures on `version` (tags `gate.*`) and moves the champion to it when
    the gate's `decision` says so and nothing holds it back: `hold`, a reason of the model
    family's own (serving skew, say), a window older than the champion's, or another run that
    moved the champion meanwhile."""
    for key, value in decision.figures.items():
        client.set_model_version_tag(name, version, f"gate.{key}", f"{value:.6f}")
    reasons, promoted = list(decision.reasons), decision.promote and hold is None
    if hold is not None:
        reasons.append(f"not promoted: {hold}")
    if promoted:
        blocked = stale_reason(client, name, previous_champion, train_end) or promote(
            client, name, version, previous_champion, by=by, reason="; ".join(decision.reasons)
        )
        if blocked:
            reasons.append(f"not promoted: {blocked}")
            promoted = False
    client.set_model_version_tag(name, version, "gate.promoted", str(promoted))
    champion = version if promoted else current_champion(client, name)
    return Settled(version, promoted, champion, previous_champion, reasons)


def force_promote(client, name: str, version: str, *, by: str, reason: str) -> str | None:
    """A person's promotion, past the gate (a stale window, say): recorded with their reason.
    Returns the version it replaced."""
    client.get_model_version(name, version)  # refuses a version that does not exist
    champion = current_champion(client, name)
    if champion == str(version):
        raise ValueError(f"version {version} of {name!r} is the champion already")
    _move(client, name, str(version), champion, by=by, reason=reason, action="forced")
    return champion


def _move(client, name, version, replaced, *, by: str, reason: str, action="promoted") -> None:
    client.set_model_version_tag(name, version, PREVIOUS_TAG, replaced or "")
    _record(client, name, version, action=action, by=by, reason=reason, replaced=replaced or "")
    client.set_registered_model_alias(name, CHAMPION, version)


@dataclass(frozen=True)
class Rollback:
    replaced: str
    champion: str


def rollback(client, name: str, to_version: str | None = None, *, by: str, reason: str) -> Rollback:
    """Moves the champion back to `to_version`, or to the version the champion replaced; both
    versions record it."""
    champion = current_champion(client, name)
    if champion is None:
        raise ValueError(f"{name!r} has no champion to roll back")
    target = to_version
    if target is None:
        target = client.get_model_version(name, champion).tags.get(PREVIOUS_TAG) or None
        if target is None:
            raise ValueError(
                f"version {champion} of {name!r} replaced no earlier champion; name the version "
                "to roll back to (`--to VERSION`)"
            )
    if str(target) == champion:
        raise ValueError(f"version {target} of {name!r} is the champion already")
    client.get_model_version(name, str(target))  # refuses a version that does not exist
    target = str(target)
    client.set_model_version_tag(name, champion, ROLLED_BACK_TAG, target)
    _record(client, name, champion, action="rolled back", by=by, reason=reason, to=target)
    _record(client, name, target, action="restored", by=by, reason=reason, replaced=champion)
    client.set_registered_model_alias(name, CHAMPION, target)
    return Rollback(replaced=champion, champion=target)
