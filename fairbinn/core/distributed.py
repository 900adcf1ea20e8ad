"""Data-parallel training over several processes, with exact global group statistics.

Launch with ``torchrun`` (one process per GPU, or several CPU processes); the
trainer notices an initialised process group and does the rest.

Why the result equals a single-process run with the same global batch
----------------------------------------------------------------------
Every global batch (``config.batch_size`` rows, drawn from the same seeded
order on every process) is cut into ``world_size`` contiguous shares, one per
process (:class:`ShardedLoader`); the shares together are exactly the
single-process batch, whatever the sizes (an uneven or empty share is fine).

The losses are not means of per-process losses. Each is computed from sums
over the *global* batch: the BCE is (sum of every process's per-example BCE) /
(global row count); the fairness gap uses every group's global count and
probability sum (:func:`~fairbinn.core.constraints.group_gaps` all-reduces
them), so the same groups are the highest and lowest, and the gap is the sum of
the processes' linear parts. Those sums go through :func:`global_sum`, an
``all_reduce`` of a few numbers per step, so every process holds the same
value of the exact global loss ``L``.

Gradients: ``global_sum``'s backward is itself an all-reduce (sum) of the
incoming gradient. ``L`` is the same function of the global sums on every
process, so each receives ``dL/dS`` and its backward hands
``world_size * dL/dS`` to its local sums: process ``r``'s parameter gradient is
``world_size`` times its share of ``dL/dtheta``. Averaging those gradients over
the processes gives the sum of the shares, ``dL/dtheta``, the single-process
gradient. DistributedDataParallel averages the leader's gradients (all the
parameters for ``erm`` and ``lagrangian``); the bilevel follower, which steps
on ``torch.autograd.grad`` outside DDP, averages its own with
:func:`average_gradients`. Adam then makes the same update on every process.

The hooks are active only inside :func:`exact_statistics` (the trainer's
training epochs) with more than one process; otherwise :func:`global_sum` is
the identity and no collective is called. Not exact: dropout draws (random
masks differ from a single process's), BatchNorm (per-process batch
statistics; DDP broadcasts rank 0's running statistics) and custom constraints
that do not compute their group means with ``group_gaps``.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Any, Callable, Iterator

import torch
from torch import Tensor
from torch import distributed as dist

from .data import Batch, as_batch

__all__ = [
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "init_from_env",
    "barrier",
    "destroy",
    "from_main_process",
    "local_device",
    "exact_statistics",
    "active",
    "global_sum",
    "sum_statistics",
    "average_gradients",
    "global_mean",
    "ShardedLoader",
]

_EXACT = False


def is_distributed() -> bool:
    """Whether a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that writes checkpoints, logs and results."""
    return rank() == 0


def init_from_env(backend: str | None = None, device: str = "cpu", timeout_s: float = 1800) -> bool:
    """Join the process group described by torchrun's variables; return whether one was joined.

    Does nothing (returns False) when ``WORLD_SIZE`` is unset or 1, or when a
    group already exists. ``backend`` defaults to ``nccl`` when ``device`` is a
    CUDA device (each process then uses ``cuda:LOCAL_RANK``) and ``gloo``
    otherwise.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"), timeout=timedelta(seconds=timeout_s))
    return True


def destroy() -> None:
    """Leave the process group (the end of a run that :func:`init_from_env` joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def from_main_process(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` run on rank 0 only, its result (or the exception it raised) sent to every process."""
    if not is_distributed():
        return fn(*args)
    box: list[Any] = [None]
    if is_main_process():
        try:
            box[0] = (True, fn(*args))
        except Exception as error:  # noqa: BLE001 - re-raised on every process below
            box[0] = (False, error)
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value


def local_device(device: torch.device) -> torch.device:
    """``cuda`` without an index becomes ``cuda:LOCAL_RANK`` in a distributed run."""
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    return device


@contextlib.contextmanager
def exact_statistics(exact: bool = True) -> Iterator[None]:
    """Within this block, losses use statistics summed over all processes (see the module docstring);
    ``exact=False`` suspends that, for computations every process repeats on the same data."""
    global _EXACT
    previous, _EXACT = _EXACT, exact
    try:
        yield
    finally:
        _EXACT = previous


def active() -> bool:
    """Whether :func:`global_sum` and :func:`sum_statistics` reduce across processes now."""
    return _EXACT and is_distributed()


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the backward sums the incoming gradients over processes too, itself
    differentiably, so second derivatives (the stackelberg leader's hypergradient) are exact as well."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return _AllReduceSum.apply(grad)


def global_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over the processes, differentiably; ``tensor`` itself when not :func:`active`."""
    return _AllReduceSum.apply(tensor) if active() else tensor


def sum_statistics(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Sum same-dtype-able tensors over the processes in one all-reduce, without gradient.

    Returned in ``tensors[0]``'s dtype; the inputs themselves are returned
    when not :func:`active`.
    """
    if not active():
        return tensors
    with torch.no_grad():
        flat = torch.cat([t.reshape(-1).to(tensors[0].dtype) for t in tensors])
        dist.all_reduce(flat)
        return tuple(part.view_as(t) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors))


def average_gradients(grads: list[Tensor]) -> list[Tensor]:
    """Gradients averaged over the processes in one all-reduce (``grads`` itself when not :func:`active`)."""
    if not active() or not grads:
        return grads
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    return [part.view_as(g) for part, g in zip(flat.split([g.numel() for g in grads]), grads)]


def global_mean(tensors: list[Tensor]) -> list[Tensor]:
    """Tensors averaged over the processes in one all-reduce, differentiably (see :func:`global_sum`):
    what the stackelberg leader's anticipated follower steps use. ``tensors`` itself when not :func:`active`."""
    if not active() or not tensors:
        return tensors
    flat = global_sum(torch.cat([t.reshape(-1) for t in tensors])) / world_size()
    return [part.view_as(t) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


class ShardedLoader:
    """This process's share of every batch of ``loader``.

    ``loader`` must yield the same global batches on every process (a seeded
    :class:`~fairbinn.core.data.TensorLoader`, a ``DataLoader`` with a seeded
    generator, a Dr-Fairness sampler bound to identical models, a full graph).
    Batch rows are cut into ``world_size`` contiguous shares; a masked batch
    (a graph) keeps its inputs whole and cuts the mask's selected nodes
    instead; a batch whose inputs are not a tensor of rows and has no mask is
    kept whole (still exact: every statistic is then counted ``world_size``
    times, which the means cancel). Other attributes (``targets``, ``bind``,
    ``state_dict``, ``epoch_record``, ...) are the wrapped loader's.
    """

    def __init__(self, loader: Any, rank: int, world_size: int) -> None:
        self.loader, self.rank, self.world_size = loader, rank, world_size

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for item in self.loader:
            yield self.shard(as_batch(item))

    def shard(self, batch: Batch) -> Batch:
        if batch.mask is not None:
            index = batch.mask.nonzero().squeeze(1) if batch.mask.dtype == torch.bool else batch.mask
            return batch._replace(mask=index[self._share(len(index))])
        n = batch.y.shape[0]
        if not (isinstance(batch.inputs, Tensor) and batch.inputs.dim() > 0 and batch.inputs.shape[0] == n):
            return batch
        rows = self._share(n)
        return Batch(batch.inputs[rows], batch.y[rows], batch.s[rows],
                     weight=None if batch.weight is None else batch.weight[rows])

    def _share(self, n: int) -> slice:
        """This process's contiguous part of ``n`` rows; the parts of all processes cover them once."""
        return slice(n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size)
