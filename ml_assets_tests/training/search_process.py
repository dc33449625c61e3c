"""A search in a process of its own, with its own embedded Ray, so that a test can kill it the
way a lost head pod or run pod dies: `python -m ml_assets_tests.training.search_process DIR`.
The window is built once under DIR; the result goes to DIR/result.json."""

import json
import sys
from pathlib import Path

import ray

from ml_assets.ranking.configs import TUNABLE, TrainConfig
from ml_assets.ranking.distributed import click_task
from ml_assets.ranking.sample_data import encoded_synthetic_window
from ml_assets.training.tuning import SearchBudget, search

DAYS = ("2026-10-01", "2026-10-02", "2026-10-03")
EPOCHS = 4
TRIALS = 4
# Every setting but the epochs: a trial's epochs are then the same, so that the test can tell a
# trial resumed from its checkpoint from one that ran its course.
SEARCHED = {name: bounds for name, bounds in TUNABLE.items() if name != "epochs"}


def main(directory: Path) -> None:
    ray.init(num_cpus=2, include_dashboard=False)
    # Same seed, same rows: the second process sees the window the first one saw.
    result = search_window(
        directory / "window", 6_000, EPOCHS, SEARCHED, TRIALS, directory / "experiments", "search"
    )
    (directory / "result.json").write_text(json.dumps(result))


def search_window(
    directory: Path,
    rows_per_day: int,
    epochs: int,
    ranges: dict,
    trials: int,
    experiments: Path,
    name: str,
) -> dict:
    """A search of the click model on a synthetic window of DAYS under `directory`: trials
    train on the first two days and are compared on the third."""
    directory.mkdir(exist_ok=True)
    window = encoded_synthetic_window(directory, rows_per_day, DAYS)
    schema = window.encoded_schema
    task = click_task(
        window.model_config, TrainConfig(epochs=epochs), schema.dense, schema.categorical,
        schema.label, window.vocabulary.id_counts(), window.vocabulary.base_rate,
    )  # fmt: skip
    return search(
        task,
        window.train_files[:-1],
        window.train_files[-1:],
        filesystem=None,
        ranges=ranges,
        budget=SearchBudget(trials=trials, reduction_factor=2),
        storage_path=str(experiments),
        name=name,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
