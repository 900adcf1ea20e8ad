"""What lets a message-passing layer keep the work it did on a graph while it is called with that graph again.

Full-batch training calls every layer with one graph at each step and each
evaluation. Work that depends on the graph alone (a normalised adjacency,
the edges with self-loops, a sparse pattern and its transpose) can be done
once, as long as the layer can tell that it is given the same graph:
:class:`GraphKey` says so when it is the same tensor object, not modified in
place (its version counter unchanged), with the same edge weights, number of
nodes, feature dtype and layer settings. Any other graph is a new one.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

__all__ = ["GraphKey", "KeepsGraphWork", "made_under_inference"]


@dataclass(frozen=True)
class GraphKey:
    """Identifies the graph a layer was called with: compare with :meth:`matches`."""

    edge_index: weakref.ref
    edge_version: int
    edge_weight: Optional[weakref.ref]
    weight_version: int
    num_nodes: int
    dtype: torch.dtype
    settings: tuple

    @classmethod
    def of(cls, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int, dtype: torch.dtype,
           settings: tuple = ()) -> "GraphKey":
        return cls(weakref.ref(edge_index), edge_index._version,
                   None if edge_weight is None else weakref.ref(edge_weight),
                   0 if edge_weight is None else edge_weight._version, num_nodes, dtype, settings)

    def matches(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int, dtype: torch.dtype,
                settings: tuple = ()) -> bool:
        if self.edge_index() is not edge_index or edge_index._version != self.edge_version:
            return False
        if (self.edge_weight is None) != (edge_weight is None):
            return False
        if edge_weight is not None and (self.edge_weight() is not edge_weight
                                        or edge_weight._version != self.weight_version):
            return False
        return num_nodes == self.num_nodes and dtype == self.dtype and settings == self.settings

    @staticmethod
    def trackable(*tensors: Optional[Tensor]) -> bool:
        """Whether the tensors can be told apart from an in-place change: none made under
        ``torch.inference_mode`` (such tensors keep no version counter)."""
        return not any(t is not None and t.is_inference() for t in tensors)


class KeepsGraphWork:
    """Mixin of a ``torch.nn.Module`` that keeps, in ``self._kept``, work done on the last graph it was given.

    ``_kept`` is ``None`` or an object with a ``key`` (:class:`GraphKey`) and
    a ``reusable()`` method (False when the kept tensors cannot serve the
    current grad mode); it is not part of the state dict, is dropped when
    the module is pickled or copied, and when its parameters are reset.
    """

    _kept: Any = None

    def kept_for(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int, dtype: torch.dtype,
                 settings: tuple = ()) -> Any:
        """The kept work when it was done on this graph (and can serve now), else ``None``."""
        kept = self._kept
        if kept is not None and kept.key.matches(edge_index, edge_weight, num_nodes, dtype, settings) \
                and kept.reusable():
            return kept
        self._kept = None  # another graph's, no longer needed
        return None

    def reset_parameters(self) -> None:
        super().reset_parameters()  # type: ignore[misc]
        self._kept = None

    def __getstate__(self) -> dict:
        state = super().__getstate__()  # type: ignore[misc]
        state["_kept"] = None
        return state


def made_under_inference(*tensors: Optional[Tensor]) -> bool:
    """Whether any of the tensors was made under ``torch.inference_mode`` while it is off now: autograd cannot
    save such tensors for a backward pass, so work kept in them serves inference only."""
    return not torch.is_inference_mode_enabled() and any(t is not None and t.is_inference() for t in tensors)
