"""Bring your own table: a CSV file with a label column and sensitive column(s)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.display import plain, plain_list
from .preprocess import TabularDataset, TabularEncoder, make_dataset, seeded_partition

__all__ = ["load_csv", "from_dataframe"]


def load_csv(
    path: str | os.PathLike,
    label: str,
    sensitive: str | Sequence[str],
    *,
    sep: str = ",",
    **kwargs: Any,
) -> TabularDataset:
    """Read a CSV file (with a header row) into a :class:`TabularDataset`; see :func:`from_dataframe`.

    Errors name the file: a missing file, an unreadable one, or missing columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    try:
        frame = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as a CSV file with separator {sep!r}: {error}") from None
    return from_dataframe(frame, label, sensitive, name=kwargs.pop("name", path.stem), source=str(path), **kwargs)


def from_dataframe(
    frame: pd.DataFrame,
    label: str,
    sensitive: str | Sequence[str],
    *,
    positive: Any = None,
    features: Sequence[str] | None = None,
    keep_sensitive: bool = True,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    name: str = "table",
    source: str = "the DataFrame",
) -> TabularDataset:
    """A :class:`TabularDataset` from a DataFrame: one row per example.

    Parameters
    ----------
    label : str
        The target column. With ``positive`` given, the label is ``column ==
        positive``; otherwise the column must hold exactly two values and the
        larger (sorted as text) is positive; ``notes["positive"]`` says which.
    sensitive : str or list of str
        The sensitive column(s). Several columns make intersectional groups:
        every observed combination (in any split) is a group, named
        ``"a & b"`` (see :meth:`TabularEncoder.groups`).
    features : list of str, optional
        Feature columns; default every column but the label (and the
        sensitive ones unless ``keep_sensitive``), encoded by a
        :class:`TabularEncoder` fitted on the training split: bool and
        non-numeric columns one-hot over its values (others encode as zeros),
        columns that are not 0/1 z-scored with its statistics.
    val_fraction, test_fraction : float, default 0.2 and 0.2
        Seeded random split; the rest trains.

    Rows with a missing value in a used column are dropped and counted in
    ``notes["dropped_rows_with_missing_values"]``.
    """
    columns = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    if not columns:
        raise ValueError("sensitive must name at least one column")
    if features is None:
        features = [c for c in frame.columns if c != label and (keep_sensitive or c not in columns)]
    used = list(dict.fromkeys([label, *columns, *features]))
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: no column(s) {missing}; it has {list(frame.columns)}")
    if label in features or label in columns:
        raise ValueError(f"the label column {label!r} cannot also be a feature or sensitive column")
    complete = frame[used].notna().all(axis=1)
    frame = frame.loc[complete, used].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"{source}: no row has all of the columns {used}")
    values = frame[label]
    if isinstance(positive, str) and pd.api.types.is_numeric_dtype(values):
        try:  # a value typed on the command line for a numeric column
            positive = pd.to_numeric(positive)
        except ValueError:
            raise ValueError(f"{source}: label column {label!r} is numeric; positive={positive!r} is not") from None
    if positive is None:
        classes = sorted(values.unique(), key=str)
        if len(classes) != 2:
            raise ValueError(
                f"{source}: label column {label!r} has {len(classes)} distinct values {plain_list(classes, 5)}; "
                "it must have two, or give positive= (--positive) to binarise it"
            )
        positive = classes[1]
    positive = plain(positive)
    y = (values == positive).to_numpy(np.float32)
    if y.min() == y.max():
        raise ValueError(f"{source}: every row has the same label ({label} == {positive!r}: {bool(y[0])})")
    groups, group_names, _ = TabularEncoder.groups(frame[columns])
    test, val, train = seeded_partition(len(frame), [test_fraction, val_fraction], seed)
    parts = {"train": train, "val": val, "test": test}
    notes = {
        "source": source,
        "positive": repr(positive),
        "dropped_rows_with_missing_values": int((~complete).sum()),
    }
    return make_dataset(
        name,
        {k: frame.iloc[rows][list(features)].reset_index(drop=True) for k, rows in parts.items()},
        {k: y[rows] for k, rows in parts.items()},
        {k: groups[rows] for k, rows in parts.items()},
        group_names,
        " & ".join(columns),
        f"{label} == {positive!r}",
        notes,
    )
