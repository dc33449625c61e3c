"""A suite of synthetic worlds, each with its known optimum, that the model's defaults are judged
on: structures the default world does not have, at the same row counts.

Each world is the default `SyntheticSpec` with a few knobs turned; `spread` is the default world
itself (signal spread over every feature).
"""

from dataclasses import dataclass, replace

from ml_assets.ranking.synthetic import SyntheticSpec


@dataclass(frozen=True)
class World:
    name: str
    description: str
    spec: SyntheticSpec


def _world(name: str, description: str, **knobs) -> World:
    return World(name, description, replace(SyntheticSpec(), **knobs))


WORLDS: dict[str, World] = {
    w.name: w
    for w in (
        _world("spread", "signal spread over all 26 categorical and 13 dense features"),
        _world(
            "few_signal",
            "4 of 26 categorical features carry signal; the rest are noise, many with "
            "vocabularies of up to 50k ids",
            signal_features=4,
            max_vocabulary=50_000,
            id_effect_scale=0.9,
            cross_pairs=2,
        ),
        _world(
            "small_large_crosses",
            "the crosses join a small-vocabulary feature with a large-vocabulary one",
            small_large_crosses=True,
            cross_scale=0.6,
        ),
        _world(
            "long_tail",
            "flat id frequencies over vocabularies of up to 100k ids: most ids are seen a "
            "handful of times",
            zipf_exponent=0.8,
            max_vocabulary=100_000,
        ),
        _world("ctr_0.5pct", "a base CTR of 0.5%", base_ctr=0.005),
        _world("ctr_3pct", "a base CTR of 3%", base_ctr=0.03),
        _world(
            "dense_only",
            "only the dense features carry signal; ids carry none",
            id_effect_scale=0.0,
            cross_pairs=0,
            dense_effect_scale=0.8,
        ),
        _world(
            "categorical_only",
            "only the categorical features (and their crosses) carry signal",
            dense_effect_scale=0.0,
        ),
    )
}


def world(name: str) -> World:
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; choose one of {', '.join(WORLDS)}")
    return WORLDS[name]
