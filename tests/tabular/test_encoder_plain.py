"""A fitted TabularEncoder as plain data: to_dict / from_dict, and raw rows to features and groups."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import fairbinn
from fairbinn.tabular import TabularEncoder


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x": rng.normal(size=n), "n": rng.integers(0, 5, n), "flag": rng.integers(0, 2, n),
        "c": rng.choice(["p", "q", "r"], n), "on": rng.choice([True, False], n),
        "k": pd.Categorical(rng.choice([10, 20, 30], n)), "mixed": rng.choice(np.array(["u", 7], dtype=object), n),
        "sex": rng.choice(["f", "m"], n), "race": rng.choice(["a", "b", "c"], n),
    })
    frame["y"] = (frame["x"] + (frame["sex"] == "m") > 0.5).astype(int)
    return frame


def test_round_trip_encodes_raw_rows_identically():
    frame = _frame()
    data = fairbinn.from_dataframe(frame, "y", ["sex", "race"])
    encoder = data.encoder
    assert isinstance(encoder, TabularEncoder) and encoder.feature_names_ == data.feature_names
    stored = json.loads(json.dumps(encoder.to_dict()))  # plain JSON data
    rebuilt = TabularEncoder.from_dict(stored)
    assert rebuilt.to_dict() == encoder.to_dict() == stored
    assert stored["scaled"][0][0] == "x" and [c for c, _, _ in stored["scaled"]] == ["x", "n"]
    assert stored["categories"][2] == ["k", [10, 20, 30]] and stored["group_columns"] == ["sex", "race"]

    raw = frame.drop(columns="y").copy()
    raw.loc[:9, "c"] = "unseen"  # all-zero indicators
    raw.loc[10:19, "x"] *= 1000.0
    np.testing.assert_array_equal(rebuilt.transform(raw), encoder.transform(raw))
    assert not rebuilt.transform(raw)[:10, [i for i, f in enumerate(data.feature_names) if f.startswith("c_")]].any()
    # the raw training rows give exactly the training split, features and groups
    train_rows = fairbinn.tabular.preprocess.seeded_partition(200, [0.2, 0.2], 0)[2]
    train = frame.iloc[train_rows]
    assert torch.equal(torch.from_numpy(rebuilt.transform(train)), data.train.x)
    assert torch.equal(torch.from_numpy(rebuilt.transform_groups(train)), data.train.s)
    assert rebuilt.group_names_ == data.group_names and len(data.group_names) == 6
    np.testing.assert_array_equal(rebuilt.transform_groups(raw), encoder.transform_groups(raw))


def test_transform_groups_errors():
    encoder = TabularEncoder().fit(pd.DataFrame({"x": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="has no sensitive groups; call set_groups first"):
        encoder.transform_groups(pd.DataFrame({"g": ["a"]}))
    encoder.set_groups(["g", "h"], ["a & 0", "b & 1"])
    np.testing.assert_array_equal(encoder.transform_groups(pd.DataFrame({"g": ["b", "a"], "h": [1, 0]})), [1, 0])
    with pytest.raises(ValueError, match=r"^group 'a & 1' of column\(s\) \['g', 'h'\] is not one of the fitted groups "
                                         r"\['a & 0', 'b & 1'\] \(1 such row\(s\)\)$"):
        encoder.transform_groups(pd.DataFrame({"g": ["a", "b"], "h": [1, 1]}))
    with pytest.raises(ValueError, match=r"sensitive column\(s\) \['h'\] not in the frame"):
        encoder.transform_groups(pd.DataFrame({"g": ["a"]}))
    with pytest.raises(ValueError, match=r"have missing values in 1 of 2 rows"):
        encoder.transform_groups(pd.DataFrame({"g": ["a", None], "h": [0, 0]}))


def test_estimator_encoder_round_trip():
    pytest.importorskip("sklearn")
    frame = _frame(120, seed=1)
    X, y = frame.drop(columns="y"), frame["y"]
    model = fairbinn.FairBiNNClassifier(strategy="erm", epochs=1, sensitive="sex", keep_sensitive=False).fit(X, y)
    rebuilt = TabularEncoder.from_dict(json.loads(json.dumps(model.encoder_.to_dict())))
    assert rebuilt.handle_unknown == "error" and rebuilt.group_names_ == ["f", "m"]
    np.testing.assert_array_equal(rebuilt.transform(X), model.encoder_.transform(X))
    np.testing.assert_array_equal(rebuilt.transform_groups(X), (X["sex"] == "m").to_numpy(np.int64))
    array_model = fairbinn.FairBiNNClassifier(strategy="erm", epochs=1).fit(X[["x", "n"]].to_numpy(), y)
    stored = array_model.encoder_.to_dict()
    assert stored["columns"] == [0, 1] and stored["group_columns"] is None
    rebuilt = TabularEncoder.from_dict(json.loads(json.dumps(stored)))
    columns = pd.DataFrame(X[["x", "n"]].to_numpy())
    np.testing.assert_array_equal(rebuilt.transform(columns), array_model.encoder_.transform(columns))


def test_unfitted_and_non_plain_values_are_errors():
    with pytest.raises(ValueError, match="not fitted; call fit first"):
        TabularEncoder().to_dict()
    dates = TabularEncoder().fit(pd.DataFrame({"d": pd.to_datetime(["2020-01-01", "2021-01-01"])}))
    with pytest.raises(ValueError, match=r"category of column 'd' Timestamp\('2020-01-01 00:00:00'\) \(Timestamp\) "
                                         "cannot be stored as plain data"):
        dates.to_dict()


@pytest.mark.parametrize("change, message", [
    (lambda d: [], "expected the dict of TabularEncoder.to_dict(), got list"),
    (lambda d: {**d, "format": "other"}, "'format' must be 'fairbinn.TabularEncoder', got 'other'"),
    (lambda d: {**d, "version": 2}, "unsupported version 2"),
    (lambda d: {k: v for k, v in d.items() if k != "scaled"}, "missing key(s) ['scaled'], unknown key(s) []"),
    (lambda d: {**d, "extra": 1}, "missing key(s) [], unknown key(s) ['extra']"),
    (lambda d: {**d, "handle_unknown": "skip"}, "'handle_unknown' must be 'error' or 'ignore', got 'skip'"),
    (lambda d: {**d, "columns": "x"}, "'columns' must be a list, got str"),
    (lambda d: {**d, "columns": ["x", "x", "c"]}, "'columns' has repeated names"),
    (lambda d: {**d, "columns": ["x", None, "c"]}, "an entry of 'columns' None (NoneType) cannot be stored"),
    (lambda d: {**d, "categories": [["z", ["a"]]]}, "'categories' names column 'z' that is not in 'columns'"),
    (lambda d: {**d, "categories": [["c", ["a", "a"]]]}, "the categories of column 'c' repeat a value"),
    (lambda d: {**d, "categories": [["c"]]}, "each entry of 'categories' must be [column, [values]]"),
    (lambda d: {**d, "feature_names": ["x", "c_b", "c_a"]}, "'feature_names' ['x', 'c_b', 'c_a'] do not match"),
    (lambda d: {**d, "scaled": [["x", 0.0, 0.0]]}, "column 'x' needs a finite mean and a positive finite scale"),
    (lambda d: {**d, "scaled": [["x", float("nan"), 1.0]]}, "needs a finite mean"),
    (lambda d: {**d, "scaled": [["w", 0.0, 1.0]]}, "'scaled' names output column 'w' that is not an output column"),
    (lambda d: {**d, "scaled": [["x", 0.0]]}, "each entry of 'scaled' must be [column, mean, scale]"),
    (lambda d: {**d, "group_names": ["a"]}, "'group_columns' and 'group_names' must both be lists or both be None"),
    (lambda d: {**d, "group_columns": ["c"], "group_names": ["a", "a"]}, "group names must be distinct"),
])
def test_malformed_dict_is_a_clear_error(change, message):
    encoder = TabularEncoder().fit(pd.DataFrame({"x": [1.0, 2.0, 4.0], "c": ["a", "b", "a"]}))
    good = encoder.to_dict()
    assert good["feature_names"] == ["x", "c_a", "c_b"] and TabularEncoder.from_dict(good).to_dict() == good
    with pytest.raises(ValueError) as error:
        TabularEncoder.from_dict(change(good))
    assert str(error.value).startswith("TabularEncoder.from_dict: ") and message in str(error.value)
