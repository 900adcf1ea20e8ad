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
        ``test`` may be None (no test split: nothing is reported on one).
    feature_names : list of str
        The ``d`` column names, in order.
    group_names : list of str
        ``group_names[k]`` is the value of the sensitive attribute for group ``k``.
    sensitive_attribute, label : str
        What the groups and the labels are.
    notes : dict
        What preprocessing did to the raw files (rows dropped and why, ...).
    encoder : TabularEncoder or None
        The encoder fitted on the training rows that made the features (and,
        for :func:`~fairbinn.load_csv` / :func:`~fairbinn.from_dataframe`,
        maps the sensitive columns to groups); ``None`` for a dataset built by
        hand. For Adult its input is the loader's pre-encoded columns.
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
    encoder: TabularEncoder | None = field(default=None, repr=False, compare=False)

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
        splits = [split for split in (self.train, self.val, self.test) if split is not None]
        for split in splits:
            counts = np.bincount(split.s.numpy(), minlength=self.num_groups)
            out[split.name] = {
                "rows": len(split),
                "positive_rate": round(float(split.y.mean()), 4),
                "group_shares": [round(c / len(split), 4) for c in counts],
            }
        out["examples"] = {split.name: len(split) for split in splits}
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
    group_columns_, group_names_ : list or None
        The sensitive columns and the group names that
        :meth:`transform_groups` maps rows to (see :meth:`set_groups`);
        ``None`` until set.

    A fitted encoder is stored as plain data with :meth:`to_dict` and rebuilt
    with :meth:`from_dict`.
    """

    def __init__(self, handle_unknown: str = "ignore") -> None:
        if handle_unknown not in ("error", "ignore"):
            raise ValueError(f"handle_unknown must be 'error' or 'ignore', got {handle_unknown!r}")
        self.handle_unknown = handle_unknown
        self.group_columns_: list[Any] | None = None
        self.group_names_: list[str] | None = None

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
            column = numeric[int(np.argmin(finite))]
            bad = int((~np.isfinite(blocks[0][column].to_numpy())).sum())
            raise ValueError(f"column {column!r} has missing (NaN) or infinite values in {bad} of {len(frame)} rows")
        for column, known in self.categories_.items():
            values = frame[column]
            if values.isna().any():
                raise ValueError(f"column {column!r} has missing values in {int(values.isna().sum())} of "
                                 f"{len(frame)} rows")
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

    # -- sensitive groups -------------------------------------------------------

    def set_groups(self, columns: Sequence[Any], names: Sequence[str]) -> "TabularEncoder":
        """Record which columns hold the sensitive attribute and the group names (from :meth:`groups`).

        Then :meth:`transform_groups` numbers new rows as ``names`` does;
        returns ``self``.
        """
        columns, names = list(columns), [str(n) for n in names]
        if not columns:
            raise ValueError("set_groups needs at least one sensitive column")
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"group names must be distinct and non-empty, got {names}")
        self.group_columns_, self.group_names_ = columns, names
        return self

    def transform_groups(self, frame: pd.DataFrame) -> np.ndarray:
        """Group ids ``(n,)`` int64 of ``frame``'s rows: the index in ``group_names_`` of their values.

        A row is named as :meth:`groups` names it (values as text joined by
        ``" & "``); a missing value, or a combination not among
        ``group_names_``, is an error naming it.
        """
        if self.group_columns_ is None or self.group_names_ is None:
            raise ValueError("this TabularEncoder has no sensitive groups; call set_groups first")
        absent = [c for c in self.group_columns_ if c not in frame.columns]
        if absent:
            raise ValueError(f"sensitive column(s) {absent} not in the frame; it has {list(frame.columns)}")
        values = frame[self.group_columns_]
        missing = values.isna().any(axis=1).to_numpy()
        if missing.any():
            raise ValueError(f"sensitive column(s) {self.group_columns_} have missing values in "
                             f"{int(missing.sum())} of {len(frame)} rows")
        keys = values.astype(str).agg(" & ".join, axis=1) if len(frame) else pd.Series([], dtype=object)
        codes = pd.Index(self.group_names_).get_indexer(keys)
        if (codes < 0).any():
            unseen = keys[codes < 0].iloc[0]
            raise ValueError(f"group {unseen!r} of column(s) {self.group_columns_} is not one of the fitted "
                             f"groups {self.group_names_} ({int((codes < 0).sum())} such row(s))")
        return codes.astype(np.int64)

    # -- plain data ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The fitted encoder as plain data (dicts, lists, str, int, float, bool, None) for ``json.dumps``.

        ``TabularEncoder.from_dict(encoder.to_dict())`` encodes exactly as
        ``encoder`` does. Keys: ``format``, ``version``, ``handle_unknown``,
        ``columns``, ``categories`` (``[column, [values]]`` pairs, in
        indicator order), ``feature_names``, ``scaled`` (``[output column,
        mean, scale]`` triples), ``group_columns`` and ``group_names``. A
        category or column name that is not a str, int, finite float or bool
        (a date, say) is an error.
        """
        if not hasattr(self, "columns_"):
            raise ValueError("this TabularEncoder is not fitted; call fit first")
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "handle_unknown": self.handle_unknown,
            "columns": [_plain_value(c, "column name") for c in self.columns_],
            "categories": [[_plain_value(c, "column name"),
                            [_plain_value(v, f"category of column {c!r}") for v in known]]
                           for c, known in self.categories_.items()],
            "feature_names": list(self.feature_names_),
            "scaled": [[_plain_value(c, "column name"), float(self.mean_[c]), float(self.scale_[c])]
                       for c in self.mean_.index],
            "group_columns": None if self.group_columns_ is None
            else [_plain_value(c, "sensitive column name") for c in self.group_columns_],
            "group_names": None if self.group_names_ is None else list(self.group_names_),
        }

    @classmethod
    def from_dict(cls, data: Any) -> "TabularEncoder":
        """Rebuild a fitted encoder from :meth:`to_dict`'s plain data (also after a JSON round trip).

        A malformed ``data`` (missing or unknown keys, wrong types, names
        that do not match the columns and categories, a non-positive scale)
        is a ``ValueError`` saying what is wrong.
        """
        def fail(message: str) -> ValueError:
            return ValueError(f"TabularEncoder.from_dict: {message}")

        if not isinstance(data, dict):
            raise fail(f"expected the dict of TabularEncoder.to_dict(), got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise fail(f"'format' must be {_FORMAT!r}, got {data.get('format')!r}")
        if data.get("version") != _VERSION:
            raise fail(f"unsupported version {data.get('version')!r} (this fairbinn reads version {_VERSION})")
        keys = {"format", "version", "handle_unknown", "columns", "categories", "feature_names", "scaled",
                "group_columns", "group_names"}
        if set(data) != keys:
            raise fail(f"missing key(s) {sorted(keys - set(data))}, unknown key(s) {sorted(set(data) - keys, key=str)}")
        if data["handle_unknown"] not in ("error", "ignore"):
            raise fail(f"'handle_unknown' must be 'error' or 'ignore', got {data['handle_unknown']!r}")
        columns = _plain_list(data["columns"], "'columns'", fail)
        if len(set(columns)) != len(columns):
            raise fail(f"'columns' has repeated names: {columns}")
        if not isinstance(data["categories"], list):
            raise fail("'categories' must be a list of [column, [values]] pairs, got "
                       f"{type(data['categories']).__name__}")
        categories: dict[Any, pd.Index] = {}
        for entry in data["categories"]:
            if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
                raise fail(f"each entry of 'categories' must be [column, [values]], got {entry!r}")
            column, values = entry
            if column not in columns or column in categories:
                raise fail(f"'categories' names column {column!r} that is not in 'columns' or comes twice")
            values = _plain_list(values, f"the categories of column {column!r}", fail)
            if len(set(map(repr, values))) != len(values):
                raise fail(f"the categories of column {column!r} repeat a value: {values}")
            categories[column] = pd.Index(values)
        numeric = [c for c in columns if c not in categories]
        outputs = numeric + [f"{c}_{v}" for c, known in categories.items() for v in known]
        names = data["feature_names"]
        if not isinstance(names, list) or names != [str(c) for c in outputs]:
            raise fail(f"'feature_names' {names!r} do not match the columns and categories, which give "
                       f"{[str(c) for c in outputs]}")
        if not isinstance(data["scaled"], list):
            raise fail(f"'scaled' must be a list of [column, mean, scale] triples, got {type(data['scaled']).__name__}")
        labels, means, scales = [], [], []
        for entry in data["scaled"]:
            if not (isinstance(entry, (list, tuple)) and len(entry) == 3):
                raise fail(f"each entry of 'scaled' must be [column, mean, scale], got {entry!r}")
            label, mean, scale = entry
            if label not in outputs or label in labels:
                raise fail(f"'scaled' names output column {label!r} that is not an output column or comes twice")
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                          for v in (mean, scale))
            if not numbers or scale <= 0:
                raise fail(f"column {label!r} needs a finite mean and a positive finite scale, got {mean!r}, {scale!r}")
            labels.append(label)
            means.append(float(mean))
            scales.append(float(scale))
        encoder = cls(data["handle_unknown"])
        encoder.columns_, encoder.categories_, encoder.feature_names_ = columns, categories, list(names)
        index = pd.Index(labels)
        encoder.mean_ = pd.Series(means, index=index, dtype=np.float64)
        encoder.scale_ = pd.Series(scales, index=index, dtype=np.float64)
        group_columns, group_names = data["group_columns"], data["group_names"]
        if (group_columns is None) != (group_names is None):
            raise fail("'group_columns' and 'group_names' must both be lists or both be None")
        if group_columns is not None:
            group_columns = _plain_list(group_columns, "'group_columns'", fail)
            if not isinstance(group_names, list) or not all(isinstance(n, str) for n in group_names):
                raise fail(f"'group_names' must be a list of str, got {group_names!r}")
            try:
                encoder.set_groups(group_columns, group_names)
            except ValueError as error:
                raise fail(str(error)) from None
        return encoder


