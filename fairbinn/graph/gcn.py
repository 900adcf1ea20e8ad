"""A GCN that normalises a graph's adjacency once for as long as it is called with that graph.

PyG's ``GCNConv`` computes the normalised adjacency ``D^-1/2 (A + I) D^-1/2``
on every call unless ``cached=True``, which keeps the first graph's for every
later call, whichever graph the layer is given then. Full-batch training
calls a layer with one graph at every step and every evaluation, so on a
large graph most of a CPU step goes to that normalisation (on Bail's sparse
CSR adjacency, adding the self-loops sorts its 642k entries in every layer of
every pass). :class:`ReusingGCNConv` keeps the normalised adjacency while it is
called with the same adjacency tensor, unchanged (the same object at the same
version counter, and the same edge weights), and normalises again when it is
given another graph, so a trained model stays correct on any graph. With a
sparse CSR adjacency it also keeps the adjacency's sparsity pattern, so that
the backward pass multiplies by the transpose without converting it afresh
(:mod:`~fairbinn.graph.sparse_products`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor
from torch_geometric.nn import GCN, GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.typing import SparseTensor

from .graph_cache import GraphKey, KeepsGraphWork, made_under_inference
from .sparse_products import Pattern, pattern_matmul

__all__ = ["ReusingGCNConv", "ReusingGCN"]


@dataclass
class _Normalised:
    """A graph's normalised adjacency (and edge weights; and the sparsity pattern of a sparse one)."""

    key: GraphKey
    adjacency: Tensor
    weight: Optional[Tensor]
    pattern: Optional[Pattern]

    def reusable(self) -> bool:
        return not made_under_inference(self.adjacency)


class ReusingGCNConv(KeepsGraphWork, GCNConv):
    """``torch_geometric.nn.GCNConv`` that normalises each graph once while it is called with it.

    The same arguments, parameters, state dict and outputs as ``GCNConv``
    (up to float rounding in the backward pass). With ``normalize=True`` and
    ``cached=False`` (the defaults) the normalised adjacency of the last
    graph is kept and reused while the layer is called with the same
    ``edge_index`` tensor (a ``(2, E)`` index or a torch sparse adjacency),
    not modified in place, the same ``edge_weight`` tensor (or none), the
    same number of nodes, the same feature dtype and the same ``improved``,
    ``add_self_loops`` and ``flow`` settings; any other graph is
    normalised afresh and replaces it. Edge weights that need a gradient,
    tensors made under ``torch.inference_mode`` (which keep no version
    counter), ``torch_sparse.SparseTensor`` adjacencies and ``cached=True``
    (PyG's keep-the-first-graph cache) take ``GCNConv``'s own path. The kept
    adjacency is not part of the state dict and is dropped when the layer is
    pickled.
    """

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Optional[Tensor] = None) -> Tensor:
        if (not self.normalize or self.cached or isinstance(x, (tuple, list)) or not isinstance(edge_index, Tensor)
                or isinstance(edge_index, SparseTensor) or not GraphKey.trackable(edge_index, edge_weight)
                or (edge_weight is not None and edge_weight.requires_grad)):
            return super().forward(x, edge_index, edge_weight)
        normalised = self._normalise(edge_index, edge_weight, x.size(self.node_dim), x.dtype)
        x = self.lin(x)
        out = self.propagate(normalised.adjacency, x=x, edge_weight=normalised.weight)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message_and_aggregate(self, adj_t: Any, x: Tensor) -> Tensor:
        normalised = self._kept
        if normalised is not None and normalised.pattern is not None and adj_t is normalised.adjacency:
            return pattern_matmul(normalised.pattern, adj_t.values(), x)
        return super().message_and_aggregate(adj_t, x)

    def _normalise(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int,
                   dtype: torch.dtype) -> _Normalised:
        settings = (self.improved, self.add_self_loops, self.flow)
        kept = self.kept_for(edge_index, edge_weight, num_nodes, dtype, settings)
        if kept is not None:
            return kept
        with torch.no_grad():
            adjacency, weight = gcn_norm(edge_index, edge_weight, num_nodes, self.improved, self.add_self_loops,
                                         self.flow, dtype)
            pattern = None
            if adjacency.layout == torch.sparse_csr and self.aggr in ("add", "sum"):
                crow = adjacency.crow_indices()
                rows = torch.repeat_interleave(torch.arange(num_nodes, device=crow.device), crow.diff())
                pattern = Pattern(rows, adjacency.col_indices(), num_nodes)
        self._kept = _Normalised(GraphKey.of(edge_index, edge_weight, num_nodes, dtype, settings), adjacency, weight,
                                 pattern)
        return self._kept


class ReusingGCN(GCN):
    """``torch_geometric.nn.GCN`` built of :class:`ReusingGCNConv` layers: the registered ``"gcn"`` body.

    The same arguments, parameters and outputs as PyG's ``GCN``
    (``(x (N, in_channels), edge_index) -> (N, hidden_channels)`` with
    ``out_channels=None``); each layer normalises a graph once while it is
    called with it (see :class:`ReusingGCNConv`).
    """

    def init_conv(self, in_channels: int, out_channels: int, **kwargs: Any) -> ReusingGCNConv:
        return ReusingGCNConv(in_channels, out_channels, **kwargs)
