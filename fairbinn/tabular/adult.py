"""UCI Adult (Census Income): predict income > 50K with sex as the sensitive attribute."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.datadir import DatasetSource, RemoteFile, dataset_dir
from .preprocess import TabularDataset, TabularEncoder, make_dataset, seeded_partition

__all__ = ["load_adult", "ADULT_COLUMNS", "ADULT_SOURCE"]

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]
_NUMERIC = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
_CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "native-country"]
_LABELS = {"<=50K": 0, ">50K": 1}
_SEX = ["Female", "Male"]
_UCI_ADULT = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
ADULT_SOURCE = DatasetSource("adult", "adult", (
    RemoteFile("adult.data", _UCI_ADULT + "adult.data", 3_974_305,
               "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d"),
    RemoteFile("adult.test", _UCI_ADULT + "adult.test", 2_003_153,
               "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05"),
    RemoteFile("adult.names", _UCI_ADULT + "adult.names", 5_229,
               "c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a"),
))
"""The UCI Machine Learning Repository's files (``fairbinn download adult``)."""


def _read_adult_file(path: Path) -> tuple[pd.DataFrame, int]:
    """Parse one UCI file; return the complete rows (with file line numbers as index) and the rows dropped for "?"."""
    lines = path.read_text(encoding="utf-8").splitlines()
    first = 1 if lines and lines[0].startswith("|") else 0  # adult.test opens with "|1x3 Cross validator"
    numbers, rows = [], []
    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        fields = line.count(",") + 1
        if fields != len(ADULT_COLUMNS):
            raise ValueError(
                f"{path}, line {number}: expected {len(ADULT_COLUMNS)} comma-separated fields "
                f"({', '.join(ADULT_COLUMNS)}), found {fields}"
            )
        numbers.append(number)
        rows.append(line)
    if not rows:
        raise ValueError(f"{path}: no data rows")
    raw = pd.read_csv(
        io.StringIO("\n".join(rows)), header=None, names=ADULT_COLUMNS, sep=",",
        skipinitialspace=True, dtype=str, keep_default_na=False,
    )
    raw.index = numbers  # 1-based line numbers, for error messages
    income = raw["income"].str.rstrip(".")
    unknown = ~income.isin(list(_LABELS))
    if unknown.any():
        line = raw.index[unknown][0]
        raise ValueError(f"{path}, line {line}: income must be <=50K or >50K, got {raw.at[line, 'income']!r}")
    for column in _NUMERIC + ["fnlwgt"]:
        values = pd.to_numeric(raw[column], errors="coerce")
        bad = values.isna() & (raw[column] != "?")
        if bad.any():
            line = raw.index[bad][0]
            raise ValueError(f"{path}, line {line}: {column} must be a number, got {raw.at[line, column]!r}")
    missing = (raw == "?").any(axis=1)
    rows = raw[~missing].copy()
    rows["income"] = income[~missing].map(_LABELS)
    for column in _NUMERIC:
        rows[column] = pd.to_numeric(rows[column])
    unknown_sex = ~rows["sex"].isin(_SEX)
    if unknown_sex.any():
        line = rows.index[unknown_sex][0]
        raise ValueError(f"{path}, line {line}: sex must be Female or Male, got {rows.at[line, 'sex']!r}")
    return rows, int(missing.sum())


def _encode(rows: pd.DataFrame, one_hot: TabularEncoder, include_sensitive: bool) -> pd.DataFrame:
    parts = [rows[_NUMERIC].astype(np.float64)]
    if include_sensitive:
        parts.append((rows["sex"] == "Male").astype(np.float64).rename("sex_Male"))
    parts.append(pd.DataFrame(one_hot.transform(rows), index=rows.index, columns=one_hot.feature_names_))
    return pd.concat(parts, axis=1)


def load_adult(
    data_dir: str | os.PathLike | None = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    include_sensitive: bool = True,
) -> TabularDataset:
    """Load UCI Adult from ``<data_dir>/adult/adult.data`` and ``adult.test``.

    The files are the canonical UCI ones: no header, ``", "`` separators,
    ``"?"`` for a missing value, and in ``adult.test`` a first line
    ``|1x3 Cross validator`` and labels ending in ``"."``.

    Preprocessing
    -------------
    * Rows with a missing value are dropped (2,399 of 32,561 in ``adult.data``
      and 1,221 of 16,281 in ``adult.test``); the counts are in ``notes``.
    * Label: income ``>50K``. Sensitive attribute: sex, groups
      ``["Female", "Male"]``.
    * Features: age, education-num, capital-gain, capital-loss and
      hours-per-week, z-scored with the training part's statistics; one-hot
      workclass, education, marital-status, occupation, relationship, race and
      native-country over the categories of ``adult.data`` (a category seen
      only in ``adult.test`` encodes as all zeros and is counted in
      ``notes``); with ``include_sensitive=True`` (the paper's setting) a
      ``sex_Male`` indicator. ``fnlwgt`` (a census sampling weight) is
      dropped. That is 102 features with the sensitive attribute, 101 without.
    * Splits: ``adult.test`` is the test split (15,060 rows); ``val_fraction``
      of ``adult.data`` is carved out with ``seed`` as the validation split
      (6,032 rows by default), the rest (24,130) is the training split.

    Parameters
    ----------
    data_dir : path, optional
        The data directory; defaults to ``$FAIRBINN_DATA``, then the user cache.
    val_fraction : float, default 0.2
    seed : int, default 0
        Seed of the train / validation shuffle.
    include_sensitive : bool, default True
        Keep the sensitive attribute among the features.
    """
    _, (train_path, test_path) = dataset_dir("adult", data_dir, [["adult.data", "adult.test"]])
    train_rows, train_missing = _read_adult_file(train_path)
    test_rows, test_missing = _read_adult_file(test_path)
    one_hot = TabularEncoder().fit(train_rows[_CATEGORICAL])  # categories of all of adult.data
    unseen_counts = {c: int((~test_rows[c].isin(one_hot.categories_[c])).sum()) for c in _CATEGORICAL}
    unseen = {c: n for c, n in unseen_counts.items() if n}
    val_idx, train_idx = seeded_partition(len(train_rows), [val_fraction], seed)
    frames = {
        "train": train_rows.iloc[train_idx],
        "val": train_rows.iloc[val_idx],
        "test": test_rows,
    }
    notes = {
        "dropped_rows_with_missing_values": {"adult.data": train_missing, "adult.test": test_missing},
        "test_values_unseen_in_training": unseen,
        "files": [str(train_path), str(test_path)],
    }
    return make_dataset(
        "adult",
        features={k: _encode(f, one_hot, include_sensitive) for k, f in frames.items()},
        labels={k: f["income"].to_numpy(np.float32) for k, f in frames.items()},
        groups={k: (f["sex"] == "Male").to_numpy(np.int64) for k, f in frames.items()},
        group_names=list(_SEX),
        sensitive_attribute="sex",
        label="income >50K",
        notes=notes,
    )
