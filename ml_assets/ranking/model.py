"""Click models, plain PyTorch (nothing here knows about Ray or Dagster), chosen by
`ModelConfig.architecture`:
- `dcn_v2` (default; Wang et al. 2021): embeddings, a cross network and a deep tower side by
  side, then one logit; with `first_order`, plus one weight per id (a "wide" part), and with
  `dense_curves`, plus a learned curve per dense input;
- `dlrm` (Naumov et al. 2019): a bottom MLP for the dense features, dot products between every
  pair of feature vectors, a top MLP;
- `logistic`: logistic regression on one-hot ids and the dense features, the baseline every
  ranking model must beat.
All take (dense [batch, D] float, ids [batch, C] int) and return logits [batch]."""

import math

import torch
from torch import nn

from ml_assets.ranking.configs import ModelConfig


def build_model(config: ModelConfig) -> nn.Module:
    """The model `config.architecture` names."""
    return {"dcn_v2": DCNv2, "dlrm": DLRM, "logistic": LogisticRegression}[config.architecture](
        config
    )


class SharedEmbedding(nn.Embedding):
    """One table for all categorical features with per-feature offsets: one lookup, not 26.
    (An nn.Embedding itself, so saved models keep their `embedding.weight` key.)

    With `set_prior`, training also computes `penalty`: a Gaussian prior on every embedding row,
    paid once per epoch whatever the id's frequency (each lookup pays strength / count). That
    is the shrinkage a rare id needs and a frequent one does not: plain weight decay shrinks
    every row alike, and in Adam it even pulls unseen rows to zero between their visits.
    """

    offsets: torch.Tensor
    inverse_counts: torch.Tensor | None

    def __init__(self, cardinalities: tuple[int, ...], dim: int, std: float = 0.01):
        super().__init__(sum(cardinalities), dim)
        offsets = torch.tensor([0, *cardinalities[:-1]]).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        # Not a buffer: DDP would broadcast it from rank 0 before every step.
        self.inverse_counts = None
        self.prior_strength = 0.0
        self.penalty: torch.Tensor | None = None
        nn.init.normal_(self.weight, std=std)

    def set_prior(self, id_counts: torch.Tensor, strength: float) -> None:
        """`id_counts`: training rows per embedding row (all features, table order)."""
        if len(id_counts) != self.num_embeddings:
            raise ValueError(
                f"id counts cover {len(id_counts)} embedding rows, the table has "
                f"{self.num_embeddings}: they come from a different vocabulary"
            )
        self.inverse_counts = 1.0 / id_counts.clamp(min=1).float()
        self.prior_strength = strength

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # pyright: ignore[reportIncompatibleMethodOverride]
        """[batch, features, dim]."""
        rows = ids + self.offsets
        vectors = super().forward(rows)
        if self.training and self.prior_strength and self.inverse_counts is not None:
            if self.inverse_counts.device != rows.device:
                self.inverse_counts = self.inverse_counts.to(rows.device)
            # Mean over the batch, like the loss it is added to.
            squared = vectors.pow(2).sum(-1) * self.inverse_counts[rows]
            self.penalty = self.prior_strength * squared.sum() / len(ids)
        return vectors


class FirstOrderWeights(SharedEmbedding):
    """One weight per id, added to the logit: each id's own effect, the "wide" part.

    Its prior is in logit units: strength s is a Gaussian prior of variance 1/(2s) on an id's
    effect (s = 4: effects of about +-0.35), which is what shrinking an id seen c times by
    variance / (variance + noise / c) needs. Embeddings cannot have that: the network can scale
    them, so their prior only ranks rare ids against frequent ones.
    """

    def __init__(self, cardinalities: tuple[int, ...]):
        super().__init__(cardinalities, 1, std=0.0)

    def logit(self, ids: torch.Tensor) -> torch.Tensor:
        """[batch]: the sum of the ids' weights."""
        return self(ids).sum(dim=(1, 2))


# A gate this small leaves its feature's use in the crosses and the deep tower negligible: the
# feature counts as closed.
CLOSED_GATE = 0.05


