"""Heritage Health: predict a positive Charlson comorbidity index, with age group as the sensitive attribute."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..core.datadir import dataset_dir
from .preprocess import TabularDataset, make_dataset, seeded_partition

__all__ = ["load_health", "HEALTH_AGE_COLUMNS"]

HEALTH_AGE_COLUMNS = [f"age_{decade}5" for decade in range(9)]
"""The nine age-bucket indicator columns: age_05 (0-9 years) ... age_85 (80+)."""
_ID_COLUMNS = ["MemberID_t", "YEAR_t", "trainset"]
_MISSING_FLAGS = ["age_MISS", "sexMISS"]
_REQUIRED = ["YEAR_t", "CharlsonIndexI_max", *HEALTH_AGE_COLUMNS]


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
    """
    _, (path,) = dataset_dir("health", data_dir, [["health.csv"], ["health.csv.zip"]])
    frame = pd.read_csv(path)
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; is this the Heritage Health health.csv?")
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
            f"{path}: {int(bad.sum())} row(s) of {year} do not have exactly one age bucket set "
            f"(first: MemberID_t {frame.iloc[row].get('MemberID_t', '?')})"
        )
    groups = ages.argmax(axis=1).astype(np.int64)
    labels = (frame["CharlsonIndexI_max"].to_numpy() > 0).astype(np.float32)

    dropped = [c for c in frame.columns if c in _ID_COLUMNS or c in _MISSING_FLAGS or _leaks_label(c)]
    features = frame.drop(columns=dropped + HEALTH_AGE_COLUMNS).copy()
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise ValueError(f"{path}: expected numeric feature columns, got non-numeric {non_numeric}")
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
