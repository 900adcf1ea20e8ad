"""Certified fairness budgets: confidence bounds on group gaps and certified selection among candidates.

The gaps are those of :mod:`fairbinn.core.metrics`: ``dp`` (spread over groups
of the positive-prediction rate), ``eopp`` (spread of the true-positive rate),
``eo`` (the larger of the true- and false-positive-rate spreads) and
``soft_dp`` / ``soft_eo`` (the same on mean scores in ``[0, 1]``). Here a gap
is a *population* quantity: the spread of the rates ``P(pred = 1 | group[, y])``
(or mean scores ``E[score | group[, y]]``) of the distribution the rows come from.

The guarantee
-------------
Let a finite list of candidate models (checkpoints) and a test order over
them (or, for Bonferroni, a shortlist) be fixed without looking at the
*certification rows*: they may depend on the training data and on a separate
selection part of the validation data (:func:`split_for_certification`).
Assume the certification rows are drawn i.i.d. from the distribution the
model will meet (the same distribution as the test rows), or, more
generally, that within each group (and each true label for ``eo``, ``eopp``,
``soft_eo``) they are i.i.d. given how many there are, so stratified samples
qualify. Then :func:`certify_candidates` and :func:`choose_certified`
guarantee

    with probability at least ``confidence`` over the draw of the certification
    rows, *every* candidate reported as certified has population gap
    ``<= budget``

(family-wise error control), hence so does the chosen one, whichever
certified candidate is chosen (here: the most accurate). Each bound of
:func:`gap_upper_bound` is on its own a ``confidence``-level upper bound on
one fixed model's population gap.

Not covered: distribution shift (test rows from another time, place or
population than the certification rows, including changed conditional
rates within groups); candidates, thresholds or test orders chosen after
looking at the certification rows; certifying again on the same rows after a
failure (retraining until a certificate appears); and the empirical gap of a
finite test set, which fluctuates around the population gap and may exceed
the budget by sampling noise. The ``upper_bound`` stored in a
:class:`Certificate` is the chosen candidate's bound at its test level; after
selection it is informative, the certified claim is ``gap <= budget``.

How the bounds are made
-----------------------
Rate gaps (``dp``, ``eopp``, ``eo``): one-sided Clopper-Pearson bounds
(:func:`clopper_pearson`) on every group's rate, ``max_g upper_g - min_g
lower_g``, each bound at level ``(1 - confidence) / (2 G S)`` for ``G``
groups and ``S`` conditioning labels (``S = 1`` for ``dp`` and ``eopp``,
``S = 2`` for ``eo``): a union bound over all ``2 G S`` bounds.

Soft gaps (``soft_dp``, ``soft_eo``): the same union bound over per-group
bounds on mean scores, by Hoeffding's inequality (``soft_bound="hoeffding"``,
the default: ``mean ± sqrt(log(1/delta) / (2 n))``, distribution-free and
valid from one row) or the empirical-Bernstein bound of Maurer & Pontil
(2009, Theorem 4; ``soft_bound="bernstein"``: ``mean ± (sqrt(2 V log(2/delta)
/ n) + 7 log(2/delta) / (3 (n - 1)))`` with ``V`` the sample variance, needs two
rows per group). Bernstein is tighter when the scores vary little within a
group (standard deviation below about 0.3 with thousands of rows), Hoeffding
for small groups.

A gap that the rows cannot measure (fewer than two groups; a group without
rows of the conditioning kind) gets a NaN bound and a reason naming the group.
A group absent from the rows altogether is only noticed when the population's
groups are declared (``all_groups`` of :func:`gap_counts`); otherwise the
bound covers the groups present.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .metrics import GAP_METRICS, _binary, _groups, _same_length, _scores

__all__ = [
    "clopper_pearson",
    "GapCounts",
    "GapBound",
    "gap_counts",
    "undefined_reason",
    "gap_upper_bound",
    "gap_upper_bound_from_data",
    "gap_interval",
    "demographic_parity_difference_interval",
    "equalized_odds_difference_interval",
    "equal_opportunity_difference_interval",
    "soft_demographic_parity_difference_interval",
    "soft_equalized_odds_difference_interval",
    "rows_needed",
    "equal_rate_counts",
    "Certification",
    "Certificate",
    "certify_candidates",
    "choose_certified",
    "split_for_certification",
    "CERTIFY_METHODS",
    "SOFT_BOUNDS",
]

CERTIFY_METHODS = ("fixed_sequence", "bonferroni")
"""Multiple-testing procedures of :func:`certify_candidates`."""
SOFT_BOUNDS = ("hoeffding", "bernstein")
"""Concentration bounds for the mean scores of the soft gaps."""
_CONDITIONS = {"dp": (None,), "soft_dp": (None,), "eopp": (1,), "eo": (0, 1), "soft_eo": (0, 1)}
"""Per gap, the true labels it conditions on (None: all rows), in stratum order."""
_SOFT = ("soft_dp", "soft_eo")
_ITERATIONS = 36  # bisection steps on [0, 1]: bracket width 2**-36 < 1.5e-11


# ----------------------------------------------------------------------------------------------- Clopper-Pearson


def _log_factorial(x: np.ndarray) -> np.ndarray:
    """``log(x!)`` of integer-valued ``x >= 0``: exact table below 64, Stirling's series above."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    small = x < 64
    out[small] = _LOG_FACTORIAL_TABLE[x[small].astype(np.int64)]
    z = x[~small] + 1.0
    inv, inv2 = 1.0 / z, 1.0 / (z * z)
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    out[~small] = (z - 0.5) * np.log(z) - z + 0.5 * math.log(2 * math.pi) + series
    return out


