"""Which epoch a run reports: the one place where checkpoints are chosen on validation.

:class:`EpochSelector` sees each epoch's validation record as training goes
and keeps the parameters of the best epoch so far. Without a budget the best
epoch is the one with the best ``metric`` (higher accuracy / AUC / AP, lower
gap). With a fairness budget only epochs whose validation gap meets it
compete (an undefined, NaN, gap never meets a budget); if none does, the
epoch with the smallest gap is kept and ``budget_met`` is False.

:class:`CertifiedSelector` chooses under a *certified* budget: among the
candidates whose validation upper confidence bound on the gap meets the
budget, tested in a fixed sequence set by their gap on the training rows,
so that the choice holds on new data with a stated confidence (see its
docstring). :func:`certification_record` computes the two record entries it
reads. Test metrics are never read.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from .certify import GapCounts, gap_counts, gap_upper_bound
from .metrics import GAP_METRICS, higher_is_better

__all__ = ["EpochSelector", "CertifiedSelector", "certification_record", "ORDER_KEY", "TRAIN_GAP_KEY", "BOUND_KEY",
           "CERTIFICATION_METHOD"]

ORDER_KEY = "order_bound"
"""Record entry: the order of the certification tests, the upper bound the validation rows would give if the
model's rates on them were its rates on the training rows (so it reads no validation prediction or label)."""
TRAIN_GAP_KEY = "order_gap"
"""Record entry: the budget's gap measured on the training rows (what a certified eta search reads)."""
BOUND_KEY = "val_bound"
"""Record entry: the upper confidence bound on the budget's population gap from the validation rows."""
CERTIFICATION_METHOD = "fixed-sequence test in the order of the bound predicted from the training rows"
"""How :class:`CertifiedSelector` accounts for the choice among candidates (named in certificates)."""


def _better(score: float, best: float | None, higher: bool) -> bool:
    if math.isnan(score):
        return False
    if best is None:
        return True
    return score > best if higher else score < best


class _Choice:
    """What both selectors report of their choice (``_choice``: a dict with ``epoch`` and ``state``, or None)."""

    last_epoch: int
    _choice: dict[str, Any] | None

    @property
    def selected_epoch(self) -> int:
        """The chosen epoch (1-based): the last one seen when nothing was ranked."""
        choice = self._choice
        return choice["epoch"] if choice is not None else self.last_epoch

    @property
    def best_state(self) -> Any:
        """What ``state()`` returned for the chosen epoch (None when the last epoch is kept)."""
        choice = self._choice
        return choice["state"] if choice is not None else None


