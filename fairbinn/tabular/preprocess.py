"""Shared preprocessing of tabular datasets: splits, scaling and the dataset container."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.data import Split

__all__ = ["TabularDataset", "seeded_partition", "standardize", "make_dataset"]

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
                "examples": len(split),
                "positive_rate": round(float(split.y.mean()), 4),
                "group_shares": [round(c / len(split), 4) for c in counts],
            }
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


def standardize(train: pd.DataFrame, *others: pd.DataFrame) -> list[pd.DataFrame]:
    """Z-score every non-binary column with the mean and std of ``train`` only.

    Columns holding only 0 and 1 in ``train`` (one-hot and indicator columns)
    are left as they are; a constant column is centred but not divided.
    Returns the transformed ``train`` followed by ``others``.
    """
    binary = train.isin([0, 1]).all()
    scaled = binary.index[~binary]
    mean = train[scaled].mean()
    std = train[scaled].std(ddof=0).replace(0.0, 1.0)
    out = []
    for frame in (train, *others):
        frame = frame.astype(np.float64)
        frame[scaled] = (frame[scaled] - mean) / std
        out.append(frame)
    return out


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
    """Standardise the "train" / "val" / "test" frames on "train" and wrap everything up."""
    keys = ("train", "val", "test")
    scaled = dict(zip(keys, standardize(*(features[k] for k in keys))))
    splits = {
        k: Split.from_arrays(scaled[k].to_numpy(np.float32), labels[k], groups[k], name=k) for k in keys
    }
    dataset = TabularDataset(
        name=name,
        feature_names=list(features["train"].columns),
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
