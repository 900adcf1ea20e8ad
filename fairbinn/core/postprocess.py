"""Group-threshold post-processing: one decision threshold per group, fitted and certified on held-out rows.

Any trained binary classifier that returns one logit per example (ERM,
Lagrangian, FairBiNN; tabular, graph or image) keeps its scores; only the
decision changes: a row of group ``g`` is predicted positive when its score
(the predicted probability) is at least the group's threshold ``t_g``. The
thresholds maximise validation accuracy subject to a budget on a gap of the
decisions, ``dp``, ``eopp`` or ``eo`` (the soft gaps are gaps of the scores,
which thresholds do not change).

How the thresholds are chosen and certified
-------------------------------------------
The held-out rows are split in two parts, stratified by (group, label)
(:func:`~fairbinn.core.certify.split_for_certification`): a *fit* part and a
*certification* part (or the caller passes the two parts). On the fit part,
for each target spread ``t`` of the ladder ``0, b/10, 2b/10, ..., b`` (``b``
the budget) the thresholds that maximise accuracy with gap at most ``t`` are
found exactly over the groups' observed scores (every group's rate inside a
band of width ``t``; the band's lower end runs over the observed rates). The
rungs are then tested in a fixed sequence, as
:class:`~fairbinn.core.selection.CertifiedSelector` tests checkpoints: in
increasing order of the bound predicted from the fit rows (their rates put
into the certification part's row counts), which reads nothing of the
certification rows but their counts; a rung passes when its Clopper-Pearson
upper bound (union bound over groups) on the certification rows is at most
the budget, and testing stops at the first that does not. The most accurate
certified rung (on all held-out rows when they were split) is kept. The certificate states: with probability at least
``confidence`` over the certification rows, the population gap of the
thresholded model is at most the budget, provided the model and the fit part
were chosen without the certification rows (``fairbinn train --postprocess
thresholds`` trains and chooses the model on the fit part only). When no
rung certifies, the thresholds with the smallest bound are kept, with
``certified=False`` and a warning; nothing falls back silently.

Randomised thresholds (``randomized=True``, ``dp`` and ``eopp``) mix two
thresholds per group: a score at or above ``high`` is positive, one in
``[low, high)`` positive with probability ``p``, as fairlearn's
``ThresholdOptimizer`` does; they reach rates between the observed ones, so
they can be more accurate at a tight budget. Their decisions are random:
:meth:`GroupThresholds.predict` takes a ``random_state`` (reports use 0).

Groups are needed at prediction time: :meth:`ThresholdedModel.predict`
takes them, and a group without a threshold (absent from the fit rows) is an
error naming it, never a default threshold.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .certify import gap_counts, split_for_certification
from .metrics import _binary, _same_length, _scores, binary_fairness_report
from .selection import TRAIN_GAP_KEY, CertifiedSelector, certification_record

__all__ = ["THRESHOLD_METRICS", "GroupThresholds", "ThresholdedModel", "thresholds_from_scores", "threshold_candidates",
           "thresholds",
           "threshold_report", "threshold_result", "deciding_with"]

THRESHOLD_METRICS = ("dp", "eopp", "eo")
"""Gaps that per-group thresholds control (gaps of decisions, not of scores)."""
_STRATA = {"dp": (None,), "eopp": (1,), "eo": (0, 1)}
"""Per gap, the true labels whose rates it compares (None: all rows); the order of certify's strata."""
LADDER = 10
"""The certification ladder's steps: target spreads ``budget * j / LADDER`` for ``j = 0 .. LADDER``."""
_MAX_CANDIDATES = 1024
"""Thresholds tried per group: every distinct score, or this many quantiles of them when there are more."""
_EPS = 1e-12


def _check_metric(metric: str, randomized: bool = False) -> None:
    if metric in ("soft_dp", "soft_eo"):
        raise ValueError(f"thresholds cannot control {metric}: it is a gap of mean scores, and thresholds change "
                         f"the decisions, not the scores; use {', '.join(THRESHOLD_METRICS)}")
    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"the threshold metric must be one of {', '.join(THRESHOLD_METRICS)}, got {metric!r}")
    if randomized and metric == "eo":
        raise ValueError("randomised thresholds support dp and eopp; for eo use deterministic thresholds")


