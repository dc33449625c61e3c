"""What the trained model's feature gates say, as metadata: which features it kept in its
crosses and deep tower, and which it found carry nothing (ranking.model.FeatureGates)."""

from ml_assets.defs.metadata import png_markdown, table


def feature_gate_metadata(weights: dict, feature_names: list[str]) -> dict:
    """`weights`: the model's state dict; `feature_names`: its dense inputs, then its
    categorical features. Empty when the model has no gates or trained them under no penalty
    (all still exactly 1)."""
    from ml_assets.ranking.model import CLOSED_GATE, open_gates
    from ml_assets.ranking.plots import feature_gates_png

    is_open = open_gates(weights)
    if is_open is None:
        return {}
    gates = [float(v) for v in weights["gates.values"]]
    rows = [
        {"feature": name, "gate": gate, "open": flag}
        for name, gate, flag in zip(feature_names, gates, is_open, strict=True)
    ]
    return {
        "feature_gates": table(rows, ["feature", "gate", "open"]),
        "features_open": sum(row["open"] for row in rows),
        "feature_gates_plot": png_markdown(
            feature_gates_png(feature_names, gates, CLOSED_GATE), "feature gates"
        ),
    }
