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


def judge(world: RetrievalWorld, users: np.ndarray, scores: np.ndarray, k: int) -> TopKQuality:
    """`scores` (n, ads): a model's for each request's user over the catalog."""
    truth = world.true_top_k(users, k)
    probabilities = world.choice_probabilities(users)
    predicted = top_k(scores, k)
    return TopKQuality(recall_at_k(predicted, truth), ndcg_at_k(predicted, probabilities))


def judge_popularity(
    world: RetrievalWorld, users: np.ndarray, training_ads: np.ndarray, k: int
) -> TopKQuality:
    """The same requests answered with the training data's K most engaged-with ads."""
    popular = popularity_top_k(training_ads, world.spec.ads, k)
    predicted = np.tile(popular, (len(users), 1))
    truth = world.true_top_k(users, k)
    probabilities = world.choice_probabilities(users)
    return TopKQuality(recall_at_k(predicted, truth), ndcg_at_k(predicted, probabilities))
