"""Real Ray Tune searches on a real embedded Ray: one resumes after its driver dies (a process of
its own, search_process, SIGKILLed with its Ray mid-search, then run again), and one searches
the epochs, which ASHA compares by the trials' learning-rate schedules."""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml_assets.ranking.configs import TrainConfig
from ml_assets_tests.training.search_process import EPOCHS, SEARCHED, TRIALS, search_window

pytestmark = pytest.mark.slow


def reported(experiment: Path) -> dict[str, list[dict[str, str]]]:
    """Each trial's reports, in order, from the progress files Tune appends to."""
    trials = {}
    for progress in sorted(experiment.glob("trial_*/progress.csv")):
        with progress.open() as rows:
            trials[progress.parent.name] = list(csv.DictReader(rows))
    return trials


def epochs_reported(experiment: Path) -> dict[str, list[int]]:
    """Each trial's reported epochs, in order."""
    return {
        trial: [int(row["epoch"]) for row in rows] for trial, rows in reported(experiment).items()
    }


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
        name: pytest.approx(getattr(TrainConfig(), name)) for name in SEARCHED
    }
    completed = [t for t in result["trials"] if t["status"] == "completed"]
    assert len(completed) == len(finished)
    best = min(completed, key=lambda t: t["final"])
    versus = result["chosen"].get("versus_defaults")
    if versus is not None and versus["z"] < versus["min_z"]:  # a lead within noise
        assert result["chosen"]["trial"] == 0 and versus["best_trial"] == best["trial"]
    else:
        assert result["chosen"]["trial"] == best["trial"]


def schedule_reported(experiment: Path) -> dict[str, list[tuple[int, float]]]:
    """Each trial's (epoch, schedule) reports: the clock ASHA compares trials by."""
    return {
        trial: [(int(row["epoch"]), float(row["schedule"])) for row in rows]
        for trial, rows in reported(experiment).items()
    }


def test_searched_epochs_are_whole_and_asha_compares_trials_by_their_schedules(tmp_path, local_ray):
    result = search_window(
        tmp_path / "window",
        4_000,
        2,
        {"epochs": (1, 3), "learning_rate": (1e-3, 1e-2)},
        6,
        tmp_path / "experiments",
        "epochs",
    )
    result = json.loads(json.dumps(result))  # as the asset gets it from the Ray job
    trials = result["trials"]
    assert trials[0]["params"]["epochs"] == 2  # the defaults, which ASHA never stops
    assert trials[0]["status"] == "completed"
    drawn = {trial["params"]["epochs"] for trial in trials}
    assert drawn <= {1, 2, 3} and len(drawn) > 1, drawn
    assert all(type(trial["params"]["epochs"]) is int for trial in trials)
    for trial in trials:  # each trial ran its own epochs, unless ASHA stopped it
        ran, epochs = len(trial["curve"]), trial["params"]["epochs"]
        assert (trial["status"] == "completed") == (ran == epochs), trial
        assert ran <= epochs, trial
    # ASHA's clock is each trial's place in its own learning-rate schedule, in epochs of the
    # longest one (3): a one-epoch trial is at its end after its first epoch.
    reports = schedule_reported(tmp_path / "experiments" / "epochs")
    by_folder = dict(zip(sorted(reports), trials, strict=True))  # both in Tune's trial order
    for folder, points in reports.items():
        epochs = by_folder[folder]["params"]["epochs"]
        assert points == [(epoch, epoch * 3 / epochs) for epoch in range(1, len(points) + 1)]
    assert type(result["chosen"]["params"]["epochs"]) is int
    assert TrainConfig(**result["chosen"]["params"]).epochs in drawn
