"""Shared preprocessing of tabular datasets: splits, scaling and the dataset container."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.data import Split
from ..core.display import plain

__all__ = ["TabularDataset", "TabularEncoder", "seeded_partition", "make_dataset"]

logger = logging.getLogger("fairbinn")


@dataclass(frozen=True)
class TabularDataset:
    """A tabular benchmark: train / validation / test splits plus their description.

    Attributes
    ----------
    name : str
    train, val, test : Split
        Features ``(n, d)`` float32, labels ``(n,)`` 0/1, groups ``(n,)`` int64.
    feature_names : list of str
        The ``d`` column names, in order.
    group_names : list of str
        ``group_names[k]`` is the value of the sensitive attribute for group ``k``.
    sensitive_attribute, label : str
        What the groups and the labels are.
    notes : dict
        What preprocessing did to the raw files (rows dropped and why, ...).
    """

    name: str
    train: Split
    val: Split
    test: Split
    feature_names: list[str]
    group_names: list[str]
    sensitive_attribute: str
    label: str
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    def summary(self) -> dict[str, Any]:
        """Sizes, positive rates and group shares of each split, as plain values."""
        out: dict[str, Any] = {
            "name": self.name,
            "num_features": self.num_features,
            "label": self.label,
            "sensitive_attribute": self.sensitive_attribute,
            "groups": self.group_names,
        }
        for split in (self.train, self.val, self.test):
            counts = np.bincount(split.s.numpy(), minlength=self.num_groups)
            out[split.name] = {
                "rows": len(split),
                "positive_rate": round(float(split.y.mean()), 4),
                "group_shares": [round(c / len(split), 4) for c in counts],
            }
        out["examples"] = {split.name: len(split) for split in (self.train, self.val, self.test)}
        out["notes"] = self.notes
        return out


def seeded_partition(n: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut off one part per fraction; the rest comes last.

    ``seeded_partition(100, [0.2], 0)`` returns ``[20 indices, 80 indices]``.
    Each part has ``round(fraction * n)`` rows; every part must be non-empty.
    """
    if any(not 0 < f < 1 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"split fractions must lie in (0, 1) and sum to less than 1, got {list(fractions)}")
    order = np.random.default_rng(seed).permutation(n)
    parts, start = [], 0
    for fraction in fractions:
        size = int(round(fraction * n))
        parts.append(order[start : start + size])
        start += size
    parts.append(order[start:])
    if any(len(p) == 0 for p in parts):
        raise ValueError(f"{n} rows are too few to split into fractions {list(fractions)}")
    return parts


