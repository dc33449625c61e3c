"""Top-K retrieval metrics, per request (so the promotion gate can pair them) and in mean."""

import numpy as np


def recall_at_k(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per request: the share of its true top K (`truth`, (n, K)) among the predicted K."""
    hits = (predicted[:, :, None] == truth[:, None, :]).any(axis=2)
    return hits.sum(axis=1) / truth.shape[1]


def ndcg_at_k(predicted: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Per request: discounted gain of the predicted K, the gain of an ad being its true
    probability of being chosen, over the best possible K's (1 for the true top K)."""
    k = predicted.shape[1]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    gained = np.take_along_axis(probabilities, predicted, 1) @ discount
    best = -np.sort(-probabilities, axis=1)[:, :k] @ discount
    return gained / best


def hit_rate_at_k(predicted: np.ndarray, engaged: np.ndarray) -> float:
    """The share of requests whose engaged ad is among the predicted K."""
    return float((predicted == engaged[:, None]).any(axis=1).mean())


def popularity_top_k(engaged_ads: np.ndarray, ads: int, k: int) -> np.ndarray:
    """The baseline: the K most engaged-with ads of the training data, for every request."""
    return np.argsort(-np.bincount(engaged_ads, minlength=ads), kind="stable")[:k]


def gap_closed(model: float, baseline: float, optimum: float = 1.0) -> float:
    """Share of the baseline's distance to the optimum that the model covers."""
    return (model - baseline) / (optimum - baseline)
