"""Differentiable group-fairness constraints on predicted probabilities.

A constraint maps a batch of probabilities ``probs`` (shape ``(n,)``), true
labels ``y`` (``(n,)``, 0/1) and group indices ``groups`` (``(n,)``, integers in
``[0, num_groups)``) to a scalar loss. The gap between groups is the largest
pairwise difference of group means, i.e. max minus min over the groups present
in the batch; the loss is that gap squared (``norm="squared"``, the default,
smooth at zero as in the FairBiNN paper's code) or the gap itself
(``norm="absolute"``). A group absent from the batch contributes nothing, and a
batch with fewer than two groups gives a loss of exactly 0 that is still
connected to the graph, so its gradient is zero rather than NaN.

Computation is vectorised with ``index_add`` / ``bincount`` over groups, with
no Python loop over groups and no host-device synchronisation (see
:func:`group_gaps`).
"""

from __future__ import annotations

from abc import ABC
from typing import Callable, ClassVar, TypeVar

import torch
from torch import Tensor

from . import distributed
from .registry import Registry

__all__ = [
    "FairnessConstraint",
    "DemographicParity",
    "EqualizedOdds",
    "EqualOpportunity",
    "ReleasedDemographicParity",
    "RateSurrogate",
    "create_constraint",
    "list_constraints",
    "register_constraint",
    "group_gaps",
]

NORMS = ("squared", "absolute")
SURROGATES = ("score", "rate")
"""What a constraint compares between groups: predicted probabilities, or a smooth thresholded decision
(:class:`RateSurrogate`)."""


def group_gaps(values: Tensor, cells: Tensor, num_rows: int, num_groups: int) -> Tensor:
    """Per-row spread (max minus min) of group means.

    ``cells[i] = row * num_groups + group`` assigns ``values[i]`` to one cell of
    a ``(num_rows, num_groups)`` grid. Returns a tensor of shape ``(num_rows,)``:
    for each row, the largest minus the smallest mean over the cells that
    received at least one value, or 0 when fewer than two did.

    The highest- and lowest-mean cells are found without gradient tracking;
    given them, the gap is linear in ``values`` (each value weighted by
    ``+1/n_high``, ``-1/n_low`` or 0), so the graph holds three nodes instead of
    a chain of masks, maxima and minima. Value and (sub)gradient are those of
    ``max - min``.

    In a distributed training step (:mod:`fairbinn.core.distributed`) the
    counts and sums are all-reduced first, so the means are those of the whole
    global batch, and the processes' linear parts are summed into the global gap.
    """
    size = num_rows * num_groups
    with torch.no_grad():
        counts = torch.bincount(cells, minlength=size)
        sums = torch.bincount(cells, weights=values.detach(), minlength=size)
        if distributed.active():  # group statistics of the global batch
            sums, counts = distributed.sum_statistics(sums, counts)
        grid = (sums / counts).view(num_rows, num_groups)  # NaN in empty cells
        offsets = torch.arange(0, size, num_groups, device=values.device)
        high = grid.nan_to_num(float("-inf")).argmax(dim=1) + offsets
        low = grid.nan_to_num(float("inf")).argmin(dim=1) + offsets
        # a row with fewer than two groups has high == low, so its weights cancel to 0
        inverse = 1.0 / counts.clamp(min=1).to(values.dtype)
        weight = torch.zeros(size, dtype=values.dtype, device=values.device)
        weight.index_add_(0, high, inverse[high]).index_add_(0, low, inverse[low], alpha=-1)
        rows = torch.div(cells, num_groups, rounding_mode="floor")
    gaps = torch.zeros(num_rows, dtype=values.dtype, device=values.device)
    return distributed.global_sum(gaps.index_add(0, rows, values * weight[cells]))


def _cells(groups: Tensor, num_groups: int) -> Tensor:
    """Flat cell index ``row * num_groups + group`` of each entry of ``groups`` ``(r, n)``."""
    rows = torch.arange(groups.shape[0], device=groups.device).unsqueeze(1)
    return (rows * num_groups + groups).reshape(-1)


