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
from typing import ClassVar

import torch
from torch import Tensor

from . import distributed

__all__ = [
    "FairnessConstraint",
    "DemographicParity",
    "EqualizedOdds",
    "EqualOpportunity",
    "create_constraint",
    "list_constraints",
    "group_gaps",
]

NORMS = ("squared", "absolute")


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
        if not (probs.shape == y.shape == groups.shape and probs.dim() in (1, 2)):
            raise ValueError(
                "probs, y and groups must be of equal length, 1-D (n,) or 2-D (r, n); got shapes "
                f"{tuple(probs.shape)}, {tuple(y.shape)}, {tuple(groups.shape)}"
            )
        if num_groups is None:
            num_groups = int(groups.max().item()) + 1 if groups.numel() else 1
        groups = groups.long()
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


_CONSTRAINTS: dict[str, type[FairnessConstraint]] = {
    "dp": DemographicParity,
    "demographic_parity": DemographicParity,
    "eo": EqualizedOdds,
    "equalized_odds": EqualizedOdds,
    "eopp": EqualOpportunity,
    "equal_opportunity": EqualOpportunity,
}


def list_constraints() -> list[str]:
    """Names accepted by :func:`create_constraint` (short names and long aliases)."""
    return sorted(_CONSTRAINTS)


def create_constraint(
    constraint: str | FairnessConstraint, norm: str = "squared"
) -> FairnessConstraint:
    """Return ``constraint`` itself if it is a constraint object, else build one by name."""
    if isinstance(constraint, FairnessConstraint):
        return constraint
    try:
        cls = _CONSTRAINTS[constraint.lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"unknown fairness constraint {constraint!r}; choose one of {list_constraints()}"
        ) from None
    return cls(norm=norm)
