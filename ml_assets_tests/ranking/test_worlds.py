"""The suite of synthetic worlds: each has the structure its name promises, in the data itself."""

import numpy as np
import polars as pl
import pytest

from ml_assets.ranking.schema import CRITEO_CATEGORICAL, CRITEO_DENSE, LABEL
from ml_assets.ranking.synthetic import SyntheticSpec, _world, generate_day
from ml_assets.ranking.worlds import WORLDS, world

DAY = "2026-10-01"


def click_rate_spread(frame: pl.DataFrame, feature: str, min_rows: int = 300) -> float:
    """How far the click rate moves between a feature's frequent values (their std)."""
    rates = (
        frame.group_by(feature)
        .agg(pl.col(LABEL).mean().alias("rate"), pl.len().alias("rows"))
        .filter(pl.col("rows") >= min_rows)
    )
    return float(rates.get_column("rate").std() or 0.0)


def test_the_default_world_is_the_first_of_the_suite_and_unchanged():
    assert WORLDS["spread"].spec == SyntheticSpec()
    a, _ = generate_day(WORLDS["spread"].spec, DAY, 500)
    b, _ = generate_day(SyntheticSpec(), DAY, 500)
    assert a.equals(b)


def test_in_the_few_signal_world_noise_features_do_not_move_the_click_rate():
    spec = world("few_signal").spec
    built = _world(spec)
    signal = [f for f, e in enumerate(built.id_effects) if np.any(e)]
    assert len(signal) == 4
    assert {f for pair in built.cross_pairs for f in pair} <= set(signal)
    frame, _ = generate_day(spec, DAY, 200_000)
    noise = [CRITEO_CATEGORICAL[f] for f in range(len(CRITEO_CATEGORICAL)) if f not in signal]
    strongest_signal = max(click_rate_spread(frame, CRITEO_CATEGORICAL[f]) for f in signal)
    # Frequent values of a noise feature differ only by sampling noise (~0.025 at 300 rows).
    assert max(click_rate_spread(frame, f) for f in noise) < 0.05 < strongest_signal


def test_the_dense_only_and_categorical_only_worlds_keep_their_signal_where_named():
    dense_only = generate_day(world("dense_only").spec, DAY, 100_000)[0]
    categorical_only = generate_day(world("categorical_only").spec, DAY, 100_000)[0]
    for feature in CRITEO_CATEGORICAL:
        assert click_rate_spread(dense_only, feature) < 0.05
    dense_effect = [
        abs(np.corrcoef(np.log1p(frame[d].fill_null(0).to_numpy()), frame[LABEL].to_numpy())[0, 1])
        for frame in (dense_only, categorical_only)
        for d in CRITEO_DENSE
    ]
    assert max(dense_effect[: len(CRITEO_DENSE)]) > 0.1
    assert max(dense_effect[len(CRITEO_DENSE) :]) < 0.03


def test_the_small_large_crosses_world_crosses_a_small_with_a_large_vocabulary():
    built = _world(world("small_large_crosses").spec)
    assert built.cross_pairs
    for f, g in built.cross_pairs:
        assert built.vocab_sizes[f] < 100 <= built.vocab_sizes[g]


def test_the_long_tail_world_sees_most_ids_a_handful_of_times():
    def rare_share(spec):
        frame, _ = generate_day(spec, DAY, 100_000)
        counts = frame[CRITEO_CATEGORICAL[int(np.argmax(_world(spec).vocab_sizes))]]
        counts = counts.drop_nulls().value_counts()["count"].to_numpy()
        return float(np.mean(counts <= 5))

    assert rare_share(world("long_tail").spec) > 0.8 > rare_share(SyntheticSpec())


@pytest.mark.parametrize(("name", "ctr"), [("ctr_0.5pct", 0.005), ("ctr_3pct", 0.03)])
def test_the_base_rate_worlds_hit_their_click_rate(name, ctr):
    frame, truth = generate_day(world(name).spec, DAY, 100_000)
    assert truth.mean() == pytest.approx(ctr, rel=0.15)
    assert frame[LABEL].mean() == pytest.approx(ctr, rel=0.25)


def test_an_unknown_world_or_an_impossible_one_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown world 'flat'; choose one of spread, few_signal"):
        world("flat")
    with pytest.raises(ValueError, match="cross_pairs=7, but only 6 pairs can be drawn"):
        _world(SyntheticSpec(signal_features=4, cross_pairs=7))