def _label_gaps(probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """Gaps ``(r, 2)`` within ``y = 0`` and within ``y = 1`` of each row of ``(r, n)`` inputs."""
    rows = probs.shape[0]
    row_index = torch.arange(rows, device=y.device).unsqueeze(1)
    cells = ((2 * row_index + y.long()) * num_groups + groups).reshape(-1)
    return group_gaps(probs.reshape(-1), cells, 2 * rows, num_groups).view(rows, 2)


class FairnessConstraint(ABC):
    """Base class: a differentiable penalty for unequal treatment of groups.

    Parameters
    ----------
    norm : {"squared", "absolute"}, default "squared"
        Whether the loss is the squared gap or the gap itself.

    Subclasses implement :meth:`gap` (one batch) or :meth:`row_gaps` (several
    rows at once); calling the constraint returns the loss.
    """

    name: ClassVar[str]
    uses_labels: ClassVar[bool] = True
    """Whether the loss reads the labels ``y``; one that does not (demographic parity) can cover
    examples without a label, e.g. every node of a graph."""

    def __init__(self, norm: str = "squared") -> None:
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.gap is FairnessConstraint.gap and cls.row_gaps is FairnessConstraint.row_gaps:
            raise TypeError(f"{cls.__name__} must implement gap() or row_gaps()")

    def row_gaps(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        """Gaps ``(r,)`` in ``[0, 1]`` of ``r`` independent rows, inputs of shape ``(r, n)``.

        The default applies :meth:`gap` to each row; the built-in constraints
        compute all rows at once.
        """
        return torch.stack([self.gap(*row, num_groups) for row in zip(probs, y, groups)])

    def gap(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        """Scalar gap in ``[0, 1]`` between groups for a batch of shape ``(n,)``."""
        return self.row_gaps(probs[None], y[None], groups[None], num_groups)[0]

    def __call__(
        self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int | None = None
    ) -> Tensor:
        """The loss: a scalar for 1-D inputs ``(n,)``; one loss per row, ``(r,)``,
        for 2-D inputs ``(r, n)`` (the models of a stack, each with its own batch)."""
        groups, num_groups = _checked(probs, y, groups, num_groups)
        if probs.dim() == 1:
            gap = self.gap(probs, y, groups, num_groups)
        else:
            gap = self.row_gaps(probs, y, groups, num_groups)
        return gap.square() if self.norm == "squared" else gap

    def __repr__(self) -> str:
        return f"{type(self).__name__}(norm={self.norm!r})"


class DemographicParity(FairnessConstraint):
    """Gap between groups' mean predicted probability (soft demographic parity)."""

    name = "dp"
    uses_labels = False

    def row_gaps(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        rows = probs.shape[0]
        return group_gaps(probs.reshape(-1), _cells(groups, num_groups), rows, num_groups)


class EqualizedOdds(FairnessConstraint):
    """Largest, over the two true labels, gap between groups' mean probability.

    Within ``y = 1`` this is the soft true-positive-rate gap, within ``y = 0`` the
    soft false-positive-rate gap; the loss takes the larger, as fairlearn's
    ``equalized_odds_difference`` does for hard predictions.
    """

    name = "eo"

    def row_gaps(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        return _label_gaps(probs, y, groups, num_groups).amax(dim=1)


class EqualOpportunity(FairnessConstraint):
    """Gap between groups' mean probability among true positives (soft TPR gap)."""

    name = "eopp"

    def row_gaps(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        return _label_gaps(probs, y, groups, num_groups)[:, 1]


class ReleasedDemographicParity(FairnessConstraint):
    """The DP loss of the FairBiNN authors' released code: groups' mean score against the batch mean.

    With ``m_g`` the mean probability of group ``g`` in the batch and ``m`` the
    batch mean, the loss is::

        groups="reference" (default, as the released code runs):  (m_ref - m)² / 2
        groups="all" (the formula its loss class was written for): Σ_g (m_g - m)² / (2 K)

    ``K`` is the number of groups; a group absent from the batch adds nothing.
    The released code builds its constraint matrix so that every row points
    at its first sensitive class, which leaves only ``(m_0 - m)² / 2``; there
    group 0 is Male on Adult (our group 1: ``reference_group=1`` reproduces
    it) and the youngest age group on Health. With two groups ``m_ref - m =
    (n_other / n)(m_ref - m_other)``, so on Adult (men about two thirds of
    the rows) the loss is about ``0.054 * gap²``: the released code's eta 100
    weighs the gap as ``DemographicParity``'s eta 5.4 does. ``norm="absolute"``
    takes ``|m_g - m|`` in place of the square.

    Parameters
    ----------
    norm : {"squared", "absolute"}, default "squared"
    groups : {"reference", "all"}, default "reference"
    reference_group : int, default 0
        The group compared with the batch mean when ``groups="reference"``.
    """

    name = "released_dp"
    uses_labels = False

    def __init__(self, norm: str = "squared", groups: str = "reference", reference_group: int = 0) -> None:
        super().__init__(norm)
        if groups not in ("reference", "all"):
            raise ValueError(f"groups must be 'reference' or 'all', got {groups!r}")
        if not isinstance(reference_group, int) or isinstance(reference_group, bool) or reference_group < 0:
            raise ValueError(f"reference_group must be an integer >= 0, got {reference_group!r}")
        self.groups, self.reference_group = groups, reference_group

    def row_gaps(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        """The largest ``|m_g - m|`` over the compared groups, ``(r,)`` (a gap in ``[0, 1]``, for reporting)."""
        with torch.no_grad():
            deviation, compared, _ = self._deviations(probs, groups, num_groups)
            return (deviation.abs() * compared).amax(dim=1)

    def _deviations(self, probs: Tensor, groups: Tensor, num_groups: int) -> tuple[Tensor, Tensor, Tensor]:
        """``m_g - m`` ``(r, K)``, which groups are compared (present ones) ``(r, K)``, group counts ``(r, K)``;
        statistics of the global batch in a distributed step. No gradient."""
        rows = probs.shape[0]
        size = rows * num_groups
        cells = _cells(groups, num_groups)
        with torch.no_grad():
            counts = torch.bincount(cells, minlength=size).to(probs.dtype)
            sums = torch.bincount(cells, weights=probs.detach().reshape(-1), minlength=size).to(probs.dtype)
            if distributed.active():
                sums, counts = distributed.sum_statistics(sums, counts)
            counts, sums = counts.view(rows, num_groups), sums.view(rows, num_groups)
            mean = sums.sum(1, keepdim=True) / counts.sum(1, keepdim=True)
            deviation = sums / counts.clamp(min=1) - mean
            compared = counts > 0
            if self.groups == "reference":
                only = torch.zeros_like(compared)
                if self.reference_group < num_groups:
                    only[:, self.reference_group] = True
                compared = compared & only
        return deviation, compared, counts

    def __call__(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int | None = None) -> Tensor:
        groups, num_groups = _checked(probs, y, groups, num_groups)
        single = probs.dim() == 1
        if single:
            probs, groups = probs[None], groups[None]
        deviation, compared, counts = self._deviations(probs, groups, num_groups)
        scale = 0.5 if self.groups == "reference" else 0.5 / num_groups
        with torch.no_grad():
            # the loss is scale * Σ_g f(m_g - m) with f the square or the absolute value; given the group
            # statistics it has the value below and, per example i in group g(i), the gradient
            # scale * (f'(d_g(i)) / n_g(i) [g(i) compared] - Σ_g f'(d_g) / n)
            slope = (2 * deviation if self.norm == "squared" else deviation.sign()) * compared
            value = scale * ((deviation.square() if self.norm == "squared" else deviation.abs()) * compared).sum(1)
            total = counts.sum(1, keepdim=True)
            per_group = slope / counts.clamp(min=1) - (slope.sum(1, keepdim=True) / total)
            weight = scale * per_group.reshape(-1)[_cells(groups, num_groups)].view_as(probs)
        linear = distributed.global_sum((probs * weight).sum(1))
        loss = value + linear - linear.detach()
        return loss[0] if single else loss

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(norm={self.norm!r}, groups={self.groups!r}, "
                f"reference_group={self.reference_group})")


class RateSurrogate(FairnessConstraint):
    """Any constraint on a differentiable surrogate of the thresholded decision instead of the score.

    Each probability ``p`` becomes ``r = sigmoid((p - threshold) / temperature)``
    (same shape, ``(n,)`` or ``(r, n)``), a smooth version of the decision
    ``p >= threshold``, and ``constraint`` is applied to ``r``. The group means
    of ``r`` are soft positive rates, so the gap of ``DemographicParity``,
    ``EqualizedOdds`` or ``EqualOpportunity`` on them approaches the
    thresholded DP, EO or EOpp gap of the metrics as ``temperature`` goes to
    0 (at 0.5 from a score exactly at the threshold). Driving the squared gap
    of mean scores to 0 can leave the thresholded gap large; this loss
    targets the decisions themselves.

    Parameters
    ----------
    constraint : FairnessConstraint
        The constraint on the surrogate rates; its ``norm`` is the loss's.
    temperature : float, default 0.1
        Width of the step in probability units (> 0): the surrogate moves from
        0.12 to 0.88 between ``threshold - 2 * temperature`` and ``threshold + 2 * temperature``.
    threshold : float, default 0.5
        The decision threshold, in (0, 1); :class:`~fairbinn.core.config.TrainConfig`
        passes the metrics' ``threshold``.
    """

    name = "rate"

    def __init__(self, constraint: FairnessConstraint, temperature: float = 0.1, threshold: float = 0.5) -> None:
        if isinstance(constraint, RateSurrogate):
            raise ValueError("the constraint already compares rates; a RateSurrogate is not wrapped twice")
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0 \
                or temperature == float("inf"):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
        super().__init__(constraint.norm)
        self.constraint, self.temperature, self.threshold = constraint, float(temperature), float(threshold)

    @property
    def uses_labels(self) -> bool:  # type: ignore[override]
        return self.constraint.uses_labels

    def rates(self, probs: Tensor) -> Tensor:
        """Surrogate decisions ``sigmoid((probs - threshold) / temperature)``, the shape of ``probs``."""
        return torch.sigmoid((probs - self.threshold) / self.temperature)

    def row_gaps(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        return self.constraint.row_gaps(self.rates(probs), y, groups, num_groups)

    def gap(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int) -> Tensor:
        return self.constraint.gap(self.rates(probs), y, groups, num_groups)

    def __call__(self, probs: Tensor, y: Tensor, groups: Tensor, num_groups: int | None = None) -> Tensor:
        return self.constraint(self.rates(probs), y, groups, num_groups)

    def __repr__(self) -> str:
        return f"RateSurrogate({self.constraint!r}, temperature={self.temperature:g}, threshold={self.threshold:g})"


def _checked(probs: Tensor, y: Tensor, groups: Tensor, num_groups: int | None) -> tuple[Tensor, int]:
    """Check a constraint's inputs; return the groups as int64 and the number of groups."""
    if not (probs.shape == y.shape == groups.shape and probs.dim() in (1, 2)):
        raise ValueError(
            "probs, y and groups must be of equal length, 1-D (n,) or 2-D (r, n); got shapes "
            f"{tuple(probs.shape)}, {tuple(y.shape)}, {tuple(groups.shape)}"
        )
    if num_groups is None:
        num_groups = int(groups.max().item()) + 1 if groups.numel() else 1
    return groups.long(), num_groups


_CONSTRAINTS: Registry[type[FairnessConstraint]] = Registry("fairness constraint", base=FairnessConstraint, entries={
    "dp": DemographicParity,
    "demographic_parity": DemographicParity,
    "eo": EqualizedOdds,
    "equalized_odds": EqualizedOdds,
    "eopp": EqualOpportunity,
    "equal_opportunity": EqualOpportunity,
    "released_dp": ReleasedDemographicParity,
})

_C = TypeVar("_C", bound=type)


def register_constraint(name: str, *, overwrite: bool = False) -> Callable[[_C], _C]:
    """Class decorator registering a :class:`FairnessConstraint` subclass under ``name``.

    The name then works wherever a constraint name does: ``create_constraint(name)``,
    ``TrainConfig(constraint=name)``, ``fairbinn train --constraint name``. The
    class is built as ``cls(norm=...)``. Names are case-insensitive (see
    :mod:`fairbinn.core.registry`); a taken name raises ``ValueError`` unless
    ``overwrite=True``.
    """
    return _CONSTRAINTS.register(name, overwrite=overwrite)


def list_constraints() -> list[str]:
    """Names accepted by :func:`create_constraint` (short names and long aliases), sorted."""
    return _CONSTRAINTS.names()


def create_constraint(
    constraint: str | FairnessConstraint, norm: str = "squared", *, surrogate: str = "score",
    temperature: float = 0.1, threshold: float = 0.5,
) -> FairnessConstraint:
    """The constraint ``constraint`` names (case-insensitive; ``ValueError`` naming the choices if
    unknown), built as ``cls(norm=norm)``, or ``constraint`` itself if it is a constraint object.

    With ``surrogate="rate"`` it is wrapped in :class:`RateSurrogate` (``temperature``,
    ``threshold``), unless it already is one; ``"score"`` (the default) leaves it on the scores.
    """
    if surrogate not in SURROGATES:
        raise ValueError(f"surrogate must be one of {SURROGATES}, got {surrogate!r}")
    if not isinstance(constraint, FairnessConstraint):
        constraint = _CONSTRAINTS.create(constraint, norm=norm)
    if surrogate == "rate" and not isinstance(constraint, RateSurrogate):
        constraint = RateSurrogate(constraint, temperature, threshold)
    return constraint
