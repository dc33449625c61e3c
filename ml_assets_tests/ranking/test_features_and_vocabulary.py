import json
import math

import polars as pl
import pytest

from ml_assets.errors import DataValidationError
from ml_assets.ranking.encoding import encode
from ml_assets.ranking.features import transform
from ml_assets.ranking.schema import MISSING_TOKEN, FeatureSchema
from ml_assets.ranking.vocabulary import Vocabulary, fit_vocabulary

SCHEMA = FeatureSchema(dense=("n",), categorical=("ad",), label="y")


def test_transform_log1p_clips_negatives_and_keeps_dense_nulls():
    raw = pl.DataFrame({"y": [1, 0, 0], "n": [3.0, None, -2.0], "ad": ["x", None, "z"]})
    out = transform(raw, SCHEMA)
    # A missing count is not a zero count: the encoder flags it.
    assert out["n"].to_list() == [pytest.approx(math.log1p(3.0)), None, 0.0]
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
    assert vocabulary.counts["ad"] == [3, 3]
    # Embedding rows in table order: the OOV row counts the 2 rows of c and d.
    assert vocabulary.id_counts().tolist() == [2, 3, 3]
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
    assert loaded.clicks == 2 and loaded.base_rate == 1.0  # both rows were clicks
    wider = FeatureSchema(dense=("n",), categorical=("ad", "site"), label="y")
    with pytest.raises(DataValidationError) as error:
        loaded.require_features(wider)
    assert error.value.column == "site"
    assert "re-materialize feature_vocabulary" in error.value.fix


def test_encode_flags_missing_dense_values_and_fills_them_with_the_mean(tmp_path):
    frame = pl.DataFrame({"y": [1.0, 0.0, 1.0, 0.0], "n": [0.0, 2.0, None, 4.0], "ad": ["a"] * 4})
    frame.write_parquet(tmp_path / "d.parquet")
    vocabulary = fit_vocabulary(
        [tmp_path / "d.parquet"], SCHEMA, train_dates=[], holdout_dates=[], min_count=1,
        max_size=10,
    )  # fmt: skip
    assert vocabulary.dense_mean["n"] == pytest.approx(2.0)  # of the present values only
    assert vocabulary.base_rate == 0.5  # where the model's output starts
    assert vocabulary.dense_inputs == ("n", "n__missing")
    encoded = encode(frame, vocabulary)
    assert encoded["n__missing"].to_list() == [0.0, 0.0, 1.0, 0.0]
    assert encoded["n"][2] == 0.0 and encoded["n"][0] < 0  # a zero count differs from missing


def test_vocabularies_from_before_missing_flags_encode_as_their_models_were_trained(tmp_path):
    files = write_days(tmp_path, [["a", "b"]])
    vocabulary = fit_vocabulary(
        files, SCHEMA, train_dates=[], holdout_dates=[], min_count=1, max_size=10
    )
    vocabulary.save(tmp_path / "v.json")
    payload = json.loads((tmp_path / "v.json").read_text())
    for key in ("dense_missing_flags", "counts", "clicks"):
        del payload[key]
    (tmp_path / "v.json").write_text(json.dumps(payload))
    legacy = Vocabulary.load(tmp_path / "v.json")
    assert legacy.dense_inputs == ("n",) and legacy.id_counts() is None
    assert legacy.base_rate is None  # its model starts where it always did
    encoded = encode(pl.DataFrame({"n": [None, 0.0], "ad": ["a", "a"]}), legacy)
    assert encoded.columns == ["n", "ad"]
    assert encoded["n"][0] == encoded["n"][1]  # missing was log1p(0) for those models