_LOG_FACTORIAL_TABLE = np.array([math.lgamma(i + 1.0) for i in range(64)])


def _tail_roots(m: np.ndarray, n: np.ndarray, alpha: np.ndarray, upper_tail: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Bracket ``[lo, hi]`` (width < 1.5e-11) of the ``p`` where a binomial tail equals ``alpha``.

    Elementwise for ``0 <= m < n`` and ``0 < alpha < 1``: the tail is
    ``P(Binomial(n, p) > m)`` where ``upper_tail`` is True, else
    ``P(Binomial(n, p) <= m)``. The log pmf (log-factorials, no overflow) is
    exponentiated relative to its peak over a window of ``10 sqrt(n) + 100``
    terms either side of ``m``, and the tail is its share of the window's sum:
    by Hoeffding's inequality the mass outside the window is below
    ``exp(-60)`` wherever the comparison with ``alpha`` is close, negligible
    for any ``alpha`` above 1e-15.
    """
    half = np.ceil(10 * np.sqrt(n)).astype(np.int64) + 100
    start = np.maximum(m - half + 1, 0)
    stop = np.minimum(m + half, n)
    width = stop - start + 1
    lo, hi = np.zeros(m.shape), np.ones(m.shape)
    order = np.argsort(width, kind="stable")
    position = 0
    while position < order.size:  # chunks of similar window width, about 1e6 cells each
        size = max(1, min(order.size - position, 1_000_000 // int(width[order[position]])))
        chosen = order[position:position + size]
        position += size
        w = int(width[chosen].max())
        mm, nn = m[chosen][:, None], n[chosen][:, None]
        j = start[chosen][:, None] + np.arange(w)[None, :]
        valid = j <= stop[chosen][:, None]
        j = np.minimum(j, stop[chosen][:, None]).astype(np.float64)
        log_choose = np.where(valid, _log_factorial(nn) - _log_factorial(j) - _log_factorial(nn - j), -np.inf)
        upper = upper_tail[chosen]
        in_tail = np.where(upper[:, None], j > mm, j <= mm).astype(np.float64)
        log_alpha = np.log(alpha[chosen])
        a, b = lo[chosen], hi[chosen]
        for _ in range(_ITERATIONS):
            p = 0.5 * (a + b)
            log_pmf = log_choose + j * np.log(p)[:, None] + (nn - j) * np.log1p(-p)[:, None]
            terms = np.exp(log_pmf - log_pmf.max(axis=1, keepdims=True))
            with np.errstate(divide="ignore"):  # a tail below 1e-308 of the peak counts as 0
                log_tail = np.log((terms * in_tail).sum(axis=1)) - np.log(terms.sum(axis=1))
            # the root lies above p while the lower tail is still above alpha, or the upper tail below it
            root_above = np.where(upper, log_tail < log_alpha, log_tail > log_alpha)
            a, b = np.where(root_above, p, a), np.where(root_above, b, p)
        lo[chosen], hi[chosen] = a, b
    return lo, hi


def _integers(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(array) | (array != np.round(array)) | (array < 0)
    if bad.any():
        shown = ", ".join(f"{v:g}" for v in array[bad][:5])
        raise ValueError(f"{name} must hold non-negative integers; found {shown}")
    return array.astype(np.int64)


def _bounds(k: np.ndarray, n: np.ndarray, alpha: np.ndarray, sides: tuple[bool, ...]) -> list[np.ndarray]:
    """One-sided bounds at level ``alpha`` for each side (True: upper), all roots found in one pass."""
    m_all, n_all, alpha_all, tail_all, todo_all = [], [], [], [], []
    for upper in sides:
        # upper bound: P(X <= k) = alpha; lower bound: P(X >= k) = P(X > k - 1) = alpha
        todo = (n > 0) & ((k < n) if upper else (k > 0))
        m_all.append((k if upper else k - 1)[todo])
        n_all.append(n[todo])
        alpha_all.append(alpha[todo])
        tail_all.append(np.full(int(todo.sum()), not upper))
        todo_all.append(todo)
    keys = np.stack([np.concatenate(m_all), np.concatenate(n_all), np.concatenate(alpha_all),
                     np.concatenate(tail_all)], axis=1).astype(np.float64)
    results = [np.full(k.shape, 1.0 if upper else 0.0) for upper in sides]
    if len(keys):
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        lo, hi = _tail_roots(unique[:, 0].astype(np.int64), unique[:, 1].astype(np.int64), unique[:, 2],
                             unique[:, 3] > 0)
        roots = np.where(unique[:, 3] > 0, lo, hi)[inverse.reshape(-1)]  # the conservative end
        offset = 0
        for result, todo in zip(results, todo_all):
            count = int(todo.sum())
            result[todo] = roots[offset:offset + count]
            offset += count
    return results


def clopper_pearson(k: Any, n: Any, alpha: Any, side: str = "upper"):
    """Exact (Clopper-Pearson) confidence bounds on a binomial proportion from ``k`` successes in ``n`` trials.

    ``side="upper"`` gives the ``p_U`` with ``P(Binomial(n, p_U) <= k) = alpha``
    (1 when ``k == n``): ``P(p <= p_U) >= 1 - alpha``. ``side="lower"`` gives
    ``p_L`` with ``P(Binomial(n, p_L) >= k) = alpha`` (0 when ``k == 0``).
    ``side="two-sided"`` returns ``(lower, upper)``, each at ``alpha / 2``.
    ``n == 0`` gives the trivial bounds 0 and 1.

    ``k``, ``n`` and ``alpha`` broadcast against each other; the result is a
    float for scalar inputs, else an array of the broadcast shape. The
    binomial CDF is summed in log space and its root found by bisection;
    results are within 2e-11 of the exact bound (``scipy.stats.beta.ppf``),
    on the conservative side.
    """
    if side not in ("upper", "lower", "two-sided"):
        raise ValueError(f"side must be 'upper', 'lower' or 'two-sided', got {side!r}")
    scalar = all(np.ndim(v) == 0 for v in (k, n, alpha))
    k_arr, n_arr = _integers("k", k), _integers("n", n)
    alpha_arr = np.asarray(alpha, dtype=np.float64)
    if not ((alpha_arr > 0) & (alpha_arr < 1)).all():
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    k_arr, n_arr, alpha_arr = np.broadcast_arrays(k_arr, n_arr, alpha_arr)
    if (k_arr > n_arr).any():
        first = np.argwhere(k_arr > n_arr)[0]
        raise ValueError(f"k must not exceed n (more successes than trials): k={k_arr[tuple(first)]}, "
                         f"n={n_arr[tuple(first)]}")
    if side == "two-sided":
        alpha_arr = alpha_arr / 2
    results = _bounds(k_arr, n_arr, alpha_arr, (False, True) if side == "two-sided" else (side == "upper",))
    results = [float(r) if scalar else r for r in results]
    return tuple(results) if side == "two-sided" else results[0]


# ----------------------------------------------------------------------------------------------- counts and bounds


def _check_metric(metric: str) -> None:
    if metric not in GAP_METRICS:
        raise ValueError(f"unknown gap metric {metric!r}; choose one of {', '.join(GAP_METRICS)}")


def _check_confidence(confidence: float) -> float:
    confidence = float(confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return confidence


def _check_soft_bound(soft_bound: str) -> None:
    if soft_bound not in SOFT_BOUNDS:
        raise ValueError(f"soft_bound must be one of {', '.join(SOFT_BOUNDS)}, got {soft_bound!r}")


@dataclass(frozen=True, eq=False)
class GapCounts:
    """The sufficient statistics of one model's gap on some rows.

    ``rows``, ``total`` and ``total_sq`` have shape ``(S, G)``: one row per
    conditioning label of the metric (:attr:`conditions`: all rows for ``dp``
    and ``soft_dp``; positives for ``eopp``; negatives then positives for
    ``eo`` and ``soft_eo``) and one column per group (``groups``, in that
    order). ``rows`` counts the rows, ``total`` sums the predictions (hard
    metrics: the number of positive predictions) or scores, ``total_sq`` sums
    the squared scores (defaults to ``total``, right for 0/1 predictions).
    For ``S = 1`` one-dimensional arrays of length ``G`` are accepted.
    """

    metric: str
    groups: tuple
    rows: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_metric(self.metric)
        strata = len(_CONDITIONS[self.metric])
        groups = tuple(self.groups)
        shape = (strata, len(groups))
        arrays = {}
        for name in ("rows", "total", "total_sq"):
            value = getattr(self, name)
            if value is None:
                continue
            array = np.asarray(value, dtype=np.float64)
            if array.ndim == 1 and strata == 1:
                array = array[None, :]
            if array.shape != shape:
                raise ValueError(f"GapCounts.{name} for {self.metric!r} with {len(groups)} groups must have shape "
                                 f"{shape} (conditioning labels x groups), got {array.shape}")
            if not np.isfinite(array).all() or (array < 0).any():
                raise ValueError(f"GapCounts.{name} must hold finite non-negative values")
            arrays[name] = array
        rows = _integers("GapCounts.rows", arrays["rows"])
        total = arrays["total"]
        total_sq = arrays.get("total_sq", total)
        tolerance = 1e-9 * np.maximum(rows, 1)
        if (total > rows + tolerance).any():
            raise ValueError("GapCounts.total exceeds GapCounts.rows somewhere (predictions and scores lie in [0, 1])")
        if (total_sq > total + tolerance).any():
            raise ValueError("GapCounts.total_sq exceeds GapCounts.total somewhere (squares of [0, 1] scores)")
        if self.metric not in _SOFT and (total != np.round(total)).any():
            raise ValueError(f"GapCounts.total for the rate gap {self.metric!r} must count positive predictions "
                             "(integers)")
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "total_sq", total_sq)

    @property
    def conditions(self) -> tuple:
        """The true label each stratum (row of the arrays) conditions on; None for all rows."""
        return _CONDITIONS[self.metric]

    def rates(self) -> np.ndarray:
        """Observed rate (mean prediction or score) per stratum and group, shape ``(S, G)``; NaN where no rows."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.rows > 0, self.total / np.maximum(self.rows, 1), np.nan)

    def estimate(self) -> float:
        """The observed gap (largest over strata of max minus min rate); NaN when undefined."""
        if undefined_reason(self) is not None:
            return float("nan")
        rates = self.rates()
        return float((rates.max(axis=1) - rates.min(axis=1)).max())


def _rows(count: int, condition) -> str:
    text = "no rows" if count == 0 else f"{count} row" + ("s" if count > 1 else "")
    return text if condition is None else f"{text} with y_true={condition}"


def undefined_reason(counts: GapCounts, soft_bound: str = "hoeffding") -> str | None:
    """Why ``counts`` cannot bound its gap (None when it can), naming the group at fault."""
    if len(counts.groups) < 2:
        only = f" (only {counts.groups[0]!r})" if counts.groups else ""
        return f"{counts.metric} needs at least 2 groups; found {len(counts.groups)}{only}"
    needed = 2 if (counts.metric in _SOFT and soft_bound == "bernstein") else 1
    for s, condition in enumerate(counts.conditions):
        for g, label in enumerate(counts.groups):
            count = int(counts.rows[s, g])
            if count < needed:
                extra = "; the empirical-Bernstein bound needs at least 2" if count else ""
                return f"{counts.metric}: group {label!r} has {_rows(count, condition)}{extra}"
    return None


def _group_codes(groups: Any, all_groups: Sequence | None) -> tuple[tuple, np.ndarray]:
    """Group labels and each row's index into them: the distinct labels, or ``all_groups`` in its order."""
    labels, codes = _groups(groups)
    if all_groups is None:
        return tuple(labels.tolist()), codes
    names = list(all_groups)
    index = {name: k for k, name in enumerate(names)}
    if len(index) != len(names):
        raise ValueError(f"all_groups repeats a group: {names}")
    unknown = [label for label in labels.tolist() if label not in index]
    if unknown:
        raise ValueError(f"groups holds {unknown[0]!r}, which is not one of all_groups {names}")
    return tuple(names), np.array([index[label] for label in labels.tolist()], dtype=np.int64)[codes]


def gap_counts(y_true: Any, y_pred_or_score: Any, groups: Any, metric: str, *,
               all_groups: Sequence | None = None) -> GapCounts:
    """Count what the bounds on ``metric`` need from row arrays of shape ``(n,)``.

    ``y_pred_or_score`` holds 0/1 predictions for the rate gaps (``dp``,
    ``eo``, ``eopp``) and scores in ``[0, 1]`` for ``soft_dp`` / ``soft_eo``;
    ``groups`` holds each row's group label (any hashable). ``y_true`` (0/1)
    is checked for every metric and used by the label-conditional ones.
    ``all_groups`` lists every group of the population, in order; a group
    without rows here then makes the gap undefined instead of being left out
    (by default the groups are the distinct labels of ``groups``).
    """
    _check_metric(metric)
    y = _binary("y_true", y_true)
    if metric in _SOFT:
        values = _scores("y_score", y_pred_or_score)
        if values.min() < 0 or values.max() > 1:
            raise ValueError(f"y_score holds values outside [0, 1] (min {values.min():g}, max {values.max():g}); "
                             f"the bounds on {metric} need scores in [0, 1]")
    else:
        values = _binary("y_pred", y_pred_or_score).astype(np.float64)
    labels, codes = _group_codes(groups, all_groups)
    _same_length(y_true=y, y_pred_or_score=values, groups=codes)
    conditions = _CONDITIONS[metric]
    shape = (len(conditions), len(labels))
    rows, total, total_sq = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for s, condition in enumerate(conditions):
        keep = slice(None) if condition is None else y == condition
        c, v = codes[keep], values[keep]
        rows[s] = np.bincount(c, minlength=len(labels))
        total[s] = np.bincount(c, weights=v, minlength=len(labels))
        total_sq[s] = np.bincount(c, weights=v * v, minlength=len(labels))
    if metric not in _SOFT:
        total = np.round(total)
        total_sq = total
    return GapCounts(metric, labels, rows, np.minimum(total, rows), np.minimum(total_sq, total))


@dataclass(frozen=True)
class GapBound:
    """A confidence bound on one model's population gap.

    ``upper`` is the upper confidence bound at ``confidence`` (NaN when the
    gap is undefined, with ``reason`` saying why), ``lower`` the lower end of
    the two-sided interval from the same union bound, ``estimate`` the
    observed gap. ``float(bound)`` is ``upper``.
    """

    metric: str
    confidence: float
    estimate: float
    lower: float
    upper: float
    reason: str | None = None

    def __float__(self) -> float:
        return self.upper


def _cell_bounds(counts: GapCounts, delta: float, soft_bound: str) -> tuple[np.ndarray, np.ndarray]:
    """One-sided lower and upper bounds, each at level ``delta``, on every stratum-group rate."""
    if counts.metric not in _SOFT:
        k = np.round(counts.total).astype(np.int64)
        lower, upper = _bounds(k, counts.rows, np.full(k.shape, delta), (False, True))
        return lower, upper
    n = counts.rows.astype(np.float64)
    mean = counts.total / n
    if soft_bound == "hoeffding":
        width = np.sqrt(math.log(1 / delta) / (2 * n))
    else:
        variance = np.maximum(counts.total_sq - n * mean * mean, 0.0) / (n - 1)
        log_term = math.log(2 / delta)
        width = np.sqrt(2 * variance * log_term / n) + 7 * log_term / (3 * (n - 1))
    return np.maximum(mean - width, 0.0), np.minimum(mean + width, 1.0)


def gap_upper_bound(metric: str, counts: GapCounts, confidence: float = 0.95, *,
                    soft_bound: str = "hoeffding") -> GapBound:
    """Upper confidence bound at ``confidence`` on the population gap of one model, from its :class:`GapCounts`.

    Rate gaps: Clopper-Pearson bounds; soft gaps: Hoeffding or empirical
    Bernstein (``soft_bound``); all ``2 G S`` per-group bounds at level
    ``(1 - confidence) / (2 G S)`` (see the module docstring). Returns a
    :class:`GapBound`; an undefined gap gives NaN bounds and a ``reason``.
    """
    _check_metric(metric)
    confidence = _check_confidence(confidence)
    _check_soft_bound(soft_bound)
    if counts.metric != metric:
        raise ValueError(f"the counts were made for {counts.metric!r}, not {metric!r}")
    reason = undefined_reason(counts, soft_bound)
    if reason is not None:
        nan = float("nan")
        return GapBound(metric, confidence, nan, nan, nan, reason)
    strata, n_groups = counts.rows.shape
    lower, upper = _cell_bounds(counts, (1 - confidence) / (2 * n_groups * strata), soft_bound)
    high = (upper.max(axis=1) - lower.min(axis=1)).max()
    low = np.maximum(lower.max(axis=1) - upper.min(axis=1), 0.0).max()
    return GapBound(metric, confidence, counts.estimate(), float(low), float(min(high, 1.0)))


def gap_upper_bound_from_data(metric: str, y_true: Any, y_pred_or_score: Any, sensitive_features: Any,
                              confidence: float = 0.95, *, soft_bound: str = "hoeffding",
                              all_groups: Sequence | None = None) -> GapBound:
    """:func:`gap_upper_bound` of :func:`gap_counts` of the rows (arrays of shape ``(n,)``)."""
    counts = gap_counts(y_true, y_pred_or_score, sensitive_features, metric, all_groups=all_groups)
    return gap_upper_bound(metric, counts, confidence, soft_bound=soft_bound)


def _bootstrap_gaps(metric: str, y_true: Any, y_pred_or_score: Any, groups: Any, n_boot: int,
                    seed: int) -> np.ndarray:
    """Gaps of ``n_boot`` resamples, each drawn with replacement within every (label, group) cell of the metric.

    Cells in stratum order (:attr:`GapCounts.conditions`), groups sorted;
    each replicate draws ``rng.integers(0, n_cell, n_cell)`` per cell in turn.
    """
    counts = gap_counts(y_true, y_pred_or_score, groups, metric)
    y = _binary("y_true", y_true)
    values = np.asarray(y_pred_or_score, dtype=np.float64).reshape(-1)
    labels, codes = _groups(groups)
    cells = []
    for condition in counts.conditions:
        for g in range(labels.size):
            rows = (codes == g) if condition is None else (codes == g) & (y == condition)
            cells.append(values[rows])
    rng = np.random.default_rng(seed)
    strata, n_groups = counts.rows.shape
    means = np.empty((n_boot, strata * n_groups))
    for b in range(n_boot):
        for c, cell in enumerate(cells):
            means[b, c] = cell[rng.integers(0, cell.size, cell.size)].mean()
    means = means.reshape(n_boot, strata, n_groups)
    return (means.max(axis=2) - means.min(axis=2)).max(axis=1)


def gap_interval(metric: str, y_true: Any, y_pred_or_score: Any, *, sensitive_features: Any,
                 confidence: float = 0.95, method: str = "exact", n_boot: int = 2000, seed: int = 0,
                 soft_bound: str = "hoeffding", all_groups: Sequence | None = None) -> tuple[float, float]:
    """A ``confidence`` interval ``(lo, hi)`` on the population gap ``metric`` of predictions or scores.

    ``method="exact"``: finite-sample and conservative, the lower and upper
    ends of the union bound of :func:`gap_upper_bound` (Clopper-Pearson per
    group for the rate gaps, ``soft_bound`` for the soft ones); ``hi`` equals
    the upper bound at the same ``confidence``. ``method="bootstrap"``: the
    percentile bootstrap with ``n_boot`` resamples (seeded by ``seed``)
    drawn within each group (and each true label for ``eo``, ``eopp``,
    ``soft_eo``), so group sizes stay fixed; approximate, not a guarantee,
    and biased upwards when the true gap is near 0 (a spread of noisy rates).
    An undefined gap (see ``all_groups`` of :func:`gap_counts`) gives
    ``(nan, nan)`` with a ``RuntimeWarning`` naming the group.
    """
    if method not in ("exact", "bootstrap"):
        raise ValueError(f"method must be 'exact' or 'bootstrap', got {method!r}")
    confidence = _check_confidence(confidence)
    counts = gap_counts(y_true, y_pred_or_score, sensitive_features, metric, all_groups=all_groups)
    reason = undefined_reason(counts, soft_bound if method == "exact" else "hoeffding")
    if reason is not None:
        warnings.warn(f"no interval for an undefined gap: {reason}", RuntimeWarning, stacklevel=2)
        return float("nan"), float("nan")
    if method == "exact":
        bound = gap_upper_bound(metric, counts, confidence, soft_bound=soft_bound)
        return bound.lower, bound.upper
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    gaps = _bootstrap_gaps(metric, y_true, y_pred_or_score, sensitive_features, int(n_boot), seed)
    lo, hi = np.quantile(gaps, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def _named_interval(metric: str, fairlearn_name: str) -> Callable[..., tuple[float, float]]:
    def interval(y_true: Any, y_pred: Any, *, sensitive_features: Any, confidence: float = 0.95,
                 method: str = "exact", **options: Any) -> tuple[float, float]:
        return gap_interval(metric, y_true, y_pred, sensitive_features=sensitive_features, confidence=confidence,
                            method=method, **options)

    interval.__name__ = interval.__qualname__ = f"{fairlearn_name}_interval"
    interval.__doc__ = (f"``confidence`` interval ``(lo, hi)`` on the population gap that "
                        f":func:`fairbinn.core.metrics.{fairlearn_name}` measures; fairlearn's signature plus "
                        "``confidence`` and ``method`` (see :func:`gap_interval`).")
    return interval


demographic_parity_difference_interval = _named_interval("dp", "demographic_parity_difference")
equalized_odds_difference_interval = _named_interval("eo", "equalized_odds_difference")
equal_opportunity_difference_interval = _named_interval("eopp", "equal_opportunity_difference")
soft_demographic_parity_difference_interval = _named_interval("soft_dp", "soft_demographic_parity_difference")
soft_equalized_odds_difference_interval = _named_interval("soft_eo", "soft_equalized_odds_difference")


def equal_rate_counts(metric: str, y_true: Any, groups: Any, *, all_groups: Sequence | None = None) -> GapCounts:
    """The counts of a model with the same rate in every group (and label): the share of positive labels.

    Its :func:`gap_upper_bound` is the smallest bound rows like these can give a model that predicts both
    classes at the base rate: a budget below it cannot be certified on them (a model predicting one class
    for every row can still be, with a rate near 0 or 1).
    """
    cells = gap_counts(y_true, y_true, groups, metric, all_groups=all_groups)  # rows per (label, group) cell
    share = float(np.mean(_binary("y_true", y_true)))
    soft = metric in _SOFT
    total = cells.rows * share if soft else np.round(cells.rows * share)
    return GapCounts(metric, cells.groups, cells.rows, total, total * share if soft else total)


def rows_needed(metric: str, counts: GapCounts, budget: float, confidence: float = 0.95, *,
                soft_bound: str = "hoeffding", max_rows: int = 2 ** 24) -> float:
    """Roughly how many rows per group would let the bound meet ``budget`` at the observed rates.

    The smallest ``n`` (found by doubling, then bisection to about 2%) such
    that, if every group had ``n`` rows of each conditioning kind (``n``
    positives and ``n`` negatives per group for ``eo``) with the rates (and,
    for ``soft_bound="bernstein"``, the variances) observed in ``counts``,
    :func:`gap_upper_bound` would be ``<= budget``. Rate counts are rounded
    to whole predictions, so the answer is rough. ``math.inf`` when the
    observed gap already reaches the budget (no amount of rows helps), when
    the gap is undefined, or beyond ``max_rows``.
    """
    confidence = _check_confidence(confidence)
    estimate = counts.estimate()
    if math.isnan(estimate) or estimate >= budget:
        return math.inf
    rates = counts.rates()
    mean_sq = counts.total_sq / np.maximum(counts.rows, 1)

    def meets(n: int) -> bool:
        total = rates * n if metric in _SOFT else np.round(rates * n)
        total_sq = mean_sq * n if metric in _SOFT else total
        hypothetical = GapCounts(metric, counts.groups, np.full(rates.shape, n), total, np.minimum(total_sq, total))
        return gap_upper_bound(metric, hypothetical, confidence, soft_bound=soft_bound).upper <= budget

    n = 2
    while not meets(n):
        if n >= max_rows:
            return math.inf
        n = min(2 * n, max_rows)
    low, high = n // 2, n  # low fails (or is below the start), high meets
    while high - low > max(1, high // 50):
        middle = (low + high) // 2
        low, high = (low, middle) if meets(middle) else (middle, high)
    return high


# ----------------------------------------------------------------------------------------------- certification

BoundFn = Callable[[int, float], float]


def _check_order(order: Sequence[int], n_candidates: int | None) -> tuple[int, ...]:
    order = tuple(int(i) for i in order)
    if not order:
        raise ValueError("order is empty: give at least one candidate index to test")
    if len(set(order)) != len(order):
        raise ValueError(f"order repeats a candidate: {list(order)}")
    limit = n_candidates if n_candidates is not None else math.inf
    bad = [i for i in order if not 0 <= i < limit]
    if bad:
        raise ValueError(f"order holds candidate indices outside 0..{limit - 1}: {bad}")
    return order


def _bound_function(candidates: Sequence[GapCounts] | BoundFn, metric: str | None,
                    soft_bound: str) -> tuple[BoundFn, str, int | None]:
    """``(bound(index, confidence) -> (upper, reason), metric, number of candidates or None)``."""
    if callable(candidates):
        if metric is None:
            raise ValueError("give metric= when the candidates are a bound function")
        _check_metric(metric)
        return (lambda i, c: (float(candidates(i, c)), None)), metric, None
    candidates = list(candidates)
    if not candidates:
        raise ValueError("no candidates given")
    if not all(isinstance(c, GapCounts) for c in candidates):
        raise ValueError("candidates must be GapCounts (one per candidate) or a function bound(index, confidence)")
    metrics = {c.metric for c in candidates}
    if len(metrics) > 1 or (metric is not None and metrics != {metric}):
        raise ValueError(f"the candidates' counts are for {sorted(metrics)}, expected one metric"
                         + (f" ({metric!r})" if metric is not None else ""))
    found = metrics.pop()

    def bound(i: int, c: float) -> tuple[float, str | None]:
        result = gap_upper_bound(found, candidates[i], c, soft_bound=soft_bound)
        return result.upper, result.reason

    return bound, found, len(candidates)


@dataclass(frozen=True)
class Certification:
    """Outcome of :func:`certify_candidates`.

    ``tested`` lists the candidates tested, in order, with their
    ``upper_bounds`` at ``test_confidence`` (``confidence`` for fixed-sequence
    testing, ``1 - (1 - confidence) / m`` for Bonferroni over ``m``
    candidates); ``certified`` those whose bound met the budget; ``stopped_at``
    the candidate whose failure ended fixed-sequence testing (None otherwise);
    ``reasons`` why a candidate's bound is NaN.
    """

    metric: str
    method: str
    confidence: float
    budget: float
    test_confidence: float
    tested: tuple[int, ...]
    upper_bounds: tuple[float, ...]
    certified: tuple[int, ...]
    stopped_at: int | None = None
    reasons: dict = field(default_factory=dict)


def certify_candidates(candidates: Sequence[GapCounts] | BoundFn, order: Sequence[int], budget: float,
                       confidence: float = 0.95, *, method: str = "fixed_sequence", metric: str | None = None,
                       soft_bound: str = "hoeffding") -> Certification:
    """Certify candidates whose population gap is ``<= budget``, controlling the family-wise error.

    ``candidates``: one :class:`GapCounts` per candidate (from the
    certification rows), or a function ``bound(index, confidence)`` returning
    a candidate's upper confidence bound (then ``metric`` names the gap).
    ``order``: candidate indices, fixed without the certification rows.

    ``method="fixed_sequence"``: test the candidates in ``order``, each at the
    full ``confidence``, certifying each whose bound is ``<= budget`` and
    stopping at the first that fails (or has an undefined bound).
    ``method="bonferroni"``: ``order`` is a shortlist of ``m`` candidates,
    each tested at ``1 - (1 - confidence) / m``. Either way, with probability
    at least ``confidence`` no certified candidate has population gap above
    ``budget`` (see the module docstring for the assumptions).
    """
    if method not in CERTIFY_METHODS:
        raise ValueError(f"method must be one of {', '.join(CERTIFY_METHODS)}, got {method!r}")
    confidence = _check_confidence(confidence)
    _check_soft_bound(soft_bound)
    budget = float(budget)
    if not 0 <= budget <= 1:
        raise ValueError(f"budget must lie in [0, 1] (a gap of rates), got {budget}")
    bound, metric, n_candidates = _bound_function(candidates, metric, soft_bound)
    order = _check_order(order, n_candidates)
    level = confidence if method == "fixed_sequence" else 1 - (1 - confidence) / len(order)
    tested, bounds, certified, reasons, stopped = [], [], [], {}, None
    for index in order:
        upper, reason = bound(index, level)
        tested.append(index)
        bounds.append(upper)
        if reason is not None:
            reasons[index] = reason
        if upper <= budget:  # False for NaN
            certified.append(index)
        elif method == "fixed_sequence":
            stopped = index
            break
    return Certification(metric, method, confidence, budget, level, tuple(tested), tuple(bounds),
                         tuple(certified), stopped, reasons)


@dataclass(frozen=True)
class Certificate:
    """The certificate of a chosen candidate.

    ``certified`` True states: with probability at least ``confidence`` over
    the certification rows, the population ``metric`` gap of ``candidate`` is
    ``<= budget`` (jointly with every other candidate certified alongside it).
    ``upper_bound`` is the candidate's bound at ``test_confidence``;
    ``estimate`` its observed gap (NaN when not known); ``message`` explains
    a failure.
    """

    confidence: float
    metric: str
    budget: float
    upper_bound: float
    certified: bool
    candidate: int
    method: str = "fixed_sequence"
    test_confidence: float = float("nan")
    estimate: float = float("nan")
    rows_needed: float = float("nan")
    message: str = ""

    def to_dict(self) -> dict:
        """The fields as a plain dict (``rows_needed`` may be ``inf``, unknown values are NaN)."""
        return asdict(self)


def choose_certified(candidates: Sequence[GapCounts] | BoundFn, order: Sequence[int], accuracy: Sequence[float],
                     budget: float, confidence: float = 0.95, *, method: str = "fixed_sequence",
                     metric: str | None = None, soft_bound: str = "hoeffding") -> tuple[int, Certificate]:
    """Choose the most accurate certified candidate; returns ``(index, certificate)``.

    Runs :func:`certify_candidates` and, among the certified candidates,
    returns the one with the highest ``accuracy[index]`` (ties: earliest in
    ``order``). When none certifies, returns the candidate of ``order`` with
    the smallest upper bound at the test level, with ``certified=False`` and a
    message giving that bound and (for :class:`GapCounts` candidates) roughly
    how many rows per group would be needed (:func:`rows_needed`).
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    result = certify_candidates(candidates, order, budget, confidence, method=method, metric=metric,
                                soft_bound=soft_bound)
    order = _check_order(order, None)
    bad = [i for i in order if i >= accuracy.size or not np.isfinite(accuracy[i])]
    if bad:
        raise ValueError(f"accuracy must give a finite score for every candidate of order; missing or not finite "
                         f"for {bad}")
    common = {"confidence": result.confidence, "metric": result.metric, "budget": result.budget,
              "method": result.method, "test_confidence": result.test_confidence}
    counts = None if callable(candidates) else list(candidates)

    def estimate(i: int) -> float:
        return counts[i].estimate() if counts is not None else float("nan")

    if result.certified:
        chosen = max(result.certified, key=lambda i: (accuracy[i], -order.index(i)))
        upper = result.upper_bounds[result.tested.index(chosen)]
        return chosen, Certificate(upper_bound=upper, certified=True, candidate=chosen, estimate=estimate(chosen),
                                   **common)
    bound, _, _ = _bound_function(candidates, result.metric, soft_bound)
    known = dict(zip(result.tested, result.upper_bounds))
    uppers = {i: known[i] if i in known else bound(i, result.test_confidence)[0] for i in order}
    finite = [i for i in order if not math.isnan(uppers[i])]
    if not finite:
        chosen = order[0]
        why = "; ".join(result.reasons.values()) or "the bounds are NaN"
        message = f"no candidate certified: no bound could be computed ({why})"
        return chosen, Certificate(upper_bound=float("nan"), certified=False, candidate=chosen,
                                   estimate=estimate(chosen), message=message, **common)
    chosen = min(finite, key=lambda i: (uppers[i], order.index(i)))
    needed = (rows_needed(result.metric, counts[chosen], result.budget, result.test_confidence,
                          soft_bound=soft_bound) if counts is not None else float("nan"))
    message = (f"no candidate certified: the smallest upper bound on {result.metric} at confidence "
               f"{result.test_confidence:.6g} is {uppers[chosen]:.4f} (candidate {chosen}), above the budget "
               f"{result.budget:g}")
    if result.stopped_at is not None:
        message += f"; fixed-sequence testing stopped at the first candidate of the order, {result.stopped_at}"
    if counts is not None:
        kind = "rows" if result.metric in ("dp", "soft_dp") else "rows of each conditioning label"
        if math.isinf(needed):
            gap = estimate(chosen)
            message += (f"; its observed gap {gap:.4f} already reaches the budget, more validation rows would not "
                        "certify it" if gap >= result.budget else f"; more than {2 ** 24} {kind} per group would be "
                        "needed")
        else:
            message += f"; about {needed} validation {kind} per group would be needed at the observed rates"
    return chosen, Certificate(upper_bound=uppers[chosen], certified=False, candidate=chosen,
                               estimate=estimate(chosen), rows_needed=needed, message=message, **common)


def split_for_certification(groups: Any, labels: Any = None, fraction: float = 0.5,
                            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into a selection part and a certification part, stratified by (group, label).

    Within every (group, label) cell (group only when ``labels`` is None), a
    share ``fraction`` of the rows, rounded half up, goes to the
    certification part at random (``seed``). Returns ``(selection,
    certification)``: sorted integer index arrays that partition
    ``range(n)``. Fit the test order on the selection part and certify on the
    other.
    """
    fraction = float(fraction)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction (the certification share) must lie strictly between 0 and 1, got {fraction}")
    _, group_codes = _groups(groups)
    if labels is None:
        cell = group_codes
    else:
        _, label_codes = _groups(labels)
        _same_length(groups=group_codes, labels=label_codes)
        cell = group_codes * (label_codes.max() + 1) + label_codes
    rng = np.random.default_rng(seed)
    certification = []
    for code in np.unique(cell):
        rows = np.flatnonzero(cell == code)
        take = int(math.floor(fraction * rows.size + 0.5))
        certification.append(rng.permutation(rows)[:take])
    certification = np.sort(np.concatenate(certification))
    selection = np.setdiff1d(np.arange(cell.size), certification)
    for name, part in (("selection", selection), ("certification", certification)):
        if part.size == 0:
            raise ValueError(f"fraction {fraction} leaves the {name} part empty ({cell.size} rows)")
    return selection, certification
