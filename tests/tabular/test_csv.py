import math
import numpy as np
import pandas as pd
import pytest
import torch

import fairbinn
from fairbinn.cli import main
from fairbinn.tabular.preprocess import seeded_partition

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
           "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week", "native_country",
           "income"]


@pytest.fixture(scope="module")
def adult_csv(data_dir, tmp_path_factory):
    """2,000 rows of the real adult.data with a header row, '?' left as missing values."""
    frame = pd.read_csv(data_dir / "adult" / "adult.data", header=None, names=COLUMNS, skipinitialspace=True,
                        na_values="?", nrows=2000)
    path = tmp_path_factory.mktemp("csv") / "adult_sample.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_load_csv_with_one_sensitive_column(adult_csv):
    path, frame = adult_csv
    data = fairbinn.load_csv(path, label="income", sensitive="sex")
    complete = frame.notna().all(axis=1)
    assert data.notes["dropped_rows_with_missing_values"] == int((~complete).sum())
    assert len(data.train) + len(data.val) + len(data.test) == int(complete.sum())
    assert data.group_names == ["Female", "Male"] and data.notes["positive"] == "'>50K'"
    positives = (frame.loc[complete, "income"] == ">50K").mean()
    all_y = np.concatenate([s.y.numpy() for s in (data.train, data.val, data.test)])
    assert all_y.mean() == pytest.approx(positives)
    assert "sex_Male" in data.feature_names and "income" not in " ".join(data.feature_names)


def test_intersectional_groups_train(adult_csv):
    path, _ = adult_csv
    data = fairbinn.load_csv(path, label="income", sensitive=["sex", "race"], keep_sensitive=False)
    assert "Female & White" in data.group_names and len(data.group_names) > 4
    assert not any(name.startswith(("sex_", "race_")) for name in data.feature_names)
    result = fairbinn.run_tabular(data, strategy="lagrangian", eta=1.0, epochs=2, progress=False)
    assert result.test["accuracy"] > 0.7
    # some intersections of the 2,000-row sample have no test row: the gaps over all groups are undefined, and say why
    absent = [name for name in data.group_names if name not in set(data.group_names[i] for i in data.test.s.tolist())]
    assert absent and math.isnan(result.test["dp"])
    assert f"'{absent[0]}'" in result.undefined["test"]["dp"] and "no rows" in result.undefined["test"]["dp"]


def test_numeric_label_and_errors(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [0.1, 0.5, 0.9, 0.3] * 5, "score": [0, 1, 2, 1] * 5, "g": ["a", "b"] * 10}).to_csv(path, index=False)
    data = fairbinn.load_csv(path, "score", "g", positive="2", val_fraction=0.25, test_fraction=0.25)
    assert data.notes["positive"] == "2"
    with pytest.raises(ValueError, match=r"'score' has 3 distinct values 0, 1, 2; .* give positive="):
        fairbinn.load_csv(path, "score", "g")  # plain values, not np.int64(0)
    with pytest.raises(ValueError, match=r"t.csv: no column\(s\) \['sex'\]; it has \['x', 'score', 'g'\]"):
        fairbinn.load_csv(path, "score", "sex", positive=1)
    with pytest.raises(ValueError, match="positive='high' is not"):
        fairbinn.load_csv(path, "score", "g", positive="high")
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        fairbinn.load_csv(tmp_path / "nothing.csv", "score", "g")


