"""Graph benchmarks: FairGNN-format graphs (NBA, Pokec-z, Pokec-n), NIFTY-format graphs (Bail), PyG GNN backbones,
neighbour-sampled mini-batches and a Pokec-like synthetic graph of any size."""

import warnings

with warnings.catch_warnings():
    # torch_geometric calls torch.jit.script while importing, which this torch deprecates: not the user's concern
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    import torch_geometric  # noqa: F401

from .backbones import (
    GraphEncoder,
    build_gnn,
    create_gnn_body,
    list_gnn_bodies,
    register_gnn_body,
    residual_gat,
)
from .dataset import FullGraph, GraphDataset, check_graph
from .gat import ReusingGAT, ReusingGATConv
from .gcn import ReusingGCN, ReusingGCNConv
from .datasets import (
    GRAPH_DATASETS,
    FairGNNGraph,
    NiftyGraph,
    load_bail,
    load_fairgnn_graph,
    load_graph,
    load_nba,
    load_nifty_graph,
    load_pokec,
)
from .experiment import BAIL_SETTINGS, PAPER_GRAPH_SETTINGS, paper_gnn, run_graph
from .minibatch import NeighborBatches, neighbor_batches, neighbor_sampling_backend
from .splits import fairgnn_split, nifty_split
from .synthetic import POKEC_Z_STATS, pokec_like_graph

__all__ = [
    "GraphDataset",
    "FullGraph",
    "check_graph",
    "fairgnn_split",
    "nifty_split",
    "FairGNNGraph",
    "NiftyGraph",
    "GRAPH_DATASETS",
    "load_fairgnn_graph",
    "load_nba",
    "load_pokec",
    "load_nifty_graph",
    "load_bail",
    "load_graph",
    "GraphEncoder",
    "residual_gat",
    "ReusingGCN",
    "ReusingGCNConv",
    "ReusingGAT",
    "ReusingGATConv",
    "register_gnn_body",
    "create_gnn_body",
    "list_gnn_bodies",
    "build_gnn",
    "PAPER_GRAPH_SETTINGS",
    "BAIL_SETTINGS",
    "paper_gnn",
    "run_graph",
    "NeighborBatches",
    "neighbor_batches",
    "neighbor_sampling_backend",
    "POKEC_Z_STATS",
    "pokec_like_graph",
]
