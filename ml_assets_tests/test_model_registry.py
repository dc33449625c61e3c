"""Champion moves against a real MLflow registry (SQLite, as the demo's)."""

import pytest
from typer.testing import CliRunner

from ml_assets.cli import app
from ml_assets.model_registry import (
    PREVIOUS_TAG,
    TRAIN_END_TAG,
    current_champion,
    history,
    stale_reason,
)
from ml_assets.model_registry import promote as gated_promote
from ml_assets.model_registry import rollback as registry_rollback

NAME = "ads_ctr_ranker"


@pytest.fixture
def registry(ml_home, monkeypatch):
    from mlflow import MlflowClient

    from ml_assets.environment import local_mlflow_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ml_home.mkdir(parents=True, exist_ok=True)
    uri = local_mlflow_tracking_uri()
    client = MlflowClient(uri, uri)
    client.create_registered_model(NAME)
    return client


def promote(client, name, version, champion_at_start):
    return gated_promote(client, name, version, champion_at_start, by="run r1", reason="gate")


def rollback(client, name, to_version=None):
    return registry_rollback(client, name, to_version, by="alice", reason="drill")


def version(client, train_end: str) -> str:
    created = client.create_model_version(NAME, source="/nowhere", tags={TRAIN_END_TAG: train_end})
    return str(created.version)


def test_each_promotion_records_the_champion_it_replaced_and_rollback_follows_it(registry):
    first, second, third = (version(registry, f"2026-11-0{day}") for day in (1, 2, 3))
    assert promote(registry, NAME, first, None) is None
    assert promote(registry, NAME, second, first) is None
    assert promote(registry, NAME, third, second) is None
    assert registry.get_model_version(NAME, third).tags[PREVIOUS_TAG] == second
    assert rollback(registry, NAME).champion == second
    assert current_champion(registry, NAME) == second
    assert rollback(registry, NAME).champion == first
    with pytest.raises(ValueError, match="replaced no earlier champion; name the version"):
        rollback(registry, NAME)
    assert rollback(registry, NAME, third).champion == third
    with pytest.raises(ValueError, match="is the champion already"):
        rollback(registry, NAME, third)


def test_a_promotion_gives_up_when_another_run_moved_the_champion_meanwhile(registry):
    first, second, third = (version(registry, f"2026-11-0{day}") for day in (1, 2, 3))
    promote(registry, NAME, first, None)
    # Two overlapping runs both compared against `first`; the second one to finish must lose.
    assert promote(registry, NAME, second, first) is None
    reason = promote(registry, NAME, third, first)
    assert reason and "moved from version 1 to 2" in reason
    assert current_champion(registry, NAME) == second


def test_a_model_of_older_days_never_replaces_a_newer_champion(registry):
    newer = version(registry, "2026-11-20")
    promote(registry, NAME, newer, None)
    reason = stale_reason(registry, NAME, newer, "2026-10-07")
    assert reason and "ends 2026-10-07, before the champion's (version 1, 2026-11-20)" in reason
    assert stale_reason(registry, NAME, newer, "2026-11-20") is None
    assert stale_reason(registry, NAME, None, "2026-10-07") is None


def test_the_commands_promote_and_roll_back_with_a_reason_and_the_history_says_so(registry):
    """The drill: a gated promotion, a forced one, a rollback; aliases and history agree."""
    first, second, third = (version(registry, f"2026-11-0{day}") for day in (1, 2, 3))
    promote(registry, NAME, first, None)
    promote(registry, NAME, second, first)
    runner = CliRunner()
    forced = runner.invoke(app, ["models", "promote", third, "--reason", "hotfix for slice X"])
    assert forced.exit_code == 0, forced.output
    assert "champion is version 3 (was 2)" in forced.output
    back = runner.invoke(app, ["models", "rollback", "--reason", "hotfix regressed CTR"])
    assert back.exit_code == 0, back.output
    assert "champion is version 2 again (was 3" in back.output
    assert current_champion(registry, NAME) == second
    assert [(e["action"], e["reason"]) for e in history(registry, NAME, third)] == [
        ("forced", "hotfix for slice X"),
        ("rolled back", "hotfix regressed CTR"),
    ]
    restored = history(registry, NAME, second)
    assert [e["action"] for e in restored] == ["promoted", "restored"]
    assert restored[0]["by"] == "run r1" and restored[1]["replaced"] == third
    assert all(e["at"].endswith("+00:00") for e in restored)
    # Refusals leave the champion where it is.
    missing = runner.invoke(app, ["models", "rollback", "--to", "9", "--reason", "x"])
    assert missing.exit_code == 1 and "cannot change" in missing.output
    not_a_version = runner.invoke(app, ["models", "rollback", "--to", "latest", "--reason", "x"])
    assert not_a_version.exit_code == 2
    assert runner.invoke(app, ["models", "rollback"]).exit_code == 2  # --reason is required
    assert runner.invoke(app, ["models", "promote", second, "--reason", "x"]).exit_code == 1
    assert current_champion(registry, NAME) == second