class EpochSelector(_Choice):
    """Chooses the reported epoch from validation records, one epoch at a time.

    Parameters
    ----------
    metric : str or None
        Validation metric ranking the epochs (a key of
        :func:`~fairbinn.core.metrics.binary_fairness_report`; its direction
        comes from :func:`~fairbinn.core.metrics.higher_is_better`). ``None``
        keeps the last epoch.
    budget : float, optional
        Fairness budget: only epochs whose validation ``budget_metric`` is
        ``<= budget`` compete. Needs a ``metric``.
    budget_metric : str, default "dp"
        One of :data:`~fairbinn.core.metrics.GAP_METRICS`.

    Ties keep the earlier epoch. A NaN score never wins.

    Example
    -------
    >>> selector = EpochSelector("accuracy", budget=0.05)
    >>> for epoch in range(1, epochs + 1):
    ...     record = {"val_accuracy": ..., "val_dp": ...}
    ...     selector.update(epoch, record, lambda: copy.deepcopy(model.state_dict()))
    >>> selector.selected_epoch, selector.budget_met, selector.best_state
    """

    def __init__(self, metric: str | None, *, budget: float | None = None, budget_metric: str = "dp") -> None:
        if metric is not None:
            higher_is_better(metric)  # raises on an unknown name
        if budget is not None:
            if metric is None:
                raise ValueError("a fairness budget chooses among epochs by a metric; metric cannot be None")
            if budget_metric not in GAP_METRICS:
                raise ValueError(f"budget_metric must be one of {', '.join(GAP_METRICS)}, got {budget_metric!r}")
        self.metric, self.budget, self.budget_metric = metric, budget, budget_metric
        self._reset()

    def _reset(self) -> None:
        self.last_epoch = 0
        self._best: dict[str, Any] | None = None  # {"epoch", "score", "state"} of the best epoch in budget
        self._smallest: dict[str, Any] | None = None  # the same for the smallest gap, while none is in budget

    def update(self, epoch: int, record: Mapping[str, float], state: Callable[[], Any] | None = None) -> bool:
        """Consider ``epoch`` with validation ``record`` (keys ``val_<metric>``).

        ``state()`` is called (only) when the epoch becomes the choice, to copy
        the parameters worth keeping. Returns whether it became the choice.
        """
        self.last_epoch = epoch
        if self.metric is None:
            return True
        score = record[f"val_{self.metric}"]
        if self.budget is not None:
            gap = record[f"val_{self.budget_metric}"]
            if not gap <= self.budget:  # also False for NaN
                if self._best is None and _better(gap, None if self._smallest is None else self._smallest["score"],
                                                  higher=False):
                    self._smallest = {"epoch": epoch, "score": gap, "state": state() if state else None}
                    return True
                return False
        if _better(score, None if self._best is None else self._best["score"], higher_is_better(self.metric)):
            self._best = {"epoch": epoch, "score": score, "state": state() if state else None}
            self._smallest = None  # no longer needed
            return True
        return False

    def merge(self, other: "EpochSelector") -> None:
        """Fold ``other``'s choice (another run's, with its ``owner``) into this selection.

        The same rule across runs: the best ``metric`` among the choices in
        budget wins (ties: the one merged first); while none is in budget,
        the smallest gap. The chosen entry's ``owner`` says whose it is.
        """
        if (other.metric, other.budget, other.budget_metric) != (self.metric, self.budget, self.budget_metric):
            raise ValueError("selections with other settings cannot be merged")
        owner = getattr(other, "owner", None)
        if other._best is not None:
            if _better(other._best["score"], None if self._best is None else self._best["score"],
                       higher_is_better(self.metric)):
                self._best, self._smallest = {**other._best, "owner": owner}, None
        elif other._smallest is not None and self._best is None:
            if _better(other._smallest["score"], None if self._smallest is None else self._smallest["score"],
                       higher=False):
                self._smallest = {**other._smallest, "owner": owner}

    @property
    def chosen(self) -> dict[str, Any] | None:
        """The chosen entry: ``{"epoch", "score", "state"}`` and, after :meth:`merge`, ``"owner"`` (None: nothing
        ranked)."""
        return self._choice

    @property
    def _choice(self) -> dict[str, Any] | None:
        return self._best if self._best is not None else self._smallest

    @property
    def budget_met(self) -> bool | None:
        """Whether some epoch met the budget (None without a budget)."""
        return None if self.budget is None else self._best is not None

    def shortfall(self) -> str | None:
        """Why the budget was not met (the smallest gap reached and its epoch), or None."""
        if self.budget_met is not False:
            return None
        if self._smallest is None:
            return (f"no epoch met the validation {self.budget_metric} budget {self.budget:g}: "
                    f"the validation {self.budget_metric} was undefined (NaN) in every epoch")
        return (f"no epoch met the validation {self.budget_metric} budget {self.budget:g}; the smallest validation "
                f"{self.budget_metric} reached was {self._smallest['score']:.4f} (epoch {self._smallest['epoch']}), "
                "the epoch kept")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue choosing after a resume (kept states included)."""
        def plain(entry):
            return None if entry is None else {k: v for k, v in entry.items() if k != "owner"}
        return {"last_epoch": self.last_epoch, "best": plain(self._best), "smallest": plain(self._smallest),
                "metric": self.metric, "budget": self.budget, "budget_metric": self.budget_metric}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        settings = (state["metric"], state["budget"], state["budget_metric"])
        if settings != (self.metric, self.budget, self.budget_metric):
            raise ValueError(f"the saved selection (metric, budget, budget metric) = {settings} differs from "
                             f"this one's {(self.metric, self.budget, self.budget_metric)}")
        self.last_epoch, self._best, self._smallest = state["last_epoch"], state["best"], state["smallest"]


def _predictions(metric: str, scores: np.ndarray, threshold: float) -> np.ndarray:
    """What a gap is measured on: scores for the soft gaps, 0/1 predictions for the others."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores if metric.startswith("soft_") else (scores >= threshold).astype(np.int64)


