"""A synthetic retrieval world: users, ads and a known affinity, so the true top-K ads of every
request are known and retrieval quality has a ceiling.

A user's taste and an ad's profile are latent vectors, mostly set by their features (the user's
segment and region, the ad's category and advertiser) and partly by the id itself; an ad also
has an appeal of its own (popularity). A request is a user, drawn with Zipf-like activity, who
engages with one ad drawn from the softmax of the affinities over the whole catalog. The world
depends only on the seed; each day's requests on (seed, date).
"""

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

USER_COLUMNS = ("user_id", "user_segment", "user_region")
AD_COLUMNS = ("ad_id", "ad_category", "ad_advertiser")


@dataclass(frozen=True)
class RetrievalSpec:
    seed: int = 11
    users: int = 5_000
    ads: int = 1_000
    segments: int = 20
    regions: int = 8
    categories: int = 25
    advertisers: int = 150
    latent_dim: int = 8
    # Share of the taste and profile vectors' variance their features explain; the rest is the
    # id's own, learnable only for users and ads seen often.
    feature_share: float = 0.85
    affinity_scale: float = 1.5  # logits per unit of the latent dot product: how sharp tastes are
    popularity_scale: float = 0.8  # spread of the ads' own appeal, in logits
    user_zipf: float = 0.9  # activity skew across users


@dataclass(frozen=True)
class RetrievalWorld:
    spec: RetrievalSpec

    @cached_property
    def _draws(self) -> dict[str, np.ndarray]:
        spec = self.spec
        rng = np.random.default_rng([spec.seed, 0])
        d = spec.latent_dim

        def vectors(groups: list[tuple[np.ndarray, int]], count: int) -> np.ndarray:
            shared = sum(rng.normal(size=(size, d))[index] for index, size in groups)
            shared = shared / np.sqrt(len(groups))
            own = rng.normal(size=(count, d))
            return np.sqrt(spec.feature_share) * shared + np.sqrt(1 - spec.feature_share) * own

        user_segment = rng.integers(0, spec.segments, spec.users)
        user_region = rng.integers(0, spec.regions, spec.users)
        ad_category = rng.integers(0, spec.categories, spec.ads)
        ad_advertiser = rng.integers(0, spec.advertisers, spec.ads)
        users = vectors([(user_segment, spec.segments), (user_region, spec.regions)], spec.users)
        ads = vectors([(ad_category, spec.categories), (ad_advertiser, spec.advertisers)], spec.ads)
        activity = 1.0 / np.arange(1, spec.users + 1) ** spec.user_zipf
        return {
            "user_segment": user_segment,
            "user_region": user_region,
            "ad_category": ad_category,
            "ad_advertiser": ad_advertiser,
            "user_vectors": users,
            "ad_vectors": ads,
            "ad_appeal": rng.normal(0.0, spec.popularity_scale, spec.ads),
            "user_weights": rng.permutation(activity / activity.sum()),
        }

    def user_features(self, users: np.ndarray) -> np.ndarray:
        """(n, 3) int64: id, segment, region."""
        draws = self._draws
        return np.stack([users, draws["user_segment"][users], draws["user_region"][users]], 1)

    @cached_property
    def catalog(self) -> np.ndarray:
        """(ads, 3) int64: every ad's id, category and advertiser, row i for ad i."""
        ids = np.arange(self.spec.ads)
        return np.stack([ids, self._draws["ad_category"], self._draws["ad_advertiser"]], 1)

    def affinity(self, users: np.ndarray) -> np.ndarray:
        """(n, ads) logits of each user's choice over the catalog."""
        draws = self._draws
        scale = self.spec.affinity_scale / np.sqrt(self.spec.latent_dim)
        return scale * draws["user_vectors"][users] @ draws["ad_vectors"].T + draws["ad_appeal"]

    def choice_probabilities(self, users: np.ndarray) -> np.ndarray:
        logits = self.affinity(users)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def true_top_k(self, users: np.ndarray, k: int) -> np.ndarray:
        """(n, k): each user's k most likely ads, most likely first: what retrieval should find."""
        return top_k(self.affinity(users), k)

    def requests(self, date: str, rows: int, chunk: int = 8192) -> pl.DataFrame:
        """One day of requests, each with the ad its user engaged with."""
        day = dt.date.fromisoformat(date).toordinal()
        rng = np.random.default_rng([self.spec.seed, 1, day])
        users = rng.choice(self.spec.users, size=rows, p=self._draws["user_weights"])
        chosen = np.empty(rows, dtype=np.int64)
        for start in range(0, rows, chunk):  # the Gumbel-max draw of a softmax, a chunk at once
            logits = self.affinity(users[start : start + chunk])
            chosen[start : start + chunk] = np.argmax(logits + rng.gumbel(size=logits.shape), 1)
        frame = dict(zip(USER_COLUMNS, self.user_features(users).T, strict=True))
        frame |= dict(zip(AD_COLUMNS, self.catalog[chosen].T, strict=True))
        return pl.DataFrame(frame).cast(pl.Int64)


def write_days(world: RetrievalWorld, directory: Path, days: list[str], rows: int) -> list[Path]:
    """Each day's requests as `<directory>/<day>.parquet`."""
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for day in days:
        world.requests(day, rows).write_parquet(directory / f"{day}.parquet")
        files.append(directory / f"{day}.parquet")
    return files


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(n, k) column indices of each row's k largest scores, largest first."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1)
    return np.take_along_axis(part, order, 1)
