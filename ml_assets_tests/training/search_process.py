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
    window_dir = directory / "window"
    window_dir.mkdir(exist_ok=True)
    # Same seed, same rows: the second process sees the window the first one saw.
    window = encoded_synthetic_window(window_dir, 6_000, DAYS)
    schema = window.encoded_schema
    ray.init(num_cpus=2, include_dashboard=False)
    task = click_task(
        window.model_config, TrainConfig(epochs=EPOCHS), schema.dense, schema.categorical,
        schema.label, window.vocabulary.id_counts(), window.vocabulary.base_rate,
    )  # fmt: skip
    result = search(
        task,
        window.train_files[:-1],
        window.train_files[-1:],
        filesystem=None,
        ranges=SEARCHED,
        budget=SearchBudget(trials=TRIALS, reduction_factor=2),
        storage_path=str(directory / "experiments"),
        name="search",
    )
    (directory / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