def test_cli_trains_on_a_csv(adult_csv, capsys):
    path, _ = adult_csv
    code = main(["train", "--csv", str(path), "--label", "income", "--sensitive", "sex", "race",
                 "--mode", "erm", "lagrangian", "--eta", "1", "--epochs", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "adult_sample: test metrics" in out and "groups ['Female & Amer-Indian-Eskimo'" in out
    assert any(line.startswith("lagrangian (eta=1)") for line in out.splitlines())


@pytest.mark.parametrize("args, message", [
    (["--csv", "x.csv", "--label", "y"], "--csv needs --label COLUMN and --sensitive"),
    (["--csv", "x.csv", "--label", "y", "--sensitive", "g", "--data", "Adult"], "either --data or --csv"),
    (["--csv", "x.csv", "--label", "y", "--sensitive", "g", "--backbone", "gcn"], "--backbone does not apply to x.csv"),
    (["--data", "Adult", "--label", "y"], "--label does not apply to adult (tabular data); it is for csv data"),
])
def test_cli_csv_flag_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--no-progress", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_tabular_encoder_rule_by_hand():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 6.0], "flag": [0, 1, 1, 0], "c": ["b", "a", "b", "b"],
                          "on": [True, False, True, True]})
    encoder = fairbinn.tabular.TabularEncoder(handle_unknown="ignore").fit(train)
    assert encoder.feature_names_ == ["x", "flag", "c_a", "c_b", "on_False", "on_True"]
    z = (np.array([1.0, 2.0, 3.0, 6.0]) - 3.0) / np.sqrt(3.5)  # mean 3, variance (4 + 1 + 0 + 9) / 4
    expected = np.column_stack([z, [0, 1, 1, 0], [0, 1, 0, 0], [1, 0, 1, 1], [0, 1, 0, 0], [1, 0, 1, 1]])
    np.testing.assert_allclose(encoder.transform(train), expected, rtol=1e-6)
    new = pd.DataFrame({"x": [3.0], "flag": [2], "c": ["zz"], "on": [False]})  # unseen category: all zeros
    np.testing.assert_allclose(encoder.transform(new), [[0, 2, 0, 0, 1, 0]])
    with pytest.raises(ValueError, match=r"^column 'c' has category 'zz', unseen in fit$"):
        fairbinn.tabular.TabularEncoder(handle_unknown="error").fit(train).transform(new)
    with pytest.raises(ValueError, match="column 'x' has missing"):
        encoder.transform(new.assign(x=np.nan))
    codes, names, values = fairbinn.tabular.TabularEncoder.groups(train[["c", "flag"]])
    assert names == ["a & 1", "b & 0", "b & 1"] and values == [("a", 1), ("b", 0), ("b", 1)]
    assert list(codes) == [1, 0, 2, 1]


def test_from_dataframe_and_the_estimator_encode_alike():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "n": rng.integers(0, 5, 200), "flag": rng.integers(0, 2, 200),
                          "c": rng.choice(["p", "q", "r"], 200), "on": rng.choice([True, False], 200),
                          "sex": rng.choice(["f", "m"], 200), "race": rng.choice(["a", "b", "c"], 200)})
    frame["y"] = (frame["x"] + (frame["sex"] == "m") > 0.5).astype(int)
    data = fairbinn.from_dataframe(frame, "y", ["sex", "race"])
    test_rows, val_rows, train_rows = seeded_partition(200, [0.2, 0.2], 0)
    X, y = frame.drop(columns="y").iloc[train_rows], frame["y"].iloc[train_rows]
    model = fairbinn.FairBiNNClassifier(strategy="erm", epochs=1, sensitive=["sex", "race"]).fit(X, y)
    assert model.encoder_.feature_names_ == data.feature_names
    assert torch.equal(torch.from_numpy(model.encoder_.transform(X)), data.train.x)
    assert [" & ".join(g) for g in model.groups_] == data.group_names
    assert torch.equal(torch.from_numpy(fairbinn.tabular.TabularEncoder.groups(X[["sex", "race"]])[0]), data.train.s)
    # categories and statistics come from the training rows only
    changed = frame.copy()
    changed.loc[test_rows[:5], "c"] = "only-in-test"
    changed.loc[val_rows, "x"] *= 1000
    other = fairbinn.from_dataframe(changed, "y", ["sex", "race"])
    assert other.feature_names == data.feature_names and torch.equal(other.train.x, data.train.x)
    indicators = [i for i, name in enumerate(data.feature_names) if name.startswith("c_")]
    assert not other.test.x[:5, indicators].any() and other.test.x[5:, indicators].sum(axis=1).eq(1).all()
