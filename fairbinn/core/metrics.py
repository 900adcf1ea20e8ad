"""Classification and group-fairness metrics for binary classifiers.

Fairness metrics follow fairlearn's signature,
``metric(y_true, y_pred, *, sensitive_features)``, and return fractions in
``[0, 1]``: the largest value over groups minus the smallest. As in fairlearn,
these functions count a rate whose denominator is empty in some group (for
example a true-positive rate in a group without positives) as 0 for that group.

:func:`binary_fairness_report` never does: a gap is undefined when a group it
compares has no rows of what the gap conditions on (any row for DP and soft
DP; a positive label for the true-positive rates of EOpp, EO and soft EO; a
negative label for the false-positive rates of EO and soft EO), or when there
are fewer than two groups. Given the dataset's full list of groups
(``groups``), a group without a row in the data is such a group too. The
report gives NaN for an undefined gap, and :func:`undefined_gaps` says why,
naming the group.

Two families are kept apart by name:

* ``demographic_parity_difference``, ``equalized_odds_difference`` and
  ``equal_opportunity_difference`` take hard 0/1 predictions and agree with
  fairlearn's functions of the same names.
* ``soft_demographic_parity_difference`` and
  ``soft_equalized_odds_difference`` take scores (predicted probabilities) and
  measure gaps of mean score. The soft DP is the "DP" the FairBiNN paper plots.

All inputs are array-likes of shape ``(n,)``; ``sensitive_features`` may hold
any hashable labels (strings, integers).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "accuracy",
    "roc_auc",
    "average_precision",
    "f1_score",
    "selection_rates",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "soft_demographic_parity_difference",
    "soft_equalized_odds_difference",
    "group_metrics",
    "binary_fairness_report",
    "undefined_gaps",
    "METRIC_DIRECTIONS",
    "REPORT_KEYS",
    "GAP_METRICS",
    "higher_is_better",
]


def _vector(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    return array


def _binary(name: str, values: Any) -> np.ndarray:
    array = _vector(name, values)
    unique = np.unique(array)
    if not np.isin(unique, (0, 1)).all():
        shown = ", ".join(map(str, unique[:5]))
        raise ValueError(
            f"{name} must hold binary 0/1 values; found {shown}"
            + (" ..." if unique.size > 5 else "")
        )
    return array.astype(np.int64)


def _scores(name: str, values: Any) -> np.ndarray:
    array = _vector(name, values).astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs have different lengths: {lengths}")


def _groups(sensitive_features: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels, codes): the distinct group labels and each row's index into them."""
    array = _vector("sensitive_features", sensitive_features)
    labels, codes = np.unique(array, return_inverse=True)
    return labels, codes.reshape(-1)


def _group_list(sensitive_features: Any, groups: int | Sequence[Any] | None) -> tuple[list[str], np.ndarray]:
    """Names of all groups and each row's index into them.

    ``groups`` None: the distinct labels of ``sensitive_features``. An int
    ``n``: groups ``0 .. n-1``, which integer ``sensitive_features`` index. A
    sequence of names: integer ``sensitive_features`` index it, other labels
    must be among the names.
    """
    array = _vector("sensitive_features", sensitive_features)
    if groups is None:
        labels, codes = np.unique(array, return_inverse=True)
        return [str(label) for label in labels], codes.reshape(-1)
    if isinstance(groups, (int, np.integer)) and not isinstance(groups, bool):
        if groups < 1:
            raise ValueError(f"groups must be a positive number of groups, got {groups}")
        names = [str(k) for k in range(int(groups))]
    else:
        names = [str(name) for name in groups]
        if not names:
            raise ValueError("groups must name at least one group")
    integral = array.dtype.kind in "iub" or (array.dtype.kind == "f" and bool(np.all(array == np.round(array))))
    if integral:
        codes = array.astype(np.int64)
        outside = codes[(codes < 0) | (codes >= len(names))]
        if outside.size:
            raise ValueError(f"sensitive_features holds group index {outside[0]}, outside the "
                             f"{len(names)} groups {names}")
        return names, codes
    index = {name: k for k, name in enumerate(names)}
    unknown = sorted({str(label) for label in array.tolist()} - index.keys())
    if unknown:
        raise ValueError(f"sensitive_features holds {unknown[0]!r}, which is not one of the groups {names}")
    return names, np.array([index[str(label)] for label in array.tolist()], dtype=np.int64)


