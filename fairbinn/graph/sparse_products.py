"""Products of a sparse matrix of fixed pattern with dense features, differentiable in both, without per-edge messages.

A graph layer that aggregates ``out_i = sum_j A_ij x_j`` over a fixed graph
can keep the graph's sparsity :class:`Pattern` (its entries sorted by row,
then column, and where each entry sits in the transpose) and multiply by
``A`` with :func:`pattern_matmul`. The backward pass multiplies by the
transpose (built from the kept pattern, not converted afresh) and, where the
entries need a gradient, takes one dot product per entry with
:func:`pattern_dot` (``torch.sparse.sampled_addmm``), so no ``(E, C)``
tensor is formed. Both are differentiable to any order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["Pattern", "pattern_matmul", "pattern_dot"]


class Pattern:
    """A fixed ``n x n`` sparsity pattern, entries sorted by row then column, and its transpose."""

    def __init__(self, row: Tensor, col: Tensor, num_nodes: int) -> None:
        self.num_nodes, self.row, self.col = num_nodes, row, col
        self.crow = _pointers(row, num_nodes)
        self.t_order = torch.argsort(col * num_nodes + row, stable=True)  # the transpose's entries, row-sorted
        self.t_crow = _pointers(col[self.t_order], num_nodes)
        self.t_col = row[self.t_order]

    def matrix(self, values: Tensor, transpose: bool = False) -> Tensor:
        """The sparse CSR matrix with these entry values (in this pattern's order), or its transpose."""
        size = (self.num_nodes, self.num_nodes)
        if transpose:
            return torch.sparse_csr_tensor(self.t_crow, self.t_col, values[self.t_order], size)
        return torch.sparse_csr_tensor(self.crow, self.col, values, size)


def _pointers(sorted_rows: Tensor, num_nodes: int) -> Tensor:
    pointers = torch.zeros(num_nodes + 1, dtype=torch.long, device=sorted_rows.device)
    pointers[1:] = torch.cumsum(torch.bincount(sorted_rows, minlength=num_nodes), 0)
    return pointers


def pattern_matmul(pattern: Pattern, values: Tensor, x: Tensor, transpose: bool = False) -> Tensor:
    """``A @ x`` (or ``A.T @ x``) for the sparse ``A`` of ``pattern`` with entries ``values`` ``(E,)``; ``x``
    ``(n, C)``. Differentiable in ``values`` and ``x``, to any order."""
    return _PatternMatmul.apply(values, x, pattern, transpose)


def pattern_dot(pattern: Pattern, a: Tensor, b: Tensor) -> Tensor:
    """``(E,)``: for each entry ``k`` of ``pattern``, ``a[row_k] . b[col_k]`` (``a``, ``b`` ``(n, C)``).
    Differentiable in ``a`` and ``b``, to any order."""
    return _PatternDot.apply(a, b, pattern)


class _PatternMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, values: Tensor, x: Tensor, pattern: Pattern, transpose: bool) -> Tensor:
        ctx.save_for_backward(values, x)
        ctx.pattern, ctx.transpose = pattern, transpose
        return torch.sparse.mm(pattern.matrix(values, transpose), x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple:
        values, x = ctx.saved_tensors
        pattern, transpose = ctx.pattern, ctx.transpose
        grad_values = grad_x = None
        if ctx.needs_input_grad[0]:  # d out_i / d A_ij = x_j: grad at (row, col) is grad[row] . x[col]
            grad_values = pattern_dot(pattern, x, grad) if transpose else pattern_dot(pattern, grad, x)
        if ctx.needs_input_grad[1]:
            grad_x = pattern_matmul(pattern, values, grad, transpose=not transpose)
        return grad_values, grad_x, None, None


class _PatternDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor, pattern: Pattern) -> Tensor:
        ctx.save_for_backward(a, b)
        ctx.pattern = pattern
        where = pattern.matrix(a.new_zeros(pattern.row.numel()))
        try:
            return torch.sparse.sampled_addmm(where, a, b.t(), beta=0.0).values()
        except (RuntimeError, NotImplementedError):  # a device or dtype without the kernel: gather both ends
            return (a[pattern.row] * b[pattern.col]).sum(-1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple:
        a, b = ctx.saved_tensors
        pattern = ctx.pattern
        grad_a = pattern_matmul(pattern, grad, b) if ctx.needs_input_grad[0] else None
        grad_b = pattern_matmul(pattern, grad, a, transpose=True) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None