def certification_record(metric: str, confidence: float, threshold: float,
                         val: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                         order: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                         groups: int | None = None) -> dict[str, float]:
    """The record entries :class:`CertifiedSelector` reads, from one model's predictions.

    ``val`` and ``order`` are ``(y, scores, s)`` arrays of shape ``(n,)`` on
    the validation rows and on the training rows (or None to skip one);
    ``groups`` the number of groups (indices ``0 .. groups - 1``; a group
    without rows then makes the gap undefined). Returns ``{"val_bound":
    upper confidence bound at confidence on the population metric gap,
    "order_gap": the metric gap on the training rows, "order_bound": the
    validation bound predicted from the training rows}`` (the last needs
    both), NaN where a gap is undefined.

    The predicted bound puts the model's per-group rates on the training
    rows into the validation split's row counts per group (and label): it
    reads no validation prediction or label beyond those counts, on which
    the bounds are conditional anyway.
    """
    record, cells = {}, None
    if val is not None:
        y, scores, s = val
        every = range(max(int(groups or 0), int(np.max(s, initial=-1)) + 1))
        counts = gap_counts(y, _predictions(metric, scores, threshold), s, metric, all_groups=every)
        record[BOUND_KEY] = gap_upper_bound(metric, counts, confidence).upper
        cells = counts
    if order is not None:
        y, scores, s = order
        every = range(max(int(groups or 0), int(np.max(s, initial=-1)) + 1,
                          0 if cells is None else len(cells.groups)))
        counts = gap_counts(y, _predictions(metric, scores, threshold), s, metric, all_groups=every)
        record[TRAIN_GAP_KEY] = counts.estimate()
        if cells is not None:
            record[ORDER_KEY] = _predicted_bound(metric, counts, cells, confidence)
    return record


