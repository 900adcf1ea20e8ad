import zipfile

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
    with pytest.raises(ValueError, match=r"health\.csv, line 1: expected column 'age_45' in the header \(line 1\) "
                                         r"of the Heritage Health health\.csv, found no column 'age_45'"):
        load_health(tmp_path)


def test_text_feature_column_is_rejected(tmp_path):
    _tiny_health(tmp_path, note=["1"] * 5 + ["x"] * 35)
    with pytest.raises(ValueError, match=r"health\.csv, line 7: expected a number in column 'note', got 'x'"):
        load_health(tmp_path)


def test_row_without_exactly_one_age_bucket_names_its_line(tmp_path):
    frame = _tiny_health(tmp_path)
    frame.loc[4, "age_85"] = 1  # row 4 (line 6) already has age_45
    frame.to_csv(tmp_path / "health" / "health.csv", index=False)
    with pytest.raises(ValueError, match=r"health\.csv, line 6: expected exactly one of the age columns age_05 \.\.\. "
                                         r"age_85 to be 1, found 2 \(1 such row\(s\) of Y3\)"):
        load_health(tmp_path)


# --- malformed copies of the real file: its header and first rows ----------------------------------


@pytest.fixture(scope="module")
def real_lines(data_dir):
    """The header and the first 30 rows of the shared health.csv.zip, as text lines."""
    with zipfile.ZipFile(data_dir / "health" / "health.csv.zip") as archive, archive.open("health.csv") as handle:
        return [line.decode() for _, line in zip(range(31), handle)]


def _write_health(folder, lines, zipped=False):
    (folder / "health").mkdir(parents=True)
    text = "".join(lines)
    if zipped:
        with zipfile.ZipFile(folder / "health" / "health.csv.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("health.csv", text)
    else:
        (folder / "health" / "health.csv").write_text(text)


def _edit(lines, number, transform):
    lines = list(lines)
    lines[number - 1] = transform(lines[number - 1])
    return lines


@pytest.mark.parametrize(
    "number, transform, message",
    [
        (5, lambda line: line.rsplit(",", 3)[0] + "\n",
         r"health\.csv, line 5: expected 143 comma-separated fields \(as in the header on line 1\), found 140 "
         r"\(a row cut short or a missing value\)"),
        (7, lambda line: line.replace(",Y3,", ",Y3,,", 1),
         r"health\.csv, line 7: expected 143 comma-separated fields .*found 144 \(an extra field"),
        (2, lambda line: line.rstrip("\n") + ",0\n", r"health\.csv, line 2: expected 143 .*found 144"),
        (9, lambda line: line.replace(",", ";"), r"health\.csv, line 9: .*found 1 \(the line looks ';'-separated\)"),
        (4, lambda line: line.replace(",0,1,", ",0,one,", 1),
         r"health\.csv, line 4: expected a number in column 'trainset', got 'one'"),
        (6, lambda line: line.replace(",0,1,", ",,1,", 1),
         r"health\.csv, line 6: expected a value in column 'ClaimsTruncated', found an empty field"),
    ],
)
def test_malformed_real_rows_name_file_line_and_expectation(tmp_path, real_lines, number, transform, message):
    _write_health(tmp_path, _edit(real_lines, number, transform))
    with pytest.raises(ValueError, match=message):
        load_health(tmp_path)


def test_file_cut_mid_line_in_a_zip(tmp_path, real_lines):
    lines = list(real_lines)
    lines[-1] = lines[-1][: len(lines[-1]) // 2]  # the download stopped half-way through line 31
    _write_health(tmp_path, lines, zipped=True)
    with pytest.raises(ValueError, match=r"health\.csv\.zip, line 31: expected 143 comma-separated fields .*cut short"):
        load_health(tmp_path)


def test_wrong_delimiter_and_missing_columns_in_the_header(tmp_path, real_lines):
    _write_health(tmp_path / "semicolon", [line.replace(",", ";") for line in real_lines])
    with pytest.raises(ValueError, match=r"health\.csv, line 1: expected comma-separated column names .*"
                                         r"line 1 looks ';'-separated: 'MemberID_t;YEAR_t;"):
        load_health(tmp_path / "semicolon")
    renamed = _edit(real_lines, 1, lambda line: line.replace("YEAR_t", "YEAR").replace("age_65", "age65"))
    _write_health(tmp_path / "renamed", renamed)
    with pytest.raises(ValueError, match=r"health\.csv, line 1: expected columns 'YEAR_t', 'age_65' in the header "
                                         r"\(line 1\) of the Heritage Health health\.csv"):
        load_health(tmp_path / "renamed")