def _group_means(values: np.ndarray, codes: np.ndarray, n_groups: int, empty: float = 0.0) -> np.ndarray:
    """Mean of ``values`` within each group; ``empty`` for a group with no rows."""
    counts = np.bincount(codes, minlength=n_groups)
    sums = np.bincount(codes, weights=values, minlength=n_groups)
    return np.divide(sums, counts, out=np.full(n_groups, empty), where=counts > 0)


def _spread(values: np.ndarray) -> float:
    return float(values.max() - values.min())


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of correct hard predictions."""
    y, p = _binary("y_true", y_true), _binary("y_pred", y_pred)
    _same_length(y_true=y, y_pred=p)
    return float((y == p).mean())


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[inverse.reshape(-1)]


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties counted as 1/2).

    Raises ``ValueError`` when ``y_true`` holds a single class, where the area is
    undefined.
    """
    y, s = _binary("y_true", y_true), _scores("y_score", y_score)
    _same_length(y_true=y, y_score=s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC is undefined when y_true holds only one class")
    rank_sum = _average_ranks(s)[y == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true: Any, y_score: Any) -> float:
    """Average precision: sum over score thresholds of (R_k - R_{k-1}) * P_k.

    The same step-wise definition as scikit-learn's
    ``average_precision_score`` (no interpolation; tied scores form one
    threshold). Raises ``ValueError`` when there are no positives.
    """
    y, s = _binary("y_true", y_true), _scores("y_score", y_score)
    _same_length(y_true=y, y_score=s)
    if y.sum() == 0:
        raise ValueError("average precision is undefined when y_true has no positives")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    true_pos = np.cumsum(y)[last_of_threshold]
    predicted_pos = last_of_threshold + 1
    precision = true_pos / predicted_pos
    recall = true_pos / true_pos[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def f1_score(y_true: Any, y_pred: Any) -> float:
    """F1 of the positive class: ``2 TP / (2 TP + FP + FN)`` of hard predictions.

    NaN when there is neither a positive label nor a positive prediction
    (0 / 0; scikit-learn's ``f1_score`` returns 0 there with a warning).
    """
    y, p = _binary("y_true", y_true), _binary("y_pred", y_pred)
    _same_length(y_true=y, y_pred=p)
    true_pos = int(((y == 1) & (p == 1)).sum())
    wrong = int((y != p).sum())
    denominator = 2 * true_pos + wrong
    return float(2 * true_pos / denominator) if denominator else float("nan")


def selection_rates(y_pred: Any, *, sensitive_features: Any) -> pd.Series:
    """Fraction of positive predictions in each group, indexed by group label."""
    p = _binary("y_pred", y_pred)
    labels, codes = _groups(sensitive_features)
    _same_length(y_pred=p, sensitive_features=codes)
    return pd.Series(_group_means(p, codes, labels.size), index=labels, name="selection_rate")


def _conditional_rate_spreads(
    y: np.ndarray, values: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[float, float]:
    """Spread over groups of mean ``values`` among negatives and among positives."""
    spreads = []
    for label in (0, 1):
        rows = y == label
        spreads.append(_spread(_group_means(values[rows], codes[rows], n_groups)))
    return spreads[0], spreads[1]


def _prepare(y_true: Any, y_pred: Any, sensitive_features: Any, scores: bool):
    y = _binary("y_true", y_true)
    p = _scores("y_score", y_pred) if scores else _binary("y_pred", y_pred)
    labels, codes = _groups(sensitive_features)
    _same_length(y_true=y, y_pred=p, sensitive_features=codes)
    return y, p.astype(np.float64), codes, labels.size


def demographic_parity_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any) -> float:
    """Largest minus smallest selection rate (share of positive predictions) over groups.

    ``y_true`` is accepted for signature compatibility with fairlearn and only
    checked, not used.
    """
    _, p, codes, n_groups = _prepare(y_true, y_pred, sensitive_features, scores=False)
    return _spread(_group_means(p, codes, n_groups))


def equalized_odds_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any) -> float:
    """The larger of the true-positive-rate and false-positive-rate spreads over groups."""
    y, p, codes, n_groups = _prepare(y_true, y_pred, sensitive_features, scores=False)
    return max(_conditional_rate_spreads(y, p, codes, n_groups))


def equal_opportunity_difference(y_true: Any, y_pred: Any, *, sensitive_features: Any) -> float:
    """Spread over groups of the true-positive rate (FairGNN's "EO")."""
    y, p, codes, n_groups = _prepare(y_true, y_pred, sensitive_features, scores=False)
    return _conditional_rate_spreads(y, p, codes, n_groups)[1]


def soft_demographic_parity_difference(
    y_true: Any, y_score: Any, *, sensitive_features: Any
) -> float:
    """Largest minus smallest mean predicted score over groups (the paper's "DP")."""
    _, s, codes, n_groups = _prepare(y_true, y_score, sensitive_features, scores=True)
    return _spread(_group_means(s, codes, n_groups))


def soft_equalized_odds_difference(
    y_true: Any, y_score: Any, *, sensitive_features: Any
) -> float:
    """The larger over true labels of the spread of mean predicted score over groups."""
    y, s, codes, n_groups = _prepare(y_true, y_score, sensitive_features, scores=True)
    return max(_conditional_rate_spreads(y, s, codes, n_groups))


def group_metrics(
    y_true: Any, y_score: Any, *, sensitive_features: Any, threshold: float = 0.5
) -> pd.DataFrame:
    """Per-group breakdown, one row per group label.

    Columns: ``count``, ``base_rate`` (share of positives), ``selection_rate``,
    ``mean_score``, ``true_positive_rate``, ``false_positive_rate`` and
    ``accuracy``; predictions are ``y_score >= threshold``. A group without
    positives (negatives) has a NaN true- (false-) positive rate.
    """
    y, s, codes, n_groups = _prepare(y_true, y_score, sensitive_features, scores=True)
    labels = _groups(sensitive_features)[0]
    p = (s >= threshold).astype(np.float64)
    pos, neg = y == 1, y == 0
    frame = pd.DataFrame(
        {
            "count": np.bincount(codes, minlength=n_groups),
            "base_rate": _group_means(y.astype(np.float64), codes, n_groups),
            "selection_rate": _group_means(p, codes, n_groups),
            "mean_score": _group_means(s, codes, n_groups),
            "true_positive_rate": _group_means(p[pos], codes[pos], n_groups, empty=np.nan),
            "false_positive_rate": _group_means(p[neg], codes[neg], n_groups, empty=np.nan),
            "accuracy": _group_means((p == y).astype(np.float64), codes, n_groups),
        },
        index=pd.Index(labels, name="group"),
    )
    return frame


METRIC_DIRECTIONS = {"accuracy": "max", "auc": "max", "ap": "max", "f1": "max",
                     "dp": "min", "eo": "min", "eopp": "min", "soft_dp": "min", "soft_eo": "min"}
"""Keys of :func:`binary_fairness_report`, in display order, each with the
direction model selection takes: ``"max"`` for the scores (accuracy, AUC,
AP, F1), ``"min"`` for the unfairness gaps."""
REPORT_KEYS = tuple(METRIC_DIRECTIONS)
"""Keys of :func:`binary_fairness_report`, in display order."""
GAP_METRICS = tuple(k for k, direction in METRIC_DIRECTIONS.items() if direction == "min")
"""The report's unfairness gaps (lower is better), which fairness budgets bound."""
_CONDITIONS = {"dp": (), "eo": (1, 0), "eopp": (1,), "soft_dp": (), "soft_eo": (1, 0)}
"""The labels each gap conditions on (its rates within positives, 1, and negatives, 0)."""


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of report key ``metric`` is better (False for the gaps)."""
    if metric not in REPORT_KEYS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(REPORT_KEYS)}")
    return METRIC_DIRECTIONS[metric] == "max"


def _lacking(names: list[str], lacking: np.ndarray, what: str) -> list[str]:
    """``["group 'a' has <what>"]`` / ``["groups 'a' and 'b' have <what>"]`` for the groups flagged; [] if none."""
    quoted = [f"'{name}'" for name, flag in zip(names, lacking) if flag]
    if not quoted:
        return []
    if len(quoted) == 1:
        return [f"group {quoted[0]} has {what}"]
    return [f"groups {', '.join(quoted[:-1])} and {quoted[-1]} have {what}"]


def undefined_gaps(
    y_true: Any, *, sensitive_features: Any, groups: int | Sequence[Any] | None = None
) -> dict[str, str]:
    """The gaps of :data:`GAP_METRICS` that data with these labels and groups cannot measure, with why.

    A gap is undefined when a group it compares has no rows of what it
    conditions on: any row for ``dp`` and ``soft_dp``; a positive label for
    the true-positive rates (``eopp``, ``eo``, ``soft_eo``); a negative label
    for the false-positive rates (``eo``, ``soft_eo``). With fewer than two
    groups every gap is undefined.

    ``groups`` lists every group of the dataset, so that a group without a row
    here counts: an int ``n`` (``sensitive_features`` holds indices
    ``0 .. n-1``) or the group names (``sensitive_features`` holds indices into
    them, or the names themselves). Default: the labels present.

    Returns ``{metric: reason}``, the reason naming the groups (e.g.
    ``"group 'Female' has no positive labels"``), empty when every gap is
    defined. The fairlearn-signature functions still return fairlearn's
    values (0 for a single group); :func:`binary_fairness_report` returns NaN
    for these.
    """
    y = _binary("y_true", y_true)
    names, codes = _group_list(sensitive_features, groups)
    _same_length(y_true=y, sensitive_features=codes)
    if len(names) < 2:
        return {metric: f"one group ({names[0]})" for metric in GAP_METRICS}
    rows = np.bincount(codes, minlength=len(names))
    positives = np.bincount(codes, weights=y, minlength=len(names))
    problems = {
        None: _lacking(names, rows == 0, "no rows"),
        1: _lacking(names, (rows > 0) & (positives == 0), "no positive labels"),
        0: _lacking(names, (rows > 0) & (positives == rows), "no negative labels"),
    }
    reasons = {}
    for metric, labels in _CONDITIONS.items():
        parts = problems[None] + [part for label in labels for part in problems[label]]
        if parts:
            reasons[metric] = "; ".join(parts)
    return reasons


def binary_fairness_report(
    y_true: Any, y_score: Any, *, sensitive_features: Any, threshold: float = 0.5,
    groups: int | Sequence[Any] | None = None, y_pred: Any = None,
) -> dict[str, float]:
    """All headline metrics of scores ``y_score`` (probabilities of class 1).

    Returns a dict with keys :data:`REPORT_KEYS`: ``accuracy``, ``auc`` (ROC
    AUC), ``ap`` (average precision), ``f1`` (F1 of class 1), ``dp`` / ``eo`` / ``eopp`` (demographic
    parity, equalized odds and equal opportunity differences of the
    predictions ``y_score >= threshold``) and ``soft_dp`` / ``soft_eo`` (the
    same gaps on mean scores). ``auc`` and ``ap`` are NaN when ``y_true`` holds
    a single class; ``f1`` (:func:`f1_score`) is NaN without positive labels
    and predictions; a gap that the data cannot measure (a group it compares
    without rows, positives or negatives as the gap needs, or a single group;
    see :func:`undefined_gaps`, which ``groups`` is passed to) is NaN, never 0.
    ``y_pred`` (0/1, shape ``(n,)``) replaces the thresholded scores as the
    decisions (e.g. per-group thresholds); ``auc``, ``ap`` and the soft gaps
    still read ``y_score``.
    """
    y = _binary("y_true", y_true)
    s = _scores("y_score", y_score)
    if y_pred is None:
        p = (s >= threshold).astype(np.int64)
    else:
        p = _binary("y_pred", y_pred).astype(np.int64)
        _same_length(y_true=y, y_score=s, y_pred=p)
    both_classes = 0 < y.sum() < y.size
    kwargs = {"sensitive_features": sensitive_features}
    report = {
        "accuracy": accuracy(y, p),
        "auc": roc_auc(y, s) if both_classes else float("nan"),
        "ap": average_precision(y, s) if both_classes else float("nan"),
        "f1": f1_score(y, p),
        "dp": demographic_parity_difference(y, p, **kwargs),
        "eo": equalized_odds_difference(y, p, **kwargs),
        "eopp": equal_opportunity_difference(y, p, **kwargs),
        "soft_dp": soft_demographic_parity_difference(y, s, **kwargs),
        "soft_eo": soft_equalized_odds_difference(y, s, **kwargs),
    }
    for metric in undefined_gaps(y, **kwargs, groups=groups):
        report[metric] = float("nan")
    return report
