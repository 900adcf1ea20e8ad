"""Accuracy-fairness fronts: the non-dominated points, the area they cover, accuracy at budgets.

A point is a trained model (one strategy, eta, seed and selected epoch) with
an accuracy (higher is better) and an unfairness such as DP (lower is
better). Selection is honest: which points make a curve, and which point
answers a budget, is decided on validation metrics; test metrics are only read
for the points so chosen (see :func:`accuracy_at_budgets`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["pareto_front", "area_over_curve", "accuracy_at_budgets", "DP_BUDGETS"]

DP_BUDGETS = (0.01, 0.02, 0.05, 0.10)
"""Default unfairness budgets of :func:`accuracy_at_budgets`."""


def _pairs(points: Any) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2): (accuracy, unfairness) pairs; got {array.shape}")
    return array


def pareto_front(
    points: Any, *, accuracy: str = "accuracy", unfairness: str = "dp"
) -> np.ndarray | pd.DataFrame:
    """The points no other point beats on both accuracy (up) and unfairness (down).

    Parameters
    ----------
    points : array-like of shape (n, 2), or DataFrame
        ``(accuracy, unfairness)`` pairs; or a DataFrame whose columns
        ``accuracy`` and ``unfairness`` hold them.
    accuracy, unfairness : str, default "accuracy" and "dp"
        Column names, for a DataFrame.

    Returns
    -------
    For an array, the indices of the front's points; for a DataFrame, its
    rows on the front. Either is sorted by increasing unfairness (so also by
    increasing accuracy). Point ``i`` is on the front unless some ``j`` has
    ``accuracy_j >= accuracy_i`` and ``unfairness_j <= unfairness_i`` with
    one of the two strict; equal points are all kept. Points with a NaN
    coordinate are never on the front.
    """
    if isinstance(points, pd.DataFrame):
        missing = [c for c in (accuracy, unfairness) if c not in points.columns]
        if missing:
            raise ValueError(f"the DataFrame has no column(s) {missing}; it has {list(points.columns)}")
        return points.iloc[pareto_front(points[[accuracy, unfairness]].to_numpy())]
    pairs = _pairs(points)
    valid = np.flatnonzero(~np.isnan(pairs).any(axis=1))
    # by unfairness ascending, then accuracy descending: a point is on the front
    # when its accuracy beats every point before it (ties on both kept)
    order = valid[np.lexsort((-pairs[valid, 0], pairs[valid, 1]))]
    front: list[int] = []
    best = -np.inf
    for index in order:
        acc, unf = pairs[index]
        if acc > best:
            front.append(index)
            best = acc
        elif acc == best and front and pairs[front[-1], 1] == unf:
            front.append(index)
    return np.asarray(front, dtype=np.int64)


def area_over_curve(points: Any, reference: Sequence[float] | None = None) -> float:
    """Area of the accuracy-unfairness region the front dominates, up to a worst corner.

    With the front's points ``(a_i, u_i)`` sorted by unfairness ``u_1 < u_2 <
    ...`` and the reference corner ``(a_ref, u_ref)``, this is the area of
    ``{(u, a): u <= u_ref, a >= a_ref, and some point has u_i <= u, a_i >= a}``::

        sum_i (min(u_{i+1}, u_ref) - u_i) * (a_i - a_ref)    with u_{n+1} = u_ref

    over the points inside the corner (``a_i > a_ref``, ``u_i < u_ref``): the
    2-D hypervolume of the front. Larger is better; it grows when a point moves
    up (more accurate) or left (fairer). Units are accuracy x unfairness.

    Parameters
    ----------
    points : array-like of shape (n, 2)
        ``(accuracy, unfairness)`` pairs (any points; the front is taken here).
    reference : (accuracy, unfairness), optional
        The worst corner. Default: the lowest accuracy and the highest
        unfairness among ``points``. Compare fronts only under one reference.
    """
    pairs = _pairs(points)
    pairs = pairs[~np.isnan(pairs).any(axis=1)]
    if len(pairs) == 0:
        return 0.0
    if reference is None:
        reference = (pairs[:, 0].min(), pairs[:, 1].max())
    a_ref, u_ref = (float(v) for v in reference)
    front = pairs[pareto_front(pairs)]
    front = front[(front[:, 0] > a_ref) & (front[:, 1] < u_ref)]
    if len(front) == 0:
        return 0.0
    widths = np.diff(np.append(front[:, 1], u_ref))
    return float(np.sum(widths * (front[:, 0] - a_ref)))


def accuracy_at_budgets(
    table: pd.DataFrame,
    budgets: Sequence[float] = DP_BUDGETS,
    *,
    fairness: str = "dp",
    by: Sequence[str] = ("strategy",),
    per: Sequence[str] = ("seed",),
    certified: bool = False,
) -> pd.DataFrame:
    """For each budget, the most accurate point that meets it, chosen on validation.

    With ``certified=True`` a point meets a budget when it is certified to
    (the rule of :class:`~fairbinn.core.selection.CertifiedSelector`, on a
    table with the ``val_bound`` and ``order_bound`` columns that a sweep
    with a certified budget records): within each group the rows are tested
    in increasing ``order_bound`` (ties: eta, seed, epoch), stopping at the
    first whose ``val_bound`` exceeds the budget; the candidates are the rows
    before the stop.

    Within each group of ``table`` (``by`` plus ``per`` columns, e.g. one
    strategy and one seed), the candidates for budget ``b`` are the rows with
    ``val_<fairness> <= b``; the chosen one has the highest
    ``val_accuracy`` (ties: the lower validation unfairness, then the first
    row). Its test metrics are reported as they are. Choosing the candidate
    with the best *test* accuracy would select on the test split, which this
    function never does.

    Parameters
    ----------
    table : DataFrame
        One row per point, as :func:`fairbinn.sweep` returns: the ``by`` and
        ``per`` columns, ``val_accuracy``, ``val_<fairness>`` and the ``test_``
        columns.
    budgets : sequence of float, default (0.01, 0.02, 0.05, 0.10)
    fairness : str, default "dp"
        The unfairness metric of the budget ("dp", "soft_dp", "eo", ...).
    by, per : sequence of str
        Grouping columns; ``per`` groups (seeds) are reported separately so
        their spread can be shown.

    Returns
    -------
    DataFrame with one row per (group, budget): the group's columns,
    ``budget``, ``found`` (False when no row meets the budget; the metrics
    are then NaN), and the chosen row's remaining columns.
    """
    keys = [*by, *per]
    needed = [*keys, "val_accuracy", f"val_{fairness}", *(("val_bound", "order_bound") if certified else ())]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"the table has no column(s) {missing}")
    rows = []
    for group, part in table.groupby(keys, sort=True, dropna=False):
        group = group if isinstance(group, tuple) else (group,)
        if certified:
            ties = [c for c in ("eta", "seed", "epoch") if c in part.columns]
            part = part.assign(_order=part["order_bound"].fillna(float("inf"))).sort_values(
                ["_order", *ties], kind="stable").drop(columns="_order")
        for budget in budgets:
            if certified:
                failed = ~(part["val_bound"] <= budget).to_numpy()
                ok = part.iloc[:int(failed.argmax()) if failed.any() else len(part)]
            else:
                ok = part[part[f"val_{fairness}"] <= budget]
            base = {**dict(zip(keys, group)), "budget": float(budget)}
            if ok.empty:
                rows.append({**base, "found": False})
                continue
            ranking = ["val_accuracy"] if certified else ["val_accuracy", f"val_{fairness}"]  # certified: ties
            chosen = ok.sort_values(ranking, ascending=[False, True][:len(ranking)], kind="stable")  # keep the order
            rows.append({**base, "found": True, **chosen.iloc[0].drop(labels=keys).to_dict()})
    return pd.DataFrame(rows)
