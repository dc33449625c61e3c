"""The search's scheduler: ASHA, except that the shipped defaults' trial always finishes, so the
chosen trial is always judged against their finished run (training.tuning.MIN_Z)."""

from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from ml_assets.training.tuning import KeepingDefaultsASHA

DEFAULTS = {"learning_rate": 7e-3, "epochs": 3}


def test_asha_stops_a_trailing_trial_at_a_rung_but_never_the_defaults():
    scheduler = KeepingDefaultsASHA(
        DEFAULTS, time_attr="epoch", max_t=3, grace_period=1, reduction_factor=2,
        metric="log_loss", mode="min",
    )  # fmt: skip
    leaders = [SimpleNamespace(trial_id=f"lead{i}", config={"learning_rate": i}) for i in (1, 2)]
    defaults = SimpleNamespace(trial_id="defaults", config=dict(DEFAULTS))
    trailing = SimpleNamespace(trial_id="trailing", config={**DEFAULTS, "learning_rate": 1e-3})
    for trial in (*leaders, defaults, trailing):
        scheduler.on_trial_add(None, trial)  # pyright: ignore[reportArgumentType]
    for trial in leaders:  # two good scores fill the first rung
        action = scheduler.on_trial_result(None, trial, {"epoch": 1, "log_loss": 0.40})
        assert action == TrialScheduler.CONTINUE
    # The same poor score at the first rung: the other trial is stopped, the defaults go on.
    outcomes = {
        trial.trial_id: scheduler.on_trial_result(None, trial, {"epoch": 1, "log_loss": 0.50})
        for trial in (trailing, defaults)
    }
    assert outcomes == {"trailing": TrialScheduler.STOP, "defaults": TrialScheduler.CONTINUE}
