"""The column layout every stage agrees on: one label, dense (numeric) and categorical features."""

from dataclasses import dataclass

LABEL = "label"
CRITEO_DENSE = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
# Categorical nulls become this token so "missing" is a value the model can learn.
MISSING_TOKEN = ""
# Dense nulls become this 0/1 column beside the standardized value (filled with the mean).
MISSING_FLAG_SUFFIX = "__missing"


@dataclass(frozen=True)
class FeatureSchema:
    """Names of the label, dense and categorical columns in the canonical (post-source) layout."""

    dense: tuple[str, ...] = CRITEO_DENSE
    categorical: tuple[str, ...] = CRITEO_CATEGORICAL
    label: str = LABEL

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.label, *self.dense, *self.categorical)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "dense": list(self.dense),
            "categorical": list(self.categorical),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSchema":
        return cls(dense=tuple(d["dense"]), categorical=tuple(d["categorical"]), label=d["label"])