@dataclass(frozen=True)
class GroupThresholds:
    """Per-group decision rules on scores in ``[0, 1]``, as plain data.

    Group ``k`` (named ``groups[k]``) predicts 1 for a score ``>= high[k]``,
    1 with probability ``p[k]`` for a score in ``[low[k], high[k])`` and 0
    below ``low[k]``; deterministic thresholds have ``low == high`` and
    ``p == 0``. A threshold of ``inf`` predicts 0 for every score. ``None``
    for a group means it had no fit rows: predicting it is an error.
    ``metric``/``budget``/``target``: the gap bounded, the budget and the
    spread the thresholds were fitted to; ``fit_gap`` and ``val_accuracy``
    their gap on the fit rows and accuracy on all held-out rows;
    ``certificate`` the :class:`~fairbinn.core.certify.Certificate` as a
    dict (None for the point-estimate rule, ``confidence=0``).
    """

    groups: tuple[str, ...]
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]
    p: tuple[float | None, ...]
    metric: str = "dp"
    budget: float = math.nan
    target: float = math.nan
    randomized: bool = False
    fit_gap: float = math.nan
    val_accuracy: float = math.nan
    certificate: dict | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n = len(self.groups)
        if not (len(self.low) == len(self.high) == len(self.p) == n):
            raise ValueError(f"GroupThresholds needs one low, high and p per group: {n} groups, {len(self.low)}, "
                             f"{len(self.high)} and {len(self.p)} values")
        _check_metric(self.metric)
        for k, (lo, hi, q) in enumerate(zip(self.low, self.high, self.p)):
            if (lo is None) != (hi is None) or (lo is None) != (q is None):
                raise ValueError(f"group {self.groups[k]!r}: low, high and p must all be given or all be None")
            if lo is not None and not (lo <= hi and 0 <= q <= 1 and not math.isnan(lo) and not math.isnan(hi)):
                raise ValueError(f"group {self.groups[k]!r}: need low <= high and 0 <= p <= 1, got low={lo}, "
                                 f"high={hi}, p={q}")

    def _codes(self, groups: Any, n: int) -> np.ndarray:
        codes = np.asarray(groups.cpu() if isinstance(groups, Tensor) else groups).reshape(-1)
        if codes.size != n:
            raise ValueError(f"predicting needs the group of every row: {n} scores but {codes.size} group values")
        if codes.dtype.kind not in "iu":
            names = {name: k for k, name in enumerate(self.groups)}
            unknown = sorted({str(g) for g in codes.tolist()} - names.keys())
            if unknown:
                raise ValueError(f"group {unknown[0]!r} has no threshold: the thresholds know groups "
                                 f"{list(self.groups)}")
            codes = np.array([names[str(g)] for g in codes.tolist()], dtype=np.int64)
        outside = codes[(codes < 0) | (codes >= len(self.groups))]
        if outside.size:
            raise ValueError(f"group index {int(outside[0])} has no threshold: the thresholds know "
                             f"{len(self.groups)} groups {list(self.groups)}")
        missing = [self.groups[k] for k in np.unique(codes) if self.low[k] is None]
        if missing:
            raise ValueError(f"group {missing[0]!r} has no threshold: it had no rows where the thresholds were "
                             "fitted, so its decisions are undefined (refit with rows of that group)")
        return codes.astype(np.int64)

    def probabilities(self, scores: Any, groups: Any) -> np.ndarray:
        """The probability of a positive decision per row, shape ``(n,)``: 0 or 1 for deterministic thresholds."""
        scores = np.asarray(scores.detach().cpu() if isinstance(scores, Tensor) else scores,
                            dtype=np.float64).reshape(-1)
        codes = self._codes(groups, scores.size)
        low = np.array([np.inf if v is None else v for v in self.low])[codes]
        high = np.array([np.inf if v is None else v for v in self.high])[codes]
        p = np.array([0.0 if v is None else v for v in self.p])[codes]
        return np.where(scores >= high, 1.0, np.where(scores >= low, p, 0.0))

    def predict(self, scores: Any, groups: Any, random_state: int | np.random.Generator | None = None) -> np.ndarray:
        """0/1 decisions, shape ``(n,)`` int64, for ``scores`` ``(n,)`` and group indices or names ``(n,)``.

        Randomised thresholds draw their random decisions from
        ``random_state`` (a seed or a numpy ``Generator``; None: fresh entropy).
        """
        probability = self.probabilities(scores, groups)
        random = (probability > 0) & (probability < 1)
        decisions = (probability >= 1).astype(np.int64)
        if random.any():
            rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
            decisions[random] = (rng.random(int(random.sum())) < probability[random]).astype(np.int64)
        return decisions

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``inf`` thresholds as the string ``"inf"``); :meth:`from_dict` reads it."""
        def plain(values):
            return [None if v is None else ("inf" if math.isinf(v) else float(v)) for v in values]

        return {"groups": list(self.groups), "low": plain(self.low), "high": plain(self.high), "p": plain(self.p),
                "metric": self.metric, "budget": self.budget, "target": self.target, "randomized": self.randomized,
                "fit_gap": self.fit_gap, "val_accuracy": self.val_accuracy, "certificate": self.certificate}

    @classmethod
    def from_dict(cls, data: Any) -> "GroupThresholds":
        """The thresholds :meth:`to_dict` wrote; a ``ValueError`` naming the field for anything else."""
        if not isinstance(data, dict):
            raise ValueError(f"saved thresholds must be an object, got {type(data).__name__}")
        for key in ("groups", "low", "high", "p"):
            if not isinstance(data.get(key), list):
                raise ValueError(f"saved thresholds: {key!r} must be a list")

        def number(key: str, value: Any) -> float | None:
            if value is None:
                return None
            if value == "inf":
                return math.inf
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise ValueError(f"saved thresholds: {key!r} holds {value!r}, not a number")

        def scalar(key: str) -> float:
            value = data.get(key)
            return math.nan if value is None else float(value)

        return cls(tuple(str(g) for g in data["groups"]),
                   tuple(number("low", v) for v in data["low"]), tuple(number("high", v) for v in data["high"]),
                   tuple(number("p", v) for v in data["p"]), metric=str(data.get("metric", "dp")),
                   budget=scalar("budget"), target=scalar("target"), randomized=bool(data.get("randomized", False)),
                   fit_gap=scalar("fit_gap"), val_accuracy=scalar("val_accuracy"),
                   certificate=data.get("certificate"))


# ------------------------------------------------------------------------------------------------ fitting


@dataclass
class _Curve:
    """One group's deterministic thresholds: ``thresholds (K,)`` ascending (last ``inf``), ``rates (K, S)``
    per stratum and ``correct (K,)`` correctly decided rows."""

    thresholds: np.ndarray
    rates: np.ndarray
    correct: np.ndarray


def _curve(scores: np.ndarray, y: np.ndarray, strata: tuple) -> _Curve:
    distinct = np.unique(scores)
    if distinct.size > _MAX_CANDIDATES:
        distinct = np.unique(np.quantile(scores, np.linspace(0, 1, _MAX_CANDIDATES), method="lower"))
    thresholds = np.append(distinct, np.inf)
    positives, negatives = np.sort(scores[y == 1]), np.sort(scores[y == 0])
    pos_at_least = positives.size - np.searchsorted(positives, thresholds, side="left")
    neg_at_least = negatives.size - np.searchsorted(negatives, thresholds, side="left")
    correct = pos_at_least + (negatives.size - neg_at_least)
    columns = []
    for condition in strata:
        if condition is None:
            columns.append((pos_at_least + neg_at_least) / scores.size)
        elif condition == 1:
            columns.append(pos_at_least / positives.size)
        else:
            columns.append(neg_at_least / negatives.size)
    return _Curve(thresholds, np.stack(columns, axis=1), correct.astype(np.float64))


def _band_starts(curves: list[_Curve], spread: float, randomized: bool) -> np.ndarray:
    """Lower ends of the rate bands to try, shape ``(B, S)``: every observed rate per stratum (their product
    for two strata; for randomised thresholds also each rate minus the spread)."""
    strata = curves[0].rates.shape[1]
    per_stratum = []
    for s in range(strata):
        rates = np.concatenate([c.rates[:, s] for c in curves])
        if randomized:
            rates = np.concatenate([rates, rates - spread])
        rates = np.unique(np.clip(rates, 0, 1))
        limit = 2048 if strata == 1 else 96
        if rates.size > limit:
            rates = np.unique(np.quantile(rates, np.linspace(0, 1, limit), method="lower"))
        per_stratum.append(rates)
    grids = np.meshgrid(*per_stratum, indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


def _best_in_bands(curve: _Curve, starts: np.ndarray, spread: float, randomized: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each band ``[start, start + spread]`` (per stratum): the group's best correct count (``-inf`` when no
    rule fits) and its rule as (low index, high index, p) into ``curve.thresholds``."""
    inside = np.ones((starts.shape[0], curve.thresholds.size), dtype=bool)
    for s in range(starts.shape[1]):
        rate = curve.rates[None, :, s]
        inside &= (rate >= starts[:, s:s + 1] - _EPS) & (rate <= starts[:, s:s + 1] + spread + _EPS)
    score = np.where(inside, curve.correct[None, :], -np.inf)
    best = score.argmax(axis=1)
    value = score[np.arange(best.size), best]
    low, high, p = best.copy(), best.copy(), np.zeros(best.size)
    if randomized:  # one stratum: mixtures of two thresholds reach the band's ends between observed rates
        rate, correct = curve.rates[:, 0], curve.correct
        for end in (starts[:, 0], starts[:, 0] + spread):
            # rates fall as the threshold rises: neighbour k+1 has the lower rate
            k = np.searchsorted(-rate, -end, side="right") - 1  # last threshold with rate >= end
            ok = (k >= 0) & (k + 1 < rate.size)
            k = np.clip(k, 0, rate.size - 2)
            span = rate[k] - rate[k + 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                weight = np.where(span > 0, (end - rate[k + 1]) / span, 1.0)  # probability of the lower threshold
            weight = np.clip(weight, 0, 1)
            mixed = weight * correct[k] + (1 - weight) * correct[k + 1]
            better = ok & (mixed > value + 1e-9) & (end >= -_EPS) & (end <= 1 + _EPS)
            value = np.where(better, mixed, value)
            low = np.where(better, k, low)
            high = np.where(better, k + 1, high)
            p = np.where(better, weight, p)
    return value, np.stack([low, high], axis=1), p


def _fit_target(curves: list[_Curve], spread: float, randomized: bool) -> list[tuple[float, float, float]] | None:
    """The most accurate rules (one ``(low, high, p)`` per group) with every stratum's rates within ``spread``;
    None when no band holds every group."""
    starts = _band_starts(curves, spread, randomized)
    totals = np.zeros(starts.shape[0])
    picks = []
    for curve in curves:
        value, index, p = _best_in_bands(curve, starts, spread, randomized)
        totals += value
        picks.append((index, p))
    if not np.isfinite(totals).any():
        return None
    band = int(np.argmax(totals))
    rules = []
    for curve, (index, p) in zip(curves, picks):
        low, high = curve.thresholds[index[band, 0]], curve.thresholds[index[band, 1]]
        rules.append((float(low), float(high), float(p[band])) if index[band, 0] != index[band, 1]
                     else (float(low), float(low), 0.0))
    return rules


def _arrays(name: str, y: Any, scores: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = _binary(f"{name} y_true", y)
    scores = _scores(f"{name} scores", scores)
    groups = np.asarray(groups.cpu() if isinstance(groups, Tensor) else groups).reshape(-1)
    _same_length(y_true=y, scores=scores, groups=groups)
    if groups.dtype.kind not in "iu" or (groups.size and groups.min() < 0):
        raise ValueError(f"{name} groups must be integer group indices >= 0, got dtype {groups.dtype}")
    return y, scores, groups.astype(np.int64)


def _rules_of(rules: list[tuple[float, float, float] | None], names: tuple[str, ...], metric: str, budget: float,
              target: float, randomized: bool) -> GroupThresholds:
    return GroupThresholds(names, tuple(None if r is None else r[0] for r in rules),
                           tuple(None if r is None else r[1] for r in rules),
                           tuple(None if r is None else r[2] for r in rules),
                           metric=metric, budget=budget, target=target, randomized=randomized)


def _fit(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, names: tuple[str, ...], metric: str,
         budget: float, spread: float, randomized: bool) -> GroupThresholds | None:
    present = [k for k in range(len(names)) if (groups == k).any()]
    strata = _STRATA[metric]
    for k in present:
        for condition in strata:
            if condition is not None and not (y[groups == k] == condition).any():
                raise ValueError(f"group {names[k]!r} has no fit rows with y_true={condition}, which {metric} "
                                 "compares: thresholds cannot be fitted for it")
    curves = [_curve(scores[groups == k], y[groups == k], strata) for k in present]
    fitted = _fit_target(curves, spread, randomized)
    if fitted is None:
        return None
    rules: list = [None] * len(names)
    for k, rule in zip(present, fitted):
        rules[k] = rule
    return _rules_of(rules, names, metric, budget, spread, randomized)


def threshold_candidates(fit: tuple[Any, Any, Any], certify: tuple[Any, Any, Any], *, budget: float,
                         metric: str = "dp", confidence: float = 0.95, randomized: bool = False, seed: int = 0,
                         group_names: Sequence[str] | None = None, accuracy_on_both: bool = False,
                         tiebreak: tuple[float, ...] = ()) -> tuple[CertifiedSelector, list[dict[str, float]]]:
    """The certification ladder's rungs as candidates of a :class:`~fairbinn.core.selection.CertifiedSelector`.

    ``fit`` and ``certify`` are ``(y_true, scores, groups)`` arrays of shape
    ``(n,)``. Rung ``j`` (its "epoch", ``0 .. LADDER``) holds the thresholds
    fitted on ``fit`` to spread ``budget * j / LADDER`` (as its kept state, a
    :class:`GroupThresholds`), ordered by the bound predicted from ``fit``
    and tested on ``certify``; its score is the accuracy on ``certify`` (on
    both parts with ``accuracy_on_both``). The selector can be merged with
    others of the same settings (``tiebreak`` places these rungs among
    them), so that thresholds and checkpoints of several models are tested
    in one fixed sequence.

    Returns ``(selector, rows)``: ``rows`` holds one record per rung
    (``epoch`` = rung, ``target``, ``val_accuracy``, ``val_bound``,
    ``order_bound``, ``order_gap`` and the rung's ``thresholds``).
    """
    _check_metric(metric, randomized)
    fit_part, cert_part = _arrays("fit", *fit), _arrays("certification", *certify)
    count = int(max(fit_part[2].max(initial=-1), cert_part[2].max(initial=-1))) + 1
    names = tuple(str(n) for n in group_names) if group_names is not None else tuple(str(k) for k in range(count))
    missing = sorted({names[k] for k in np.unique(cert_part[2])} - {names[k] for k in np.unique(fit_part[2])})
    if missing:
        raise ValueError(f"group {missing[0]!r} has certification rows but no fit rows, so it would have no "
                         "threshold: give it rows in both parts")
    selector = CertifiedSelector("accuracy", budget=budget, budget_metric=metric, confidence=confidence,
                                 tiebreak=tiebreak)
    records = []
    for j in range(LADDER + 1):
        fitted = _fit(*fit_part, names, metric, budget, budget * j / LADDER, randomized)
        if fitted is None:
            continue
        fit_decisions = fitted.predict(fit_part[1], fit_part[2], random_state=seed)
        cert_decisions = fitted.predict(cert_part[1], cert_part[2], random_state=seed)
        record = certification_record(metric, confidence, 0.5, val=(cert_part[0], cert_decisions, cert_part[2]),
                                      order=(fit_part[0], fit_decisions, fit_part[2]), groups=len(names))
        correct = (cert_decisions == cert_part[0]).sum()
        rows = cert_part[0].size
        if accuracy_on_both:
            correct, rows = correct + (fit_decisions == fit_part[0]).sum(), rows + fit_part[0].size
        accuracy = float(correct / rows)
        rung = replace(fitted, fit_gap=record[TRAIN_GAP_KEY], val_accuracy=accuracy)
        selector.update(j, {"val_accuracy": accuracy, **record}, lambda rung=rung: rung)
        records.append({"epoch": j, "target": rung.target, "val_accuracy": accuracy, **record, "thresholds": rung})
    return selector, records


def thresholds_from_scores(y_true: Any, scores: Any, groups: Any, *, budget: float, metric: str = "dp",
                   confidence: float = 0.95, randomized: bool = False, certify: tuple[Any, Any, Any] | None = None,
                   fraction: float = 0.5, seed: int = 0, group_names: Sequence[str] | None = None
                   ) -> GroupThresholds:
    """Per-group thresholds on ``scores`` that maximise accuracy under a ``budget`` on ``metric``, certified.

    Parameters
    ----------
    y_true, scores, groups : array-like of shape (n,)
        Held-out 0/1 labels, scores in ``[0, 1]`` (predicted probabilities)
        and integer group indices in ``[0, G)``.
    budget : float
        The largest allowed gap, in ``(0, 1]``.
    metric : {"dp", "eopp", "eo"}, default "dp"
    confidence : float, default 0.95
        Certify at this level (see the module docstring); 0: no
        certification, the most accurate thresholds whose gap on all of
        ``y_true`` is at most the budget (the point-estimate rule).
    randomized : bool, default False
        Allow mixtures of two thresholds per group (``dp``, ``eopp``).
    certify : (y_true, scores, groups), optional
        Separate certification rows; then all of the given rows fit the
        thresholds. Default: split the given rows, ``fraction`` of each
        (group, label) cell (rounded half up, seeded by ``seed``) certifies.
    group_names : sequence of str, optional
        Names of groups ``0 .. G-1`` (default their indices), used in
        messages and kept with the thresholds.

    Returns
    -------
    GroupThresholds, with ``certificate`` (``{"confidence", "metric",
    "budget", "upper_bound", "certified", ...}``) unless ``confidence=0``.
    When nothing certifies, the rung with the smallest bound is returned with
    ``certified=False`` and a ``UserWarning``.
    """
    _check_metric(metric, randomized)
    budget = float(budget)
    if not 0 < budget <= 1:
        raise ValueError(f"budget bounds a gap of rates, so it must be in (0, 1]; got {budget:g}")
    confidence = float(confidence)
    if not 0 <= confidence < 1 or math.isnan(confidence):
        raise ValueError(f"confidence must be in [0, 1) (0: no certification), got {confidence}")
    y, s, g = _arrays("held-out", y_true, scores, groups)
    count = int(max(g.max(initial=-1), *([-1] if certify is None else [int(np.max(certify[2], initial=-1))]))) + 1
    names = tuple(str(n) for n in group_names) if group_names is not None else tuple(str(k) for k in range(count))
    if len(names) < count:
        raise ValueError(f"group_names names {len(names)} groups but the rows hold group index {count - 1}")
    if confidence == 0:
        fitted = _fit(y, s, g, names, metric, budget, budget, randomized)
        if fitted is None:
            raise ValueError(f"no thresholds keep the {metric} gap within {budget:g} on these rows")
        decisions = fitted.predict(s, g, random_state=seed)
        fitted = replace(fitted, fit_gap=gap_counts(y, decisions, g, metric).estimate(),
                         val_accuracy=float(np.mean(decisions == y)))
        _warn_one_class(fitted)
        return fitted
    if certify is None:
        fit_rows, cert_rows = split_for_certification(g, y, fraction=fraction, seed=seed)
        fit_part = (y[fit_rows], s[fit_rows], g[fit_rows])
        cert_part = (y[cert_rows], s[cert_rows], g[cert_rows])
    else:
        fit_part, cert_part = (y, s, g), _arrays("certification", *certify)
    selector, _ = threshold_candidates(fit_part, cert_part, budget=budget, metric=metric, confidence=confidence,
                                    randomized=randomized, seed=seed, group_names=names,
                                    accuracy_on_both=certify is None)
    if selector.chosen is None:
        raise ValueError(f"no thresholds keep the {metric} gap within {budget:g} on the fit rows")
    certificate = selector.certificate()
    if not certificate["certified"]:
        warnings.warn(f"group thresholds: none certified to meet the {metric} budget {budget:g} at "
                      f"{confidence:.0%} confidence; the smallest upper bound on the certification rows is "
                      f"{certificate['upper_bound']:.4f}, the thresholds kept (more certification rows, a looser "
                      "budget or confidence=0 for the point-estimate rule)", UserWarning, stacklevel=2)
    chosen = replace(selector.chosen["state"], certificate=certificate)
    _warn_one_class(chosen)
    return chosen


def _warn_one_class(fitted: GroupThresholds) -> None:
    """Warn when the thresholds give some group a single decision whatever its score."""
    never = [name for name, high in zip(fitted.groups, fitted.high) if high is not None and math.isinf(high)]
    if never:
        warnings.warn(f"group thresholds: group(s) {', '.join(repr(n) for n in never)} get no positive decision "
                      f"(threshold above every score): the {fitted.metric} budget {fitted.budget:g} is met by "
                      "predicting 0 for them", UserWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------------ models


class ThresholdedModel(nn.Module):
    """A trained model whose decisions use per-group thresholds.

    ``forward(inputs)`` returns the wrapped model's logits ``(n,)``
    unchanged (scores are not post-processed: AUC, AP and the soft gaps stay
    the model's); :meth:`predict` gives the thresholded 0/1 decisions and
    needs each row's group.

    Parameters
    ----------
    model : nn.Module
        Any model returning one logit per example.
    thresholds : GroupThresholds
    """

    def __init__(self, model: nn.Module, thresholds: GroupThresholds) -> None:
        super().__init__()
        if not isinstance(thresholds, GroupThresholds):
            raise TypeError(f"thresholds must be GroupThresholds, got {type(thresholds).__name__}")
        self.model = model
        self.thresholds = thresholds
        for name in ("build_spec", "table_encoder"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))

    def forward(self, inputs: Any) -> Tensor:
        return self.model(inputs)

    @torch.no_grad()
    def predict(self, inputs: Any, groups: Any = None, random_state: int | None = 0) -> Tensor:
        """0/1 decisions ``(n,)`` (int64) for ``inputs``, given each row's group ``(n,)`` (indices or names).

        Randomised thresholds draw from ``random_state`` (default 0, so
        repeated calls agree; None for fresh randomness).
        """
        if groups is None:
            raise ValueError("a thresholded model decides with one threshold per group: pass each row's group, "
                             "predict(inputs, groups)")
        was_training = self.model.training
        self.model.eval()
        try:
            scores = torch.sigmoid(self.model(inputs).reshape(-1).float())
        finally:
            self.model.train(was_training)
        decisions = self.thresholds.predict(scores.cpu().numpy(), groups, random_state=random_state)
        return torch.from_numpy(decisions).to(scores.device)


def threshold_report(thresholds: GroupThresholds, predicted: tuple[np.ndarray, np.ndarray, np.ndarray],
                     groups: list[str] | int | None = None, random_state: int = 0
                     ) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Metrics of thresholded decisions and 95% exact intervals on their gaps, from ``(y, scores, s)``.

    Accuracy, F1 and the decision gaps (``dp``, ``eo``, ``eopp``) use the
    thresholded decisions; AUC, AP and the soft gaps the unchanged scores.
    """
    from .trainer import test_intervals  # the trainer's module imports more than this one needs

    y, scores, s = predicted
    decisions = thresholds.predict(scores, s, random_state=random_state)
    report = binary_fairness_report(y, scores, sensitive_features=s, groups=groups, y_pred=decisions)
    return report, test_intervals(predicted, groups, decisions=decisions)


def thresholds(model: nn.Module, val: Any, *, budget: float, metric: str = "dp", confidence: float = 0.95,
               randomized: bool = False, certify: Any = None, fraction: float = 0.5, seed: int = 0,
               group_names: Sequence[str] | None = None) -> ThresholdedModel:
    """Post-process a trained model with per-group thresholds fitted (and certified) on held-out data.

    ``val`` (and ``certify``) are what :meth:`~fairbinn.core.trainer.Trainer.predict`
    takes: a :class:`~fairbinn.core.data.Split`, a loader of batches or a
    graph's validation loader. Without ``certify`` the rows of ``val`` are
    split into fit and certification parts (see :func:`thresholds_from_scores`,
    which takes the other arguments). The certificate assumes the model was
    trained and chosen without the certification rows.

    Returns a :class:`ThresholdedModel`; ``.thresholds.certificate`` holds the certificate.
    """
    from .trainer import Trainer  # imported here: the trainer's module is heavier than this one

    predictor = Trainer(strategy="erm")
    y, scores, s = predictor.predict(model, val)
    other = predictor.predict(model, certify) if certify is not None else None
    fitted = thresholds_from_scores(y, scores, s, budget=budget, metric=metric, confidence=confidence,
                            randomized=randomized, certify=other, fraction=fraction, seed=seed,
                            group_names=group_names)
    return ThresholdedModel(model, fitted)


def threshold_result(result: Any, fit: Any, val: Any, test: Any = None, *, budget: float, metric: str = "dp",
                     confidence: float = 0.95, randomized: bool = False, seed: int = 0,
                     group_names: Sequence[str] | None = None) -> Any:
    """A trained run's :class:`~fairbinn.core.trainer.TrainResult`, post-processed with per-group thresholds.

    The thresholds are fitted on ``fit`` and certified on ``val``
    (``confidence > 0``), or fitted on ``val`` alone (``confidence=0``, with
    ``fit`` unused); see :func:`thresholds_from_scores`. Returns a copy of
    ``result`` whose ``model`` is the :class:`ThresholdedModel`, whose
    ``val`` / ``test`` metrics and ``test_intervals`` are those of the
    thresholded decisions (:func:`threshold_report`), ``certificate`` the
    thresholds' and ``budget_met`` whether they are certified (or, for
    ``confidence=0``, whether the validation gap meets the budget);
    ``extra["thresholds"]`` holds them as plain data and
    ``extra["base"]`` the model's own validation and test metrics.
    """
    from .trainer import Trainer  # imported here: the trainer's module is heavier than this one

    predictor = Trainer(strategy="erm")
    names = list(group_names) if group_names is not None else None
    held_out = predictor.predict(result.model, val)
    if confidence == 0:
        fitted = thresholds_from_scores(*held_out, budget=budget, metric=metric, confidence=0, randomized=randomized,
                                seed=seed, group_names=names)
    else:
        fitted = thresholds_from_scores(*predictor.predict(result.model, fit), budget=budget, metric=metric,
                                confidence=confidence, randomized=randomized, certify=held_out, seed=seed,
                                group_names=names)
    groups = names if names is not None else len(fitted.groups)
    tested = predictor.predict(result.model, test) if test is not None else None
    post = deciding_with(result, fitted, held_out, tested, groups, seed)
    certified = None if fitted.certificate is None else bool(fitted.certificate["certified"])
    return replace(post, budget_met=certified if certified is not None else bool(post.val[metric] <= budget),
                   extra={**post.extra, "base": {"val": result.val, "test": result.test}})


def deciding_with(result: Any, fitted: GroupThresholds, val: tuple[np.ndarray, np.ndarray, np.ndarray],
                  test: tuple[np.ndarray, np.ndarray, np.ndarray] | None, groups: list[str] | int | None = None,
                  seed: int = 0) -> Any:
    """A copy of ``result`` whose model decides with ``fitted``: its ``model`` the :class:`ThresholdedModel`, its
    ``val`` / ``test`` metrics and ``test_intervals`` those of the decisions on the predictions ``val`` and
    ``test`` (``(y, scores, s)`` of the model; see :func:`threshold_report`), its ``certificate`` the
    thresholds', and ``extra["thresholds"]`` them as plain data."""
    val_report, _ = threshold_report(fitted, val, groups, random_state=seed)
    test_report, intervals = (threshold_report(fitted, test, groups, random_state=seed) if test is not None
                              else (None, None))
    return replace(result, model=ThresholdedModel(result.model, fitted), val=val_report, test=test_report,
                   test_intervals=intervals, certificate=fitted.certificate,
                   extra={**result.extra, "thresholds": fitted.to_dict()})