class FeatureGates(nn.Module):
    """One gate per input feature (dense inputs first, then categorical) on what enters DCN-v2's
    cross network and deep tower; a feature's first-order weights and dense curve are not gated.

    With `set_penalty` the gates train under an L1 penalty of `strength` per unit of gate, in
    nats of the whole training window's log loss (each batch pays strength / rows of it, the
    way the data term is a mean): a feature keeps its gate only while the towers' use of it
    lowers the window's total log loss by more than that. What the towers can overfit on a
    feature that carries nothing is about as many nats however many rows there are, while real
    signal earns more with every row; so the noise's gates go to about zero, and the hundreds of
    crosses it would join stop fitting noise. Without a penalty the gates stay at exactly 1 and
    do not train: the model computes what it would without them.
    """

    def __init__(self, features: int):
        super().__init__()
        self.values = nn.Parameter(torch.ones(features), requires_grad=False)
        self.per_row = 0.0
        self.penalty: torch.Tensor | None = None

    def set_penalty(self, strength: float, rows: int) -> None:
        """`rows`: the training window's rows, over which `strength` is spread."""
        self.per_row = strength / max(rows, 1)
        self.values.requires_grad_(strength > 0)

    def forward(self, dense: torch.Tensor, embedded: torch.Tensor) -> torch.Tensor:
        """[batch, dense + categorical * dim]: the gated towers' input."""
        split = dense.shape[1]
        if self.training and self.per_row:
            self.penalty = self.per_row * self.values.abs().sum()
        gated = embedded * self.values[split:, None]
        return torch.cat([dense * self.values[:split], gated.flatten(1)], dim=1)


def set_embedding_prior(
    model: nn.Module, id_counts: torch.Tensor, strength: float, first_order_strength: float
) -> None:
    """`strength` for embedding tables, `first_order_strength` for first-order weights."""
    for module in model.modules():
        if isinstance(module, FirstOrderWeights):
            module.set_prior(id_counts, first_order_strength)
        elif isinstance(module, SharedEmbedding):
            module.set_prior(id_counts, strength)


def start_at_base_rate(model: nn.Module, base_rate: float) -> None:
    """Set the output bias to the log-odds of the training window's click rate, so training
    starts from the base rate instead of p = 0.5. At a 0.5% click rate the bias would otherwise
    have to travel 5.3 logits at the learning rate's pace before the features get a say."""
    rate = min(max(base_rate, 1e-6), 1 - 1e-6)
    output = {
        DCNv2: lambda m: m.head,
        DLRM: lambda m: m.top[-1],
        LogisticRegression: lambda m: m.dense,
    }[type(model)](model)
    with torch.no_grad():
        output.bias.fill_(math.log(rate / (1 - rate)))


def decay_groups(model: nn.Module) -> dict[str, list[torch.Tensor]]:
    """DCN-v2's weight matrices by the weight decay they take (configs.TrainConfig): "deep" (the
    deep tower's), "cross" (the cross layers') and "other", everything else: parameters with a
    prior of their own (embeddings, first-order weights), few numbers for much data (dense
    curves, the head, biases), or another architecture's."""
    model = getattr(model, "module", model)  # a DDP-wrapped model's parameters are the same
    deep: list[torch.Tensor] = []
    cross: list[torch.Tensor] = []
    if isinstance(model, DCNv2):
        deep = [layer.weight for layer in model.deep.modules() if isinstance(layer, nn.Linear)]
        cross = [
            layer.linear.weight for layer in model.cross.modules() if isinstance(layer, CrossLayer)
        ]
    chosen = {id(p) for p in (*deep, *cross)}
    other: list[torch.Tensor] = [p for p in model.parameters() if id(p) not in chosen]
    return {"deep": deep, "cross": cross, "other": other}


def set_gate_penalty(model: nn.Module, strength: float, rows: int) -> None:
    """Trains the model's feature gates (if it has them) under `strength` over a window of
    `rows` training rows (FeatureGates)."""
    for module in model.modules():
        if isinstance(module, FeatureGates):
            module.set_penalty(strength, rows)


def open_gates(weights: dict) -> list[bool] | None:
    """Which of a saved model's feature gates training left open (dense inputs first), from
    its state dict; None when it has no gates or trained them under no penalty (all still 1)."""
    values = weights.get("gates.values")
    if values is None or bool((values == 1).all()):
        return None
    return (values.abs() >= CLOSED_GATE).tolist()


def feature_gates(model: nn.Module) -> list[float] | None:
    """The model's feature gates (dense features first), or None if it has none."""
    model = getattr(model, "module", model)
    gates = getattr(model, "gates", None)
    return gates.values.detach().cpu().tolist() if isinstance(gates, FeatureGates) else None


