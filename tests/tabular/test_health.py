import numpy as np
import pandas as pd
import pytest
import torch

from fairbinn.tabular import load_health
from fairbinn.tabular.health import HEALTH_AGE_COLUMNS


@pytest.fixture(scope="module")
def health(data_dir):
    return load_health(data_dir)


def test_real_file_shape_label_and_groups(health):
    total = len(health.train) + len(health.val) + len(health.test)
    assert total == 55924
    assert (len(health.train), len(health.val), len(health.test)) == (33554, 11185, 11185)
    assert health.num_features == 124 and health.num_groups == 9
    positives = sum(int(split.y.sum()) for split in (health.train, health.val, health.test))
    assert positives == 18839  # CharlsonIndexI_max > 0 in Y3
    counts = sum(np.bincount(split.s.numpy(), minlength=9) for split in (health.train, health.val, health.test))
    assert counts.tolist() == [5440, 5235, 3688, 6091, 8414, 7173, 7480, 8948, 3455]


def test_label_derived_columns_are_not_features(health):
    assert not [c for c in health.feature_names if c.startswith("Charlson") or c.startswith("DaysInHospital")]
    assert "MemberID_t" not in health.feature_names and "trainset" not in health.feature_names
    assert not set(HEALTH_AGE_COLUMNS) & set(health.feature_names)
    assert "Charlson>0" in health.notes["dropped_columns"]
    # the ordinal age bucket (standardised) orders rows like the group index
    column = health.train.x[:, health.feature_names.index("age_bucket")]
    assert torch.equal(torch.argsort(column, stable=True), torch.argsort(health.train.s.float(), stable=True))


def _tiny_health(path, **extra):
    rng = np.random.default_rng(0)
    n = 40
    frame = pd.DataFrame({"MemberID_t": np.arange(n), "YEAR_t": ["Y3"] * 30 + ["Y2"] * 10,
                          "no_Claims": rng.integers(0, 5, n), "sexMALE": rng.integers(0, 2, n)})
    ages = np.zeros((n, 9), dtype=int)
    ages[np.arange(n), np.arange(n) % 9] = 1
    for i, column in enumerate(HEALTH_AGE_COLUMNS):
        frame[column] = ages[:, i]
    frame["age_MISS"] = 0
    frame.loc[3, "age_MISS"] = 1
    frame["CharlsonIndexI_max"] = rng.integers(0, 3, n)
    frame["CharlsonIndexI_ave"] = frame["CharlsonIndexI_max"] / 2
    frame["DaysInHospital"] = rng.integers(0, 4, n)
    for name, values in extra.items():
        frame[name] = values
    (path / "health").mkdir()
    frame.to_csv(path / "health" / "health.csv", index=False)
    return frame


def test_outcome_columns_and_flagged_rows_are_dropped(tmp_path):
    frame = _tiny_health(tmp_path)
    data = load_health(tmp_path, include_sensitive=False)
    assert data.feature_names == ["no_Claims", "sexMALE"]
    assert data.notes["dropped_rows_with_missing_age_or_sex"] == 1
    assert len(data.train) + len(data.val) + len(data.test) == 29
    y3 = frame[(frame.YEAR_t == "Y3") & (frame.age_MISS == 0)]
    assert sum(int(s.y.sum()) for s in (data.train, data.val, data.test)) == int((y3.CharlsonIndexI_max > 0).sum())


def test_bad_health_files_are_explained(tmp_path):
    _tiny_health(tmp_path)
    with pytest.raises(ValueError, match=r"no rows for year 'Y9'; the file has years \['Y2', 'Y3'\]"):
        load_health(tmp_path, year="Y9")
    path = tmp_path / "health" / "health.csv"
    pd.read_csv(path).drop(columns=["age_45"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['age_45'\]"):
        load_health(tmp_path)


def test_text_feature_column_is_rejected(tmp_path):
    _tiny_health(tmp_path, note=["x"] * 40)
    with pytest.raises(ValueError, match=r"non-numeric \['note'\]"):
        load_health(tmp_path)
