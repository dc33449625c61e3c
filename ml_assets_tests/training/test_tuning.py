"""A hyperparameter search resumes after its driver dies: real Ray Tune on a real embedded Ray in
a process of its own (search_process), SIGKILLed with its Ray mid-search, then run again."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml_assets.ranking.configs import TUNABLE, TrainConfig
from ml_assets_tests.training.search_process import EPOCHS, TRIALS

pytestmark = pytest.mark.slow


def epochs_reported(experiment: Path) -> dict[str, list[int]]:
    """Each trial's reported epochs, in order, from the progress files Tune appends to."""
    reported = {}
    for progress in sorted(experiment.glob("trial_*/progress.csv")):
        with progress.open() as rows:
            reported[progress.parent.name] = [int(row["epoch"]) for row in csv.DictReader(rows)]
    return reported


def saved_state_has_a_checkpoint(experiment: Path) -> bool:
    """Tune's saved experiment state knows of a trial checkpoint: a restore can resume a trial
    from it rather than start it over."""
    return any(
        "checkpoint_000000" in state.read_text()
        for state in experiment.glob("experiment_state-*.json")
    )


def search_process(directory: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ml_assets_tests.training.search_process", str(directory)],
        stdout=(directory / "search.log").open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its Ray too: the kill takes the whole "pod"
    )


def test_a_killed_search_resumes_its_trials_from_their_checkpoints(tmp_path):
    experiment = tmp_path / "experiments" / "search"
    first = search_process(tmp_path)
    deadline = time.monotonic() + 300
    while not saved_state_has_a_checkpoint(experiment):
        assert first.poll() is None, (tmp_path / "search.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no trial checkpoint was recorded within 300 s"
        time.sleep(0.2)
    os.killpg(first.pid, 9)
    first.wait()
    before = epochs_reported(experiment)
    assert not (tmp_path / "result.json").exists()
    assert any(before.values()), before

    second = search_process(tmp_path)
    assert second.wait(timeout=600) == 0, (tmp_path / "search.log").read_text()[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())

    assert result["resumed"] is True
    assert len(result["trials"]) == TRIALS
    after = epochs_reported(experiment)
    for trial, epochs in after.items():
        # Resumed from its checkpoint, not started over: no epoch reported twice.
        assert epochs == list(range(1, len(epochs) + 1)), (trial, epochs)
        assert epochs[: len(before.get(trial, []))] == before.get(trial, []), trial
    finished = {trial: epochs for trial, epochs in after.items() if len(epochs) == EPOCHS}
    assert finished
    assert result["trials"][0]["params"] == {
        name: pytest.approx(getattr(TrainConfig(), name)) for name in TUNABLE
    }
    completed = [t for t in result["trials"] if t["status"] == "completed"]
    assert len(completed) == len(finished)
    best = min(completed, key=lambda t: t["final"])
    versus = result["chosen"].get("versus_defaults")
    if versus is not None and versus["z"] < versus["min_z"]:  # a lead within noise
        assert result["chosen"]["trial"] == 0 and versus["best_trial"] == best["trial"]
    else:
        assert result["chosen"]["trial"] == best["trial"]
