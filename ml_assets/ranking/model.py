"""A DCN-v2-style click model (Wang et al. 2021): embeddings, a cross network and a deep tower
side by side, then one logit. Plain PyTorch; nothing here knows about Ray or Dagster."""

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    cardinalities: tuple[int, ...]  # embedding rows per categorical feature (OOV id included)
    dense_features: int
    embedding_dim: int = 8
    cross_layers: int = 2
    deep_layers: tuple[int, ...] = (256, 128)
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(
            cardinalities=tuple(d["cardinalities"]),
            dense_features=d["dense_features"],
            embedding_dim=d["embedding_dim"],
            cross_layers=d["cross_layers"],
            deep_layers=tuple(d["deep_layers"]),
            dropout=d["dropout"],
        )


class CrossLayer(nn.Module):
    """x_{l+1} = x_0 * (W x_l + b) + x_l: explicit feature crosses of growing degree."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class DCNv2(nn.Module):
    offsets: torch.Tensor  # per-feature start rows in the shared embedding table

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # One table for all features with per-feature offsets: one lookup instead of 26.
        offsets = torch.tensor([0, *config.cardinalities[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.embedding = nn.Embedding(sum(config.cardinalities), config.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.01)
        width = config.dense_features + len(config.cardinalities) * config.embedding_dim
        self.cross = nn.ModuleList(CrossLayer(width) for _ in range(config.cross_layers))
        layers: list[nn.Module] = []
        previous = width
        for size in config.deep_layers:
            layers += [nn.Linear(previous, size), nn.ReLU()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            previous = size
        self.deep = nn.Sequential(*layers)
        self.head = nn.Linear(width + previous, 1)

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits of shape [batch]; apply a sigmoid for click probabilities."""
        embedded = self.embedding(ids + self.offsets).flatten(1)
        x0 = torch.cat([dense, embedded], dim=1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return self.head(torch.cat([x, self.deep(x0)], dim=1)).squeeze(1)
