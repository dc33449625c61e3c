"""Population stability index (PSI) of each feature: new days against the training window.

PSI = sum over bins of (new% - ref%) * ln(new% / ref%). Bins come from the reference only: deciles
of each dense feature, the most frequent values (plus "other") of each categorical one, so a
value never seen in training lands in "other" and shows up as drift. The usual reading: below 0.1
stable, 0.1-0.25 moderate, above 0.25 a population that moved.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

# An empty bin would make ln(new/ref) infinite; this floor is the usual fix and caps one bin's
# contribution at about 0.9 for a bin that went from 0% to 10%.
PROPORTION_FLOOR = 1e-4


@dataclass(frozen=True)
class DriftColumns:
    """The columns whose distributions are compared, by kind: dense ones are binned by the
    reference's deciles, categorical ones by its most frequent values."""

    dense: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftReport:
    """PSI per feature and the verdict against a threshold."""

    psi: dict[str, float]
    threshold: float
    reference_rows: int
    current_rows: int

    @property
    def max_psi(self) -> float:
        return max(self.psi.values(), default=0.0)

    @property
    def drifted(self) -> list[str]:
        """Features at or above the threshold, worst first."""
        return [f for f, v in self.top(len(self.psi)) if v >= self.threshold]

    @property
    def crossed(self) -> bool:
        return self.max_psi >= self.threshold

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        return sorted(self.psi.items(), key=lambda item: -item[1])[:n]

    def summary(self, n: int = 5) -> str:
        worst = ", ".join(f"{f} {v:.3f}" for f, v in self.top(n))
        return (
            f"max PSI {self.max_psi:.3f} (threshold {self.threshold}) over {len(self.psi)} "
            f"features, {self.current_rows:,} new rows vs {self.reference_rows:,}; worst: {worst}"
        )


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two histograms over the same bins (counts or proportions)."""
    ref = np.maximum(reference / max(reference.sum(), 1), PROPORTION_FLOOR)
    cur = np.maximum(current / max(current.sum(), 1), PROPORTION_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def dense_psi(reference: pl.Series, current: pl.Series, bins: int) -> float:
    ref = reference.drop_nulls().cast(pl.Float64).to_numpy()
    cur = current.drop_nulls().cast(pl.Float64).to_numpy()
    # Interior quantile edges; log1p features have many ties (zeros), so keep unique edges only.
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])) if len(ref) else []
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    return psi(ref_counts, cur_counts)


def categorical_psi(reference: pl.Series, current: pl.Series, bins: int) -> float:
    top = reference.value_counts(sort=True).head(bins - 1)
    values = top.get_column(reference.name).to_list()
    ref_counts = top.get_column("count").to_numpy().astype(np.float64)
    ref_counts = np.append(ref_counts, len(reference) - ref_counts.sum())  # "other"
    current_counts = dict(
        current.filter(current.is_in(values)).value_counts().iter_rows()
    )  # value -> count
    cur_counts = np.array([current_counts.get(v, 0) for v in values], dtype=np.float64)
    cur_counts = np.append(cur_counts, len(current) - cur_counts.sum())
    return psi(ref_counts, cur_counts)


def feature_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: DriftColumns,
    *,
    threshold: float,
    bins: int = 10,
) -> DriftReport:
    """PSI of every dense and categorical column of `columns`."""
    if reference.height == 0 or current.height == 0:
        raise ValueError("drift needs rows on both sides: the reference and the new days")
    values = {c: dense_psi(reference[c], current[c], bins) for c in columns.dense}
    values |= {c: categorical_psi(reference[c], current[c], bins) for c in columns.categorical}
    return DriftReport(
        psi={k: round(v, 6) for k, v in values.items()},
        threshold=threshold,
        reference_rows=reference.height,
        current_rows=current.height,
    )
