"""A GAT layer that aggregates with sparse matrix products instead of one message per edge.

PyG's ``GATConv`` computes a ``(E, heads, C)`` message for every edge
(``alpha_ij * x_j``) and scatters them onto the targets; on a CPU moving
those messages is most of a step (on Bail, 661k edges with the self-loops,
64 channels: about 170 MB per layer and pass, each way). The attention
coefficients themselves are ``(E, heads)`` scalars. :class:`ReusingGATConv`
computes them exactly as ``GATConv`` does, in its edge order (so the
attention dropout draws the same mask), then multiplies the sparse matrix
of coefficients by the node features. Its backward pass needs the
coefficients' gradients, the features' values at each edge's two ends
(:func:`torch.sparse.sampled_addmm`), and the transposed pattern, all
without a per-edge message. The graph's edges with self-loops, their
sparse pattern and its transpose are kept while the layer is called with
the same graph (:class:`~fairbinn.graph.graph_cache.GraphKey`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import GAT, GATConv
from torch_geometric.typing import SparseTensor
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax, to_edge_index

from .graph_cache import GraphKey, KeepsGraphWork, made_under_inference
from .sparse_products import Pattern, pattern_matmul

__all__ = ["ReusingGATConv", "ReusingGAT"]


@dataclass
class _Edges:
    """A graph's edges as ``GATConv`` sees them (self-loops as its settings say), and their sparse pattern."""

    key: GraphKey
    source: Tensor
    target: Tensor
    ptr: Optional[Tensor]  # the targets' CSR pointers when the graph came as a sparse adjacency (GATConv uses them)
    to_pattern: Optional[Tensor]  # the edges in the pattern's order (None: already in it)
    pattern: Optional[Pattern]  # None: repeated edges, which GATConv attends to one by one (its own path)

    def reusable(self) -> bool:
        return not made_under_inference(self.source, self.target)


class ReusingGATConv(KeepsGraphWork, GATConv):
    """``torch_geometric.nn.GATConv`` that aggregates with sparse matrix products.

    The same arguments, parameters, state dict and outputs as ``GATConv``
    (up to float rounding: the sums run in another order), with the same
    attention dropout. On one graph tensor ``x (N, in_channels)`` with
    ``edge_index`` a ``(2, E)`` index or a torch sparse adjacency, it
    computes the attention coefficients as ``GATConv`` does and aggregates
    with one sparse product per head instead of a message per edge, and
    keeps the graph's edges with self-loops and their sparse pattern while it
    is called with the same graph. Bipartite ``(x_src, x_dst)`` inputs,
    ``edge_attr``, ``size``, ``return_attention_weights``,
    ``torch_sparse.SparseTensor`` adjacencies, tensors made under
    ``torch.inference_mode`` and graphs with repeated edges take
    ``GATConv``'s own path.
    """

    def forward(self, x: Any, edge_index: Any, edge_attr: Optional[Tensor] = None, size: Any = None,
                return_attention_weights: Optional[bool] = None) -> Any:
        if (not isinstance(x, Tensor) or not isinstance(edge_index, Tensor) or isinstance(edge_index, SparseTensor)
                or edge_attr is not None or size is not None or return_attention_weights is not None
                or self.lin is None or not GraphKey.trackable(edge_index)):
            return super().forward(x, edge_index, edge_attr, size, return_attention_weights)
        edges = self._edges(edge_index, x.size(0), x.dtype)
        if edges is None or edges.pattern is None:
            return super().forward(x, edge_index, edge_attr, size, return_attention_weights)
        heads, channels = self.heads, self.out_channels
        res = self.res(x) if self.res is not None else None
        x_src = self.lin(x).view(-1, heads, channels)
        # the coefficients as GATConv's edge_update makes them, in its edge order
        alpha = (x_src * self.att_src).sum(-1)[edges.source] + (x_src * self.att_dst).sum(-1)[edges.target]
        alpha = F.leaky_relu(alpha, self.negative_slope)
        alpha = softmax(alpha, edges.target, edges.ptr, x.size(0))
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        if edges.to_pattern is not None:
            alpha = alpha[edges.to_pattern]
        out = torch.stack([pattern_matmul(edges.pattern, alpha[:, h].contiguous(), x_src[:, h].contiguous())
                           for h in range(heads)], dim=1)
        out = out.reshape(-1, heads * channels) if self.concat else out.mean(dim=1)
        if res is not None:
            out = out + res
        if self.bias is not None:
            out = out + self.bias
        return out

    def _edges(self, edge_index: Tensor, num_nodes: int, dtype: torch.dtype) -> Optional[_Edges]:
        settings = (self.add_self_loops, self.flow)
        kept = self.kept_for(edge_index, None, num_nodes, dtype, settings)
        if kept is not None:
            return kept
        if self.flow != "source_to_target":
            return None
        with torch.no_grad():
            edges, ptr = edge_index, None
            if self.add_self_loops:  # as GATConv.forward
                edges, _ = remove_self_loops(edges)
                edges, _ = add_self_loops(edges, fill_value=self.fill_value, num_nodes=num_nodes)
            if edges.is_sparse or edges.layout == torch.sparse_csr:  # an adjacency adj_t: rows are the targets
                if edges.layout != torch.sparse_csr:
                    return None
                ptr = edges.crow_indices()
                (target, source), _ = to_edge_index(edges)
            else:
                source, target = edges[0], edges[1]
            order = torch.argsort(target * num_nodes + source, stable=True)
            row, col = target[order], source[order]
            repeated = bool(((row[1:] == row[:-1]) & (col[1:] == col[:-1])).any())
            in_order = bool(torch.equal(order, torch.arange(order.numel(), device=order.device)))
            pattern = None if repeated else Pattern(row, col, num_nodes)
        self._kept = _Edges(GraphKey.of(edge_index, None, num_nodes, dtype, settings), source, target, ptr,
                            None if in_order else order, pattern)
        return self._kept


class ReusingGAT(GAT):
    """``torch_geometric.nn.GAT`` built of :class:`ReusingGATConv` layers (``v2=False``, the default).

    The same arguments, parameters and outputs as PyG's ``GAT`` (up to float
    rounding); each layer aggregates with sparse products and keeps the
    graph's pattern while it is called with it.
    """

    def init_conv(self, in_channels: Any, out_channels: int, **kwargs: Any) -> Any:
        conv = super().init_conv(in_channels, out_channels, **kwargs)
        if type(conv) is GATConv:  # PyG's own choice of arguments, then this class's aggregation
            conv.__class__ = ReusingGATConv
        return conv
