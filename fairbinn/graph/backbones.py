"""GNN encoders: any PyTorch Geometric body as the encoder of a :class:`FairModel`."""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn
from torch_geometric.nn import GAT

from ..core.fairness_layers import create_fairness_layer
from ..core.model import FairModel
from ..core.registry import Registry
from ..core.saving import records_build
from .gat import ReusingGAT
from .gcn import ReusingGCN

__all__ = [
    "GraphEncoder",
    "residual_gat",
    "register_gnn_body",
    "create_gnn_body",
    "list_gnn_bodies",
    "build_gnn",
]

GNNBodyFactory = Callable[..., nn.Module]


def residual_gat(in_channels: int, hidden_channels: int, num_layers: int, *, dropout: float = 0.0,
                 residual: bool = True, **kwargs: Any) -> GAT:
    """``torch_geometric.nn.GAT`` whose attention layers add a linear projection of each node's own input
    (``GATConv(residual=True)``): the registered "gat" body. Its layers aggregate with sparse matrix
    products (:class:`~fairbinn.graph.gat.ReusingGAT`): PyG's GAT's parameters and, up to float rounding,
    outputs.

    Without it, a GAT layer's output is a convex combination of neighbour
    messages; on a dense graph (NBA: 41 neighbours per node on average) the
    node representations then differ by about 3% of their norm at
    initialisation (GCN's by 24%), and at the paper's lr 1e-2 training fell
    into a constant classifier in 8 of 15 NBA runs (see docs/graphs.md).
    ``residual=False`` gives the plain GAT (no residual projection).
    """
    return ReusingGAT(in_channels, hidden_channels, num_layers, dropout=dropout, residual=residual, **kwargs)


_BODIES: Registry[GNNBodyFactory] = Registry("GNN body", {"gcn": ReusingGCN, "gat": residual_gat})


class GraphEncoder(nn.Module):
    """Adapts a PyG GNN body to a :class:`FairModel` encoder.

    The trainer passes a batch's ``inputs`` as one object; for a graph they
    are ``(x, edge_index)`` (or ``(x, edge_index, *extra)``, handed on as
    further positional arguments, e.g. edge weights). The body is called as
    ``body(x, edge_index, *extra)`` and must return node features
    ``(N, width)``, as every ``torch_geometric.nn`` model and most
    message-passing modules do.
    """

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, inputs: tuple[Tensor, ...]) -> Tensor:
        x, edge_index, *extra = inputs
        return self.body(x, edge_index, *extra)


def register_gnn_body(name: str, factory: GNNBodyFactory, *, overwrite: bool = False) -> None:
    """Register ``factory(in_channels, hidden_channels, num_layers, dropout=..., **kwargs)`` under ``name``.

    Any callable with the signature of ``torch_geometric.nn.GCN`` works (for
    instance ``torch_geometric.nn.GraphSAGE``, ``GIN``, ``PNA`` with its extra
    arguments passed through ``body_kwargs``). Names are case-insensitive (see
    :mod:`fairbinn.core.registry`); a taken name raises ``ValueError`` unless ``overwrite=True``.
    """
    _BODIES.register(name, factory, overwrite=overwrite)


def list_gnn_bodies() -> list[str]:
    """Names of the registered GNN bodies, sorted."""
    return _BODIES.names()


def create_gnn_body(
    name: str, in_channels: int, hidden_channels: int = 64, num_layers: int = 2, dropout: float = 0.5,
    **kwargs: Any,
) -> nn.Module:
    """A PyG body by name: ``(x (N, in_channels), edge_index) -> (N, hidden_channels)``.

    ``"gcn"`` and ``"gat"`` are ``torch_geometric.nn.GCN`` / ``GAT``: ``num_layers``
    convolutions, ReLU and dropout between them, no activation after the last
    (as FairGNN's bodies). GCN and GAT add self-loops themselves. ``"gcn"``
    is :class:`~fairbinn.graph.gcn.ReusingGCN`, PyG's GCN whose layers
    normalise a graph's adjacency once while they are called with it;
    ``"gat"``'s layers aggregate with sparse products
    (:class:`~fairbinn.graph.gat.ReusingGAT`). ``"gat"``'s
    attention layers have a residual projection of each node's own input
    (:func:`residual_gat`; ``residual=False`` for the plain GAT), and its
    dropout applies to the attention coefficients too (PyG's GAT). ``kwargs``
    go to the factory (e.g. ``heads=2`` for GAT).
    """
    factory = _BODIES.get(name)
    return factory(in_channels, hidden_channels, num_layers, dropout=dropout, **kwargs)


@records_build()
def build_gnn(
    in_features: int,
    backbone: str | nn.Module = "gcn",
    *,
    hidden_channels: int = 64,
    num_layers: int = 2,
    dropout: float = 0.5,
    num_fairness_layers: int = 1,
    fairness_layer: str = "linear",
    body_kwargs: dict[str, Any] | None = None,
    **fairness_kwargs: Any,
) -> FairModel:
    """A GNN :class:`FairModel`: GNN body -> fairness block -> ``Linear(hidden, 1)``.

    Parameters
    ----------
    in_features : int
        Node feature width ``d``; the model maps ``(x (N, d), edge_index (2, E))``
        to logits ``(N,)``.
    backbone : str or nn.Module, default "gcn"
        A registered body name ("gcn", "gat", see :func:`list_gnn_bodies`), or
        a ready PyG module ``(x, edge_index) -> (N, hidden_channels)``, e.g.
        ``torch_geometric.nn.GraphSAGE(d, 64, num_layers=2)``.
    hidden_channels : int, default 64
        Width of the body's output, the fairness block and the head's input.
    num_layers : int, default 2
        Message-passing layers of a named body.
    dropout : float, default 0.5
        Dropout between the body's layers.
    num_fairness_layers : int, default 1
    fairness_layer : str, default "linear"
        Registered fairness-layer kind; ``"linear"`` is FairBiNN's
        ``Linear -> ReLU``.
    body_kwargs : dict, optional
        Extra arguments of a named body (e.g. ``{"heads": 2}`` for GAT).
    **fairness_kwargs
        Passed to the fairness-layer factory.
    """
    if not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
    if not isinstance(hidden_channels, int) or hidden_channels < 1:
        raise ValueError(f"hidden_channels must be a positive integer, got {hidden_channels!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if isinstance(backbone, nn.Module):
        body = backbone
        width = getattr(body, "out_channels", hidden_channels)
        if width != hidden_channels:
            raise ValueError(
                f"the backbone outputs {width} channels but hidden_channels is {hidden_channels}; "
                "they must match"
            )
    else:
        body = create_gnn_body(backbone, in_features, hidden_channels, num_layers, dropout, **(body_kwargs or {}))
    fairness = create_fairness_layer(fairness_layer, hidden_channels, num_fairness_layers, **fairness_kwargs)
    return FairModel(encoder=GraphEncoder(body), head=nn.Linear(hidden_channels, 1), fairness=fairness)