def penalty(model: nn.Module) -> torch.Tensor | None:
    """The priors' and the gates' terms for the batch the model last saw in training mode, if
    it has any."""
    terms = [
        module.penalty
        for module in model.modules()
        if isinstance(module, SharedEmbedding | FeatureGates) and module.penalty is not None
    ]
    return sum(terms[1:], terms[0]) if terms else None


class DenseCurves(nn.Module):
    """One learned curve per dense input, added to the logit: piecewise linear between `knots`
    + 1 evenly spaced points over [-limit, limit] (inputs are standardized; beyond, flat).

    Counts act on clicks through saturating, often non-monotone curves. The deep tower can bend
    a feature too, but it has to find the bend among all its inputs, and while it does it also
    fits noise: on the synthetic data (bench.learning_curve) it left an error on the dense
    features that the curves remove. A few numbers per feature, each fitted from many rows,
    need no prior.
    """

    def __init__(self, features: int, knots: int = 16, limit: float = 3.0):
        super().__init__()
        self.limit = limit
        self.values = nn.Parameter(torch.zeros(features, knots + 1))  # the curve at each knot

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        """[batch]: the sum of every input's curve at its value."""
        knots = self.values.shape[1] - 1
        position = (dense.clamp(-self.limit, self.limit) + self.limit) * (knots / (2 * self.limit))
        left = position.floor().clamp(max=knots - 1)
        fraction = (position - left).T  # [features, batch]
        index = left.long().T
        lower, upper = self.values.gather(1, index), self.values.gather(1, index + 1)
        return (lower + (upper - lower) * fraction).sum(0)


def mlp(sizes: list[int], dropout: float = 0.0, last_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if last_activation or index < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class CrossLayer(nn.Module):
    """x_{l+1} = x_0 * (W x_l + b) + x_l: explicit feature crosses of growing degree."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class DCNv2(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = SharedEmbedding(config.cardinalities, config.embedding_dim)
        width = config.dense_features + len(config.cardinalities) * config.embedding_dim
        self.cross = nn.ModuleList(CrossLayer(width) for _ in range(config.cross_layers))
        self.deep = mlp([width, *config.deep_layers], config.dropout)
        self.head = nn.Linear(width + ([width, *config.deep_layers][-1]), 1)
        self.first_order = FirstOrderWeights(config.cardinalities) if config.first_order else None
        self.curves = DenseCurves(config.dense_features) if config.dense_curves else None
        self.gates = (
            FeatureGates(config.dense_features + len(config.cardinalities))
            if config.feature_gates
            else None
        )

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits of shape [batch]; apply a sigmoid for click probabilities."""
        embedded = self.embedding(ids)
        if self.gates is not None:
            x0 = self.gates(dense, embedded)
        else:
            x0 = torch.cat([dense, embedded.flatten(1)], dim=1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        logits = self.head(torch.cat([x, self.deep(x0)], dim=1)).squeeze(1)
        if self.first_order is not None:
            logits = logits + self.first_order.logit(ids)
        if self.curves is not None:
            logits = logits + self.curves(dense)
        return logits


class DLRM(nn.Module):
    """Dense features through a bottom MLP to one more feature vector; the logit comes from a top
    MLP over that vector and the dot products of every pair of feature vectors."""

    pair_rows: torch.Tensor  # upper-triangle index pairs of the feature vectors
    pair_cols: torch.Tensor

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        dim = config.embedding_dim
        self.embedding = SharedEmbedding(config.cardinalities, dim)
        self.bottom = mlp([config.dense_features, 64, dim], config.dropout)
        vectors = len(config.cardinalities) + 1
        rows, cols = torch.triu_indices(vectors, vectors, offset=1)
        self.register_buffer("pair_rows", rows, persistent=False)
        self.register_buffer("pair_cols", cols, persistent=False)
        self.top = mlp([dim + len(rows), *config.deep_layers, 1], config.dropout, False)

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        bottom = self.bottom(dense)
        vectors = torch.cat([bottom.unsqueeze(1), self.embedding(ids)], dim=1)
        dots = torch.bmm(vectors, vectors.transpose(1, 2))[:, self.pair_rows, self.pair_cols]
        return self.top(torch.cat([bottom, dots], dim=1)).squeeze(1)


class LogisticRegression(nn.Module):
    """logit = bias + sum of one weight per id + a weight per dense feature."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.weights = SharedEmbedding(config.cardinalities, 1, std=0.0)
        self.dense = nn.Linear(config.dense_features, 1)

    def forward(self, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return self.dense(dense).squeeze(1) + self.weights(ids).sum(dim=(1, 2))
