"""Champion moves against a real MLflow registry (SQLite, as the demo's)."""

import pytest
from typer.testing import CliRunner

from ml_assets.cli import app
from ml_assets.model_registry import (
    PREVIOUS_TAG,
    TRAIN_END_TAG,
    current_champion,
    promote,
    rollback,
    stale_reason,
)

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


def test_the_rollback_command_moves_the_alias_back_and_refuses_what_does_not_exist(registry):
    first, second = version(registry, "2026-11-01"), version(registry, "2026-11-02")
    promote(registry, NAME, first, None)
    promote(registry, NAME, second, first)
    runner = CliRunner()
    result = runner.invoke(app, ["rollback"])
    assert result.exit_code == 0, result.output
    assert "champion is version 1 again (was 2" in result.output
    assert current_champion(registry, NAME) == first
    missing = runner.invoke(app, ["rollback", "--to", "9"])
    assert missing.exit_code == 1 and "cannot roll back" in missing.output
    assert runner.invoke(app, ["rollback", "--to", "latest"]).exit_code == 2
    assert current_champion(registry, NAME) == first
