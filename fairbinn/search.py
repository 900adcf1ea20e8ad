"""Automatic eta: find where the validation gap leaves ERM's level and reaches ~0, then fill that interval.

Where the accuracy-fairness trade-off lives depends on the dataset, the
constraint and the strategy (on Adult with the squared DP gap, between eta
about 1 and 100; with the released code's loss about twenty times higher).
:func:`search_etas` finds it from validation data alone (or, for a
certified budget, from the gap on the training rows, which leaves every
validation row to the certificate):

1. a **coarse pass**: log-spaced etas (one per decade, and 0 for ERM's
   level), trained for a fraction of the epochs;
2. the **transition**: ``hi`` is the smallest eta whose validation gap is
   ~0 (at most ``near_zero`` times ERM's gap, or the budget when smaller),
   ``lo`` the largest eta below it whose gap is still at ERM's level (at
   least ``level_drop`` times ERM's);
3. a **refined pass**: ``refined`` log-spaced etas strictly inside
   ``(lo, hi)`` (the geometric midpoints of ``refined`` equal steps, so none
   repeats a coarse eta), trained for all the epochs.

Every checkpoint of both passes is a candidate for the budgets; test metrics
are never read here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import pandas as pd

from .core.metrics import GAP_METRICS

__all__ = ["EtaSearch", "search_etas", "gap_levels", "transition", "refined_etas"]


@dataclass(frozen=True)
class EtaSearch:
    """Settings of :func:`search_etas`.

    Attributes
    ----------
    coarse : tuple of float, default (0, 0.01, 0.1, 1, 10, 100, 1000, 10000)
        The coarse pass's etas (sorted, >= 0; the smallest gives ERM's level,
        so 0 belongs there).
    refined : int, default 8
        Etas added inside the transition interval (16 in all by default).
    coarse_epochs : float, default 0.2
        The coarse pass trains for this fraction of the epochs (at least 1):
        it only has to locate the transition.
    level_drop : float, default 0.8
        A gap at least this fraction of ERM's counts as ERM's level.
    near_zero : float, default 0.1
        A gap at most this fraction of ERM's counts as ~0 (or at most the
        budget, when one is given and smaller).
    """

    coarse: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
    refined: int = 8
    coarse_epochs: float = 0.2
    level_drop: float = 0.8
    near_zero: float = 0.1

    def __post_init__(self) -> None:
        coarse = tuple(float(eta) for eta in self.coarse)
        problems = []
        if len(coarse) < 2 or any(not math.isfinite(e) or e < 0 for e in coarse) or list(coarse) != sorted(set(coarse)):
            problems.append("coarse must hold at least two distinct, increasing, finite etas >= 0, "
                            f"got {self.coarse!r}")
        if not isinstance(self.refined, int) or isinstance(self.refined, bool) or self.refined < 1:
            problems.append(f"refined must be a positive integer, got {self.refined!r}")
        if not 0 < self.coarse_epochs <= 1:
            problems.append(f"coarse_epochs must be in (0, 1], got {self.coarse_epochs!r}")
        if not 0 < self.near_zero < self.level_drop <= 1:
            problems.append(f"need 0 < near_zero < level_drop <= 1, got {self.near_zero!r} and {self.level_drop!r}")
        if problems:
            raise ValueError("invalid eta search: " + "; ".join(problems))
        object.__setattr__(self, "coarse", coarse)

    def epochs_of_coarse_pass(self, epochs: int) -> int:
        return max(1, round(epochs * self.coarse_epochs))


def gap_levels(table: pd.DataFrame, metric: str = "dp", column: str | None = None) -> pd.Series:
    """Per eta, the level of the validation gap: the median over the later half of each model's epochs,
    averaged over the seeds. ``table`` has one row per (eta, seed, epoch) with ``val_<metric>`` (or
    ``column``, e.g. ``order_gap``: the gap on the training rows)."""
    column = column or f"val_{metric}"
    missing = [c for c in ("eta", "seed", "epoch", column) if c not in table.columns]
    if missing:
        raise ValueError(f"the table has no column(s) {missing}")
    last = table.groupby(["eta", "seed"])["epoch"].transform("max")
    later = table[table["epoch"] > last / 2]
    return later.groupby(["eta", "seed"])[column].median().groupby("eta").mean().sort_index()


def transition(levels: pd.Series, search: EtaSearch = EtaSearch(), budget: float | None = None) -> tuple[float, float]:
    """``(lo, hi)``: the interval of eta over which the gap levels move from ERM's to ~0 (``0 < lo < hi``).

    ``levels`` is indexed by increasing eta; the first is ERM's level. When
    no eta reaches ~0, ``hi`` is the largest eta; when even the smallest
    positive eta has left ERM's level, ``lo`` is a tenth of it.
    """
    levels = levels.sort_index()
    etas = levels.index.to_numpy(dtype=float)
    erm = float(levels.iloc[0])
    positive = etas[etas > 0]
    if len(positive) == 0:
        raise ValueError("the coarse pass needs a positive eta")
    if not math.isfinite(erm) or erm <= 0:  # nothing to trade: spread the refined etas over the whole range
        return float(positive[0]) / 10, float(positive[-1])
    target = search.near_zero * erm if budget is None else min(search.near_zero * erm, budget)
    reached = [eta for eta, level in levels.items() if eta > 0 and level <= target]
    hi = float(reached[0]) if reached else float(positive[-1])
    flat = [eta for eta, level in levels.items() if 0 < eta < hi and level >= search.level_drop * erm]
    lo = float(flat[-1]) if flat else float(positive[0]) / 10
    if lo >= hi:  # hi is the smallest positive eta
        lo = hi / 10
    return lo, hi


def refined_etas(lo: float, hi: float, count: int) -> list[float]:
    """``count`` etas strictly inside ``(lo, hi)``: the geometric midpoints of ``count`` equal log-steps."""
    step = (math.log(hi) - math.log(lo)) / count
    return [float(math.exp(math.log(lo) + (k + 0.5) * step)) for k in range(count)]


def search_etas(
    train: Callable[[Sequence[float], int], pd.DataFrame],
    epochs: int,
    *,
    metric: str = "dp",
    budget: float | None = None,
    search: EtaSearch | None = None,
    column: str | None = None,
) -> pd.DataFrame:
    """Run the coarse and the refined pass; every checkpoint of both, as one table.

    Parameters
    ----------
    train : callable ``(etas, epochs) -> DataFrame``
        Trains one model per (eta, seed) and returns one row per (eta, seed,
        epoch) with at least ``eta``, ``seed``, ``epoch`` and
        ``val_<metric>`` (e.g. a stacked pass of :func:`fairbinn.sweep`).
    epochs : int
        Epochs of the refined pass (the coarse pass trains
        ``search.coarse_epochs`` of them).
    metric : str, default "dp"
        The gap whose transition is searched (the budget's metric).
    budget : float, optional
        A budget on that gap: ~0 then means at most the budget when that is
        smaller than ``near_zero`` times ERM's gap.
    column : str, optional
        The table's column holding the gap (default ``val_<metric>``). A
        certified budget searches on ``order_gap``, the gap on the training
        rows, so that no validation row decides which models are trained.

    Returns
    -------
    The two passes' tables with a column ``search`` ("coarse" or "refined").
    """
    if metric not in GAP_METRICS:
        raise ValueError(f"metric must be one of {', '.join(GAP_METRICS)}, got {metric!r}")
    search = search or EtaSearch()
    coarse = train(search.coarse, search.epochs_of_coarse_pass(epochs)).assign(search="coarse")
    lo, hi = transition(gap_levels(coarse, metric, column), search, budget)
    refined = train(refined_etas(lo, hi, search.refined), epochs).assign(search="refined")
    return pd.concat([coarse, refined], ignore_index=True)