class TabularEncoder:
    """Encodes a table's columns as features with statistics of the rows it is fitted on (training rows).

    The one rule of ``load_csv`` / ``from_dataframe``, ``FairBiNNClassifier``
    and (for scaling) the Adult and Health loaders: a bool or non-numeric
    column becomes one 0/1 indicator ``"<column>_<value>"`` per value seen in
    ``fit`` (sorted as text; an unseen value encodes as all zeros, or is an
    error with ``handle_unknown="error"``), after the numeric columns as in
    ``pandas.get_dummies``; then every column that is not only 0 and 1 in the
    fitted rows is z-scored with their mean and standard deviation
    (``ddof=0``; a constant column is only centred). Missing or infinite
    values are errors.

    Parameters
    ----------
    handle_unknown : {"ignore", "error"}, default "ignore"

    Attributes
    ----------
    columns_ : list
        The input columns of ``fit``; ``transform`` needs them.
    categories_ : dict of column -> pandas.Index
        Each categorical column's values, in indicator order.
    feature_names_ : list of str
        The ``d`` output columns, in order.
    mean_, scale_ : pandas.Series
        Statistics of the z-scored output columns.
    """

    def __init__(self, handle_unknown: str = "ignore") -> None:
        if handle_unknown not in ("error", "ignore"):
            raise ValueError(f"handle_unknown must be 'error' or 'ignore', got {handle_unknown!r}")
        self.handle_unknown = handle_unknown

    def fit(self, frame: pd.DataFrame) -> "TabularEncoder":
        """Learn categories and scaling statistics from ``frame`` ``(n, columns)``; returns ``self``."""
        self.columns_ = list(frame.columns)
        self.categories_ = {
            c: pd.Index(sorted(frame[c].dropna().unique(), key=str)) for c in frame.columns
            if pd.api.types.is_bool_dtype(frame[c].dtype) or not pd.api.types.is_numeric_dtype(frame[c].dtype)
        }
        table = self._indicators(frame)
        binary = table.isin([0, 1]).all()
        self.mean_ = table.loc[:, ~binary].mean()
        self.scale_ = table.loc[:, ~binary].std(ddof=0).replace(0.0, 1.0)
        self.feature_names_ = [str(c) for c in table.columns]
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode the rows of ``frame`` (it needs the columns of ``fit``; others are ignored).

        Returns
        -------
        ndarray of shape (n, len(feature_names_)), float32
        """
        table = self._indicators(frame)
        scaled = self.mean_.index
        table[scaled] = (table[scaled] - self.mean_) / self.scale_
        return table.to_numpy(np.float32)

    def _indicators(self, frame: pd.DataFrame) -> pd.DataFrame:
        numeric = [c for c in self.columns_ if c not in self.categories_]
        blocks = [frame[numeric].astype(np.float64)]
        finite = np.isfinite(blocks[0].to_numpy()).all(axis=0)
        if not finite.all():
            raise ValueError(f"column {numeric[int(np.argmin(finite))]!r} has missing (NaN) or infinite values")
        for column, known in self.categories_.items():
            values = frame[column]
            if values.isna().any():
                raise ValueError(f"column {column!r} has missing values")
            codes = known.get_indexer(values)
            if (codes < 0).any() and self.handle_unknown == "error":
                unseen = values[codes < 0].iloc[0]
                raise ValueError(f"column {column!r} has category {plain(unseen)!r}, unseen in fit")
            indicators = np.vstack([np.eye(len(known)), np.zeros(len(known))])[codes]  # code -1: zeros
            blocks.append(pd.DataFrame(indicators, index=frame.index, columns=[f"{column}_{v}" for v in known]))
        return pd.concat(blocks, axis=1)

    @staticmethod
    def groups(frame: pd.DataFrame) -> tuple[np.ndarray, list[str], list[Any]]:
        """Groups of ``frame``'s rows (one column per sensitive attribute): every observed combination.

        A group is named by its values as text joined by ``" & "``
        (``"Female & White"``); groups are numbered in the order of the names.

        Returns
        -------
        codes : ndarray of shape (n,), int64
        names : list of str
        values : list
            Each group's value, a tuple of values for several columns.
        """
        keys = frame.astype(str).agg(" & ".join, axis=1)
        names = sorted(keys.unique())
        first = ~keys.duplicated().to_numpy()
        rows = dict(zip(keys[first], frame[first].itertuples(index=False, name=None)))
        values = [rows[n] if frame.shape[1] > 1 else rows[n][0] for n in names]
        return keys.map({n: i for i, n in enumerate(names)}).to_numpy(np.int64, copy=True), names, values


def make_dataset(
    name: str,
    features: dict[str, pd.DataFrame],
    labels: dict[str, np.ndarray],
    groups: dict[str, np.ndarray],
    group_names: list[str],
    sensitive_attribute: str,
    label: str,
    notes: dict[str, Any],
) -> TabularDataset:
    """Encode the "train" / "val" / "test" frames with a :class:`TabularEncoder` fitted on "train" and wrap up."""
    encoder = TabularEncoder().fit(features["train"])
    if encoder.categories_:
        notes = {**notes, "one_hot_columns": list(encoder.categories_)}
    splits = {k: Split.from_arrays(encoder.transform(features[k]), labels[k], groups[k], name=k)
              for k in ("train", "val", "test")}
    dataset = TabularDataset(
        name=name,
        feature_names=encoder.feature_names_,
        group_names=group_names,
        sensitive_attribute=sensitive_attribute,
        label=label,
        notes=notes,
        **splits,
    )
    logger.info(
        "%s: %d features; %d train / %d val / %d test rows; %s",
        name, dataset.num_features, len(dataset.train), len(dataset.val), len(dataset.test), notes,
    )
    return dataset
