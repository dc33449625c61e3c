"""The two-tower retrieval model: a request (user) tower and an ad tower whose dot product,
plus an ad's own bias, scores an ad for a request. Ads are embedded once, then every request
is a matrix product away from its top K over the whole catalog."""

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class TwoTowerConfig:
    user_cardinalities: tuple[int, ...]  # embedding rows per user feature (id, segment, region)
    ad_cardinalities: tuple[int, ...]  # per ad feature (id, category, advertiser)
    embedding_dim: int = 16
    hidden: int = 64
    output_dim: int = 32
    temperature: float = 0.1  # the softmax's, over cosine similarities

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TwoTowerConfig":
        return cls(
            user_cardinalities=tuple(d["user_cardinalities"]),
            ad_cardinalities=tuple(d["ad_cardinalities"]),
            embedding_dim=d["embedding_dim"],
            hidden=d["hidden"],
            output_dim=d["output_dim"],
            temperature=d["temperature"],
        )


class Tower(nn.Module):
    """Embeddings of each feature, concatenated, through an MLP, to a unit vector."""

    def __init__(self, cardinalities: tuple[int, ...], config: TwoTowerConfig):
        super().__init__()
        tables = [nn.Embedding(size, config.embedding_dim) for size in cardinalities]
        for table in tables:
            nn.init.normal_(table.weight, std=0.05)
        self.embeddings = nn.ModuleList(tables)
        self.mlp = nn.Sequential(
            nn.Linear(config.embedding_dim * len(cardinalities), config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.output_dim),
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        parts = [table(ids[:, i]) for i, table in enumerate(self.embeddings)]
        return nn.functional.normalize(self.mlp(torch.cat(parts, 1)).float(), dim=1)


class TwoTower(nn.Module):
    def __init__(self, config: TwoTowerConfig):
        super().__init__()
        self.config = config
        self.user_tower = Tower(config.user_cardinalities, config)
        self.ad_tower = Tower(config.ad_cardinalities, config)
        # An ad's own appeal, on the logit scale: what the request does not change.
        self.ad_bias = nn.Embedding(config.ad_cardinalities[0], 1)
        nn.init.zeros_(self.ad_bias.weight)

    def forward(self, users: torch.Tensor, ads: torch.Tensor) -> torch.Tensor:
        """(n_users, n_ads) logits of every user for every ad given."""
        similarity = self.user_tower(users) @ self.ad_tower(ads).T
        return similarity / self.config.temperature + self.ad_bias(ads[:, 0]).squeeze(1)


def in_batch_softmax_loss(
    model: nn.Module, users: torch.Tensor, ads: torch.Tensor, log_q: torch.Tensor
) -> torch.Tensor:
    """Sampled softmax with the other rows' ads as negatives and the logQ correction: an ad
    appears as a negative as often as it is engaged with, so its logit is lowered by the log of
    that frequency (`log_q`, per row's ad); otherwise popular ads would be punished for being
    popular. Another row with the same ad is not a negative (an accidental hit) and is masked."""
    logits = model(users, ads) - log_q.unsqueeze(0)
    same_ad = ads[:, 0].unsqueeze(1) == ads[:, 0].unsqueeze(0)
    diagonal = torch.eye(len(ads), dtype=torch.bool, device=ads.device)
    logits = logits.masked_fill(same_ad & ~diagonal, float("-inf"))
    return nn.functional.cross_entropy(logits, torch.arange(len(ads), device=ads.device))


@torch.no_grad()
def score_catalog(
    model: nn.Module, users: np.ndarray, catalog: np.ndarray, batch_size: int = 4096
) -> np.ndarray:
    """(n_users, n_ads) logits over the whole catalog (ad i in row i of `catalog`)."""
    model.eval()
    ads = torch.from_numpy(np.ascontiguousarray(catalog, dtype=np.int64))
    scores = np.empty((len(users), len(catalog)), dtype=np.float32)
    for start in range(0, len(users), batch_size):
        chunk = torch.from_numpy(np.ascontiguousarray(users[start : start + batch_size]))
        scores[start : start + batch_size] = model(chunk.long(), ads).numpy()
    return scores
