"""Bring your own table: a CSV file with a label column and sensitive column(s)."""

from __future__ import annotations

import codecs
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
    encoding: str = "utf-8",
    thousands: str | None = None,
    **kwargs: Any,
) -> TabularDataset:
    """Read a CSV file (with a header row) into a :class:`TabularDataset`; see :func:`from_dataframe`.

    Parameters
    ----------
    sep : str, default ","
        The field separator, as ``pandas.read_csv`` takes it.
    encoding : str, default "utf-8"
        The text encoding of the file (``"latin-1"``, ``"cp1252"``, ...).
    thousands : str, optional
        The thousands separator inside numbers (``","`` reads ``"1,041"`` as
        1041); by default such a field is text.
    **kwargs
        Passed to :func:`from_dataframe` (``positive``, ``features``, ...);
        ``name`` defaults to the file name without its suffix.

    Errors name the file: a missing file, an unreadable one, bytes that are
    not valid in ``encoding`` (with the line, counting the header as line 1),
    a column name that the header row repeats, or missing columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown text encoding {encoding!r} for {path}") from None
    try:
        # The header as written: pandas would rename a repeated name "a" to "a.1".
        header = pd.read_csv(path, sep=sep, encoding=encoding, header=None, nrows=1, dtype=str,
                             keep_default_na=False, na_filter=False)
        names = [str(v) for v in header.iloc[0]] if len(header) else []
        repeated = sorted({n for n in names if n and names.count(n) > 1}, key=names.index)
        if repeated:
            raise ValueError(f"{path}: the header row names column(s) {repeated} more than once; every column "
                             "needs its own name")
        frame = pd.read_csv(path, sep=sep, encoding=encoding, thousands=thousands)
    except UnicodeDecodeError:
        raise ValueError(_decoding_message(path, encoding)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
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
    ``notes["dropped_rows_with_missing_values"]``; a used column with no
    value at all is an error naming it. A text feature column whose values
    are almost all numbers once ``","`` is removed (``"1,041"``) is an error
    too (read the file with ``thousands=","`` or convert the column; a
    ``category`` column is one-hot encoded as it is). The dataset's
    ``encoder`` maps raw rows to features
    (:meth:`TabularEncoder.transform`) and their ``sensitive`` columns to
    group ids (:meth:`TabularEncoder.transform_groups`).
    """
    columns = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    if not columns:
        raise ValueError("sensitive must name at least one column")
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise ValueError(f"{source}: column name(s) {repeated} occur more than once; every column needs its own name")
    if features is None:
        features = [c for c in frame.columns if c != label and (keep_sensitive or c not in columns)]
    used = list(dict.fromkeys([label, *columns, *features]))
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: no column(s) {missing}; it has {list(frame.columns)}")
    if label in features or label in columns:
        raise ValueError(f"the label column {label!r} cannot also be a feature or sensitive column")
    if frame.empty:
        raise ValueError(f"{source}: has no rows")
    empty = [c for c in used if frame[c].isna().all()]
    if empty:
        hint = ""
        if not set(empty) & {label, *columns}:
            kept = [c for c in features if c not in empty]
            hint = f"; leave them out of the features, e.g. features={kept}"
        raise ValueError(f"{source}: column(s) {empty} have no values (missing in all {len(frame)} rows){hint}")
    complete = frame[used].notna().all(axis=1)
    frame = frame.loc[complete, used].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"{source}: no row has all of the columns {used}")
    _check_numbers_as_text(frame, list(features), source)
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
        group_columns=columns,
    )


def _check_numbers_as_text(frame: pd.DataFrame, features: list[Any], source: str) -> None:
    """Refuse a text feature column that holds numbers written with thousands separators ("1,041")."""
    for column in features:
        values = frame[column]
        dtype = values.dtype
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype) or \
                isinstance(dtype, pd.CategoricalDtype) or not (dtype == object or pd.api.types.is_string_dtype(dtype)):
            continue
        counts = values.astype(str).str.strip().value_counts()
        with_comma = counts.index.str.contains(",", regex=False)
        if not with_comma.any():
            continue
        numbers = pd.to_numeric(counts.index.str.replace(",", "", regex=False), errors="coerce").notna()
        share = counts[numbers].sum() / counts.sum()
        if share >= 0.95 and (numbers & with_comma).any():
            examples = set(counts.index[numbers & with_comma])
            example = next(v for v in values.astype(str).str.strip() if v in examples)  # the first in row order
            raise ValueError(
                f"{source}: column {column!r} holds numbers written with thousands separators as text "
                f"(e.g. {example!r}; {int(counts[numbers].sum())} of {len(values)} rows are numbers once ',' is "
                f"removed), so it would be one-hot encoded; read the file with thousands=',' (load_csv), or "
                f"convert the column to numbers (or to dtype 'category' to one-hot encode it)"
            )


def _decoding_message(path: Path, encoding: str) -> str:
    """Where ``path`` stops being valid ``encoding``: the line (1 is the header) and the byte."""
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].decode(encoding).count("\n") + 1
        return (f"{path}, line {line}: expected {encoding} text, found the byte(s) {data[error.start:error.end]!r} "
                f"at byte offset {error.start} ({error.reason}); give the file's encoding, e.g. "
                f"encoding=\"latin-1\" or encoding=\"cp1252\"")
    return f"{path}: cannot be decoded as {encoding} text; give the file's encoding, e.g. encoding=\"latin-1\""