_FORMAT = "fairbinn.TabularEncoder"
_VERSION = 1


def _plain_value(value: Any, what: str) -> Any:
    """``value`` as a str, int, finite float or bool (NumPy scalars unwrapped), else a ValueError."""
    value = plain(value)
    if type(value) in (str, int, bool) or (type(value) is float and np.isfinite(value)):
        return value
    raise ValueError(f"{what} {value!r} ({type(value).__name__}) cannot be stored as plain data; "
                     "only str, int, finite float and bool can")


def _plain_list(values: Any, what: str, fail: Any) -> list[Any]:
    if not isinstance(values, list):
        raise fail(f"{what} must be a list, got {type(values).__name__}")
    try:
        return [_plain_value(v, f"an entry of {what}") for v in values]
    except ValueError as error:
        raise fail(str(error)) from None


def make_dataset(
    name: str,
    features: dict[str, pd.DataFrame],
    labels: dict[str, np.ndarray],
    groups: dict[str, np.ndarray],
    group_names: list[str],
    sensitive_attribute: str,
    label: str,
    notes: dict[str, Any],
    group_columns: Sequence[Any] | None = None,
) -> TabularDataset:
    """Encode the "train" / "val" / "test" frames with a :class:`TabularEncoder` fitted on "train" and wrap up.

    With ``group_columns`` (the raw sensitive columns), the encoder also maps
    them to ``group_names`` (:meth:`TabularEncoder.transform_groups`). The
    dataset keeps the encoder as ``dataset.encoder``.
    """
    encoder = TabularEncoder().fit(features["train"])
    if group_columns is not None:
        encoder.set_groups(group_columns, group_names)
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
        encoder=encoder,
        **splits,
    )
    logger.info(
        "%s: %d features; %d train / %d val / %d test rows; %s",
        name, dataset.num_features, len(dataset.train), len(dataset.val), len(dataset.test), notes,
    )
    return dataset
