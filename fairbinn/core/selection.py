"""Which epoch a run reports: the one place where checkpoints are chosen on validation.

:class:`EpochSelector` sees each epoch's validation record as training goes
and keeps the parameters of the best epoch so far. Without a budget the best
epoch is the one with the best ``metric`` (higher accuracy / AUC / AP, lower
gap). With a fairness budget only epochs whose validation gap meets it
compete (an undefined, NaN, gap never meets a budget); if none does, the
epoch with the smallest gap is kept and ``budget_met`` is False. Test
metrics are never read.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Mapping

from .metrics import GAP_METRICS, higher_is_better

__all__ = ["EpochSelector"]


def _better(score: float, best: float | None, higher: bool) -> bool:
    if math.isnan(score):
        return False
    if best is None:
        return True
    return score > best if higher else score < best


class EpochSelector:
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

    @property
    def _choice(self) -> dict[str, Any] | None:
        return self._best if self._best is not None else self._smallest

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
        return {"last_epoch": self.last_epoch, "best": copy.copy(self._best), "smallest": copy.copy(self._smallest),
                "metric": self.metric, "budget": self.budget, "budget_metric": self.budget_metric}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        settings = (state["metric"], state["budget"], state["budget_metric"])
        if settings != (self.metric, self.budget, self.budget_metric):
            raise ValueError(f"the saved selection (metric, budget, budget metric) = {settings} differs from "
                             f"this one's {(self.metric, self.budget, self.budget_metric)}")
        self.last_epoch, self._best, self._smallest = state["last_epoch"], state["best"], state["smallest"]