def _predicted_bound(metric: str, train: GapCounts, val: GapCounts, confidence: float) -> float:
    """The bound ``val``'s row counts would give at ``train``'s rates (NaN where either leaves a rate undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = train.total / train.rows
        squares = train.total_sq / train.rows
    if not (np.isfinite(rates).all() and (val.rows > 0).all()):
        return math.nan
    soft = metric.startswith("soft_")
    total = val.rows * rates if soft else np.round(val.rows * rates)
    hypothetical = GapCounts(metric, val.groups, val.rows, total,
                             np.minimum(val.rows * squares, total) if soft else total)
    return gap_upper_bound(metric, hypothetical, confidence).upper


def _key(record_gap: float, tiebreak: tuple[float, ...], epoch: int) -> list[float]:
    """A candidate's place in the test sequence: its predicted bound (undefined: last), then ``tiebreak``
    (eta, seed), then its epoch."""
    return [math.inf if math.isnan(record_gap) else float(record_gap), *map(float, tiebreak), float(epoch)]


def _smaller(entry: dict[str, Any], than: dict[str, Any] | None) -> bool:
    """Whether candidate ``entry`` replaces ``than`` as the fallback: a smaller bound, or an equal one earlier in
    the test sequence (so the fallback does not hang on the order the candidates arrive in)."""
    return than is None or (entry["bound"], entry["key"]) < (than["bound"], than["key"])


class CertifiedSelector(_Choice):
    """Chooses the checkpoint to report under a fairness budget that holds on new data with a stated confidence.

    Every checkpoint shown to :meth:`update` (and every one of another
    selector folded in by :meth:`merge`) is a candidate. The candidates are
    tested in a fixed sequence: in increasing order of the bound predicted
    from the *training* rows (record entry ``order_bound``: the model's
    per-group rates on the training rows put into the validation split's
    row counts; ties broken by eta, seed and epoch), which reads no
    validation prediction or label. A candidate passes when
    its validation upper confidence bound (``val_bound``: exact
    Clopper-Pearson bounds per group, or Hoeffding bounds for the soft gaps,
    joined by a union bound; see :mod:`fairbinn.core.certify`) is at most
    the budget; testing stops at the first that does not (an undefined
    bound does not pass). The candidates before the stop are *certified*.
    Fixed-sequence testing controls the family-wise error: with probability
    at least ``confidence`` over the draw of the validation rows, every
    certified candidate's population gap is at most the budget, so the
    choice among them, the best validation ``metric``, is free.

    The guarantee assumes the validation rows are drawn like the rows the
    model will meet (and that nothing else about the candidates was chosen on
    them); it does not cover distribution shift.

    When nothing is certified, the candidate with the smallest bound (of
    equal ones, the earliest in the test sequence) is kept,
    ``budget_met`` (certified) is False and :meth:`shortfall` says so.

    Parameters
    ----------
    metric : str
        Validation metric choosing among the certified candidates (accuracy by default in training).
    budget : float
        The budget on ``budget_metric``.
    budget_metric : str, default "dp"
        One of :data:`~fairbinn.core.metrics.GAP_METRICS`.
    confidence : float, default 0.95
        In (0, 1): the level of the bounds in the records (for the certificate).
    tiebreak : tuple of float, default ()
        This run's place among several whose selectors are merged (eta, seed).
    """

    def __init__(self, metric: str, *, budget: float, budget_metric: str = "dp", confidence: float = 0.95,
                 tiebreak: tuple[float, ...] = ()) -> None:
        higher_is_better(metric)  # raises on an unknown name
        if budget_metric not in GAP_METRICS:
            raise ValueError(f"budget_metric must be one of {', '.join(GAP_METRICS)}, got {budget_metric!r}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        self.metric, self.budget, self.budget_metric = metric, float(budget), budget_metric
        self.confidence, self.tiebreak = float(confidence), tuple(float(t) for t in tiebreak)
        self.last_epoch = 0
        self._stairs: list[dict[str, Any]] = []  # certifiable so far: increasing key, strictly better score
        self._stop: list[float] | None = None  # key of the first candidate that fails, the end of the sequence
        self._smallest: dict[str, Any] | None = None  # the candidate with the smallest bound (the fallback)
        self.owner: Any = None  # what the candidates of this selector belong to, for merge

    def update(self, epoch: int, record: Mapping[str, float], state: Callable[[], Any] | None = None) -> bool:
        """Consider ``epoch`` with its ``record`` (``val_<metric>``, ``val_bound``, ``order_gap``).

        ``state()`` is called (only) when the epoch has to be kept. Returns
        whether it became the choice.
        """
        self.last_epoch = epoch
        entry = {"key": _key(record.get(ORDER_KEY, math.nan), self.tiebreak, epoch), "epoch": epoch,
                 "score": float(record[f"val_{self.metric}"]), "bound": float(record.get(BOUND_KEY, math.nan)),
                 "state": None, "owner": self.owner}
        copied = self._consider(entry, state)
        return copied is not None and self._choice is copied

    def merge(self, other: "CertifiedSelector") -> None:
        """Fold ``other``'s candidates (another run's, with its ``owner``) into this selection."""
        if (other.metric, other.budget, other.budget_metric, other.confidence) != \
                (self.metric, self.budget, self.budget_metric, self.confidence):
            raise ValueError("selections with other settings cannot be merged")
        if other._stop is not None:
            self._fail(other._stop)
        for entry in other._stairs:
            self._consider({**entry, "owner": entry["owner"] if entry["owner"] is not None else other.owner})
        if other._smallest is not None:
            self._keep_smallest({**other._smallest, "owner": other._smallest["owner"] if other._smallest["owner"] is not None else other.owner})

    def _consider(self, entry: dict[str, Any], state: Callable[[], Any] | None = None) -> dict[str, Any] | None:
        """Place a candidate (its state from ``state()`` or already in ``entry``); the entry if it was kept."""
        kept = None

        def copied() -> dict[str, Any]:
            nonlocal kept
            if kept is None:
                kept = {**entry, "state": state() if state is not None else entry["state"]}
            return kept

        if not entry["bound"] <= self.budget:  # also an undefined bound
            self._fail(entry["key"])
        elif self._stop is None or entry["key"] < self._stop:
            before = [e for e in self._stairs if e["key"] < entry["key"]]
            higher = higher_is_better(self.metric)
            if _better(entry["score"], before[-1]["score"] if before else None, higher):
                after = [e for e in self._stairs if e["key"] > entry["key"]
                         and _better(e["score"], entry["score"], higher)]
                self._stairs = [*before, copied(), *after]
        if not math.isnan(entry["bound"]) and _smaller(entry, self._smallest):
            self._keep_smallest(copied())
        return kept

    def _fail(self, key: list[float]) -> None:
        if self._stop is None or key < self._stop:
            self._stop = list(key)
            self._stairs = [e for e in self._stairs if e["key"] < key]

    def _keep_smallest(self, entry: dict[str, Any]) -> None:
        if _smaller(entry, self._smallest):
            self._smallest = entry

    @property
    def _choice(self) -> dict[str, Any] | None:
        return self._stairs[-1] if self._stairs else self._smallest

    @property
    def chosen(self) -> dict[str, Any] | None:
        """The chosen candidate: ``{"epoch", "score", "bound", "state", "owner", "key"}`` (None: none was seen)."""
        return self._choice

    @property
    def budget_met(self) -> bool:
        """Whether the choice is certified to meet the budget."""
        return bool(self._stairs)

    @property
    def certified_count(self) -> int:
        """How many candidates kept as steps of the choice are certified (at least 1 when one is)."""
        return len(self._stairs)

    def certificate(self) -> dict[str, Any]:
        """``{"confidence", "metric", "budget", "upper_bound", "certified", "method"}`` of the choice
        (``upper_bound`` NaN when no bound was defined)."""
        choice = self._choice
        return {"confidence": self.confidence, "metric": self.budget_metric, "budget": self.budget,
                "upper_bound": math.nan if choice is None else choice["bound"], "certified": self.budget_met,
                "method": CERTIFICATION_METHOD}

    def shortfall(self) -> str | None:
        """Why no candidate was certified (the smallest bound reached), or None when one was."""
        if self.budget_met:
            return None
        level = f"{self.confidence:.0%}"
        if self._smallest is None:
            return (f"no checkpoint was certified to meet the {self.budget_metric} budget {self.budget:g} at "
                    f"{level} confidence: the validation bound was undefined (NaN) for every checkpoint")
        return (f"no checkpoint was certified to meet the {self.budget_metric} budget {self.budget:g} at {level} "
                f"confidence; the smallest validation upper bound on {self.budget_metric} was "
                f"{self._smallest['bound']:.4f} (epoch {self._smallest['epoch']}), the checkpoint kept")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue choosing after a resume (kept states included; plain data)."""
        def plain(entry):
            return None if entry is None else {k: v for k, v in entry.items() if k != "owner"}
        return {"last_epoch": self.last_epoch, "stairs": [plain(e) for e in self._stairs], "stop": self._stop,
                "smallest": plain(self._smallest), "metric": self.metric, "budget": self.budget,
                "budget_metric": self.budget_metric, "confidence": self.confidence}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        settings = (state.get("metric"), state.get("budget"), state.get("budget_metric"), state.get("confidence"))
        mine = (self.metric, self.budget, self.budget_metric, self.confidence)
        if settings != mine:
            raise ValueError(f"the saved certified selection (metric, budget, budget metric, confidence) = "
                             f"{settings} differs from this one's {mine}")
        self.last_epoch, self._stop = state["last_epoch"], state["stop"]
        self._stairs = [{**e, "owner": None} for e in state["stairs"]]
        self._smallest = None if state["smallest"] is None else {**state["smallest"], "owner": None}
