"""The training window: which daily partitions train the model and which later ones hold it out."""

import datetime as dt
from pathlib import Path

from ml_assets.errors import DataValidationError


def window_dates(end_date: str, train_days: int, holdout_days: int) -> tuple[list[str], list[str]]:
    """Train on `train_days` days, then hold out the `holdout_days` days after them, ending on
    `end_date`: evaluation is always later in time than training."""
    if train_days < 1 or holdout_days < 1:
        raise ValueError("train_days and holdout_days must both be at least 1")
    try:
        end = dt.date.fromisoformat(end_date)
    except ValueError as error:
        raise ValueError(f"end_date {end_date!r} is not a YYYY-MM-DD date") from error
    days = [
        (end - dt.timedelta(days=offset)).isoformat()
        for offset in range(train_days + holdout_days - 1, -1, -1)
    ]
    return days[:train_days], days[train_days:]


def days_between(first: str, last: str) -> list[str]:
    """Every day from `first` to `last`, both included."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def require_partition_files(files: dict[str, Path], asset: str, how: str = "") -> None:
    """Fail with the dates to materialize when any of the window's files is missing; `how`
    (with {first} and {last}) names the pipeline's own way to materialize them."""
    missing = [date for date, path in files.items() if not path.exists()]
    if missing:
        how = how or "a backfill of {first}..{last} in the UI"
        raise DataValidationError(
            partition=", ".join(missing),
            column=None,
            problem=f"{asset} is not materialized for {len(missing)} day(s) of the window",
            fix=(
                f"materialize {asset} for {missing[0]}..{missing[-1]} "
                f"({how.format(first=missing[0], last=missing[-1])}), or move the window with "
                "end_date/train_days"
            ),
        )
