import shutil

import pytest
import torch

from fairbinn.core.datadir import DataFilesNotFoundError
from fairbinn.tabular import load_adult


def test_real_files_shapes_counts_and_groups(adult):
    assert adult.notes["dropped_rows_with_missing_values"] == {"adult.data": 2399, "adult.test": 1221}
    assert (len(adult.train), len(adult.val), len(adult.test)) == (24130, 6032, 15060)
    assert adult.num_features == 102 and adult.train.x.shape == (24130, 102)
    assert adult.group_names == ["Female", "Male"]
    # the official test file: 3,700 of 15,060 complete rows earn >50K
    assert int(adult.test.y.sum()) == 3700
    # sex is the group and, in the paper's setting, also the feature sex_Male
    column = adult.feature_names.index("sex_Male")
    assert torch.equal(adult.test.x[:, column].long(), adult.test.s)
    assert int((adult.test.s == 0).sum()) == 4913  # women in the complete test rows
    assert "fnlwgt" not in adult.feature_names


def test_scaling_is_fitted_on_the_training_part_only(adult):
    numeric = [adult.feature_names.index(c) for c in ("age", "hours-per-week")]
    train = adult.train.x[:, numeric].double()
    assert torch.allclose(train.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert not torch.allclose(adult.test.x[:, numeric].double().mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-3)
    onehot = adult.feature_names.index("race_White")
    assert set(adult.test.x[:, onehot].unique().tolist()) == {0.0, 1.0}


def test_validation_split_is_seeded(data_dir, adult):
    again = load_adult(data_dir)
    assert torch.equal(again.val.x, adult.val.x)
    other = load_adult(data_dir, seed=1, val_fraction=0.1, include_sensitive=False)
    assert len(other.val) == 3016 and other.num_features == 101
    assert not torch.equal(other.val.y[:100], adult.val.y[:100])


@pytest.fixture
def adult_copy(tmp_path, data_dir):
    folder = tmp_path / "adult"
    folder.mkdir()
    for name in ("adult.data", "adult.test"):
        shutil.copy(data_dir / "adult" / name, folder / name)
    return tmp_path


def _edit_line(path, number, transform):
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = transform(lines[number - 1])
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    "transform, message",
    [
        (lambda line: line.rsplit(",", 3)[0] + "\n", "adult.data, line 5: expected 15 comma-separated fields"),
        (lambda line: line.replace("<=50K", "maybe"), "adult.data, line 5: income must be <=50K or >50K"),
        (lambda line: line.replace("39", "old", 1) if line.startswith("39") else "x" + line,
         "adult.data, line 5: age must be a number"),
        (lambda line: line.rstrip("\n") + ", extra\n", "adult.data, line 5: expected 15 comma-separated fields .* found 16"),
    ],
)
def test_malformed_file_errors_name_file_and_line(adult_copy, transform, message):
    _edit_line(adult_copy / "adult" / "adult.data", 5, transform)
    with pytest.raises(ValueError, match=message):
        load_adult(adult_copy)


def test_wrong_delimiter_is_reported(adult_copy):
    path = adult_copy / "adult" / "adult.test"
    path.write_text(path.read_text().replace(", ", ";"))
    with pytest.raises(ValueError, match="adult.test, line 2: expected 15 comma-separated fields"):
        load_adult(adult_copy)


def test_missing_files_name_expected_files_and_setting(tmp_path):
    (tmp_path / "adult").mkdir()
    (tmp_path / "adult" / "adult.data").write_text("")
    with pytest.raises(DataFilesNotFoundError, match=r"adult: expected adult.data \+ adult.test in .*adult \(data directory from the data_dir argument\)"):
        load_adult(tmp_path)
