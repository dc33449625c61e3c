import math

import polars as pl
import pytest

from ml_assets.ranking.encoding import encode
from ml_assets.ranking.errors import DataValidationError
from ml_assets.ranking.features import transform
from ml_assets.ranking.schema import MISSING_TOKEN, FeatureSchema
from ml_assets.ranking.vocabulary import Vocabulary, fit_vocabulary

SCHEMA = FeatureSchema(dense=("n",), categorical=("ad",), label="y")


def test_transform_log1p_clips_negatives_and_fills_nulls():
    raw = pl.DataFrame({"y": [1, 0, 0], "n": [3.0, None, -2.0], "ad": ["x", None, "z"]})
    out = transform(raw, SCHEMA)
    assert out["n"].to_list() == pytest.approx([math.log1p(3.0), 0.0, 0.0])
    assert out["ad"].to_list() == ["x", MISSING_TOKEN, "z"]
    assert out["y"].dtype == pl.Float32


def test_transform_serves_rows_without_a_label():
    out = transform(pl.DataFrame({"n": [1.0], "ad": ["x"]}), SCHEMA)
    assert out.columns == ["n", "ad"]


def write_days(tmp_path, days):
    files = []
    for i, ads in enumerate(days):
        frame = pl.DataFrame(
            {"y": [1.0] * len(ads), "n": [float(j) for j in range(len(ads))], "ad": ads}
        )
        files.append(tmp_path / f"{i}.parquet")
        frame.write_parquet(files[-1])
    return files


def test_vocabulary_keeps_frequent_values_most_frequent_first(tmp_path):
    files = write_days(tmp_path, [["a", "a", "b", "c"], ["a", "b", "d", "b"]])
    vocabulary = fit_vocabulary(
        files, SCHEMA, train_dates=["d1", "d2"], holdout_dates=["d3"], min_count=2, max_size=10
    )
    assert vocabulary.values["ad"] == ["a", "b"]  # 3 each; ties broken by value
    assert vocabulary.cardinality("ad") == 3  # plus the out-of-vocabulary id 0
    assert vocabulary.rows == 8
    assert vocabulary.coverage["ad"] == pytest.approx(6 / 8)
    capped = fit_vocabulary(
        files, SCHEMA, train_dates=[], holdout_dates=[], min_count=1, max_size=1
    )
    assert capped.values["ad"] == ["a"]


def test_encode_maps_unknown_values_to_zero_and_standardizes(tmp_path):
    files = write_days(tmp_path, [["a", "a", "b", "b"]])
    vocabulary = fit_vocabulary(
        files, SCHEMA, train_dates=[], holdout_dates=[], min_count=1, max_size=10
    )
    encoded = encode(
        pl.DataFrame({"y": [0.0, 1.0], "n": [1.5, 3.0], "ad": ["b", "new"]}), vocabulary
    )
    assert encoded["ad"].to_list() == [2, 0]
    assert encoded["ad"].dtype == pl.Int32
    assert encoded["n"][0] == pytest.approx(0.0)  # the mean of 0,1,2,3


def test_vocabulary_round_trip_and_missing_feature(tmp_path):
    files = write_days(tmp_path, [["a", "b"]])
    vocabulary = fit_vocabulary(
        files, SCHEMA, train_dates=["x"], holdout_dates=["y"], min_count=1, max_size=10
    )
    vocabulary.save(tmp_path / "v.json")
    loaded = Vocabulary.load(tmp_path / "v.json")
    assert loaded.values == vocabulary.values and loaded.holdout_dates == ["y"]
    wider = FeatureSchema(dense=("n",), categorical=("ad", "site"), label="y")
    with pytest.raises(DataValidationError) as error:
        loaded.require_features(wider)
    assert error.value.column == "site"
    assert "re-materialize feature_vocabulary" in error.value.fix
