"""Judging a retrieval model on held-out requests of a world whose truth is known: recall@K and
NDCG@K of the model, of the popularity baseline and of the optimum (the true top K), per
request, so that the gate can pair the model with its baseline or champion."""

from dataclasses import dataclass

import numpy as np

from ml_assets.retrieval.metrics import ndcg_at_k, popularity_top_k, recall_at_k
from ml_assets.retrieval.world import RetrievalWorld, top_k


@dataclass(frozen=True)
class TopKQuality:
    recall: np.ndarray  # per request
    ndcg: np.ndarray

    def means(self) -> dict[str, float]:
        return {"recall": float(self.recall.mean()), "ndcg": float(self.ndcg.mean())}


@dataclass(frozen=True)
class KnownTruth:
    """What the world knows about a set of held-out requests (each one's true top K and its
    user's choice probabilities), computed once and used to judge every ranking of them."""

    k: int
    top: np.ndarray  # (n, k): each request's true top K
    probabilities: np.ndarray  # (n, ads)

    @classmethod
    def of(cls, world: RetrievalWorld, users: np.ndarray, k: int) -> "KnownTruth":
        return cls(k, world.true_top_k(users, k), world.choice_probabilities(users))

    def judge(self, predicted: np.ndarray) -> TopKQuality:
        """`predicted` (n, k): the ads a ranking retrieved for each request."""
        return TopKQuality(
            recall_at_k(predicted, self.top), ndcg_at_k(predicted, self.probabilities)
        )

    def judge_scores(self, scores: np.ndarray) -> TopKQuality:
        """`scores` (n, ads): a model's for each request's user over the catalog."""
        return self.judge(top_k(scores, self.k))

    def judge_popularity(self, training_ads: np.ndarray) -> TopKQuality:
        """The same requests answered with the training data's K most engaged-with ads."""
        ads = self.probabilities.shape[1]
        popular = popularity_top_k(training_ads, ads, self.k)
        return self.judge(np.tile(popular, (len(self.top), 1)))
