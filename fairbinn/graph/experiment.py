"""The graph benchmarks (NBA, Pokec-z, Pokec-n, Bail): the paper's settings and GNN, loaders, their registration."""

from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Sequence

from ..benchmark import Benchmark, register_benchmark, run
from ..core.config import TrainConfig
from ..core.runtime import resolve_device
from ..core.trainer import TrainResult
from .backbones import build_gnn
from .dataset import FullGraph, GraphDataset
from .datasets import GRAPH_DATASETS, load_graph
from .minibatch import NeighborBatches, neighbor_batches

__all__ = ["PAPER_GRAPH_SETTINGS", "BAIL_SETTINGS", "paper_gnn", "run_graph"]

PAPER_GRAPH_SETTINGS: dict[str, Any] = dict(epochs=1000, lr=1e-2, fairness_lr=1e-5, eta=1000.0)
"""FairBiNN's graph training settings (stated for NBA; used for Pokec-z/n too):
1000 full-batch epochs, Adam with lr 1e-2 for the network and 1e-5 for the
fairness layer, eta 1000. The network: 2 GNN layers (hidden 64, dropout 0.5),
1 fairness layer, 1 linear layer after it (:func:`paper_gnn`). The fairness
layer steps by ``TrainConfig.follower_optimizer``, plain SGD by default; the
paper's Adam is ``follower_optimizer="adam"``."""

BAIL_SETTINGS: dict[str, Any] = dict(epochs=1000, lr=1e-3, fairness_lr=1e-5, eta=1000.0)
"""Bail's default training settings (FairBiNN did not run Bail): FairBiNN's graph
game and network (1000 full-batch epochs, fairness lr 1e-5, eta 1000, the
:func:`paper_gnn` network with hidden 64 and dropout 0.5) with NIFTY's learning
rate for Bail, 1e-3 (``nifty_sota_gnn.py``; NIFTY's GCN has hidden 16 and
Adam weight decay 1e-5, which :class:`~fairbinn.core.config.TrainConfig` has
no field for, so there is none). The network lr 1e-2 of NBA's setting is ten
times NIFTY's on a graph 47 times larger."""

_SETTINGS: dict[str, dict[str, Any]] = {"bail": BAIL_SETTINGS}
"""Per-benchmark training settings; the others use :data:`PAPER_GRAPH_SETTINGS`."""


def paper_gnn(data: GraphDataset, backbone: str = "gcn", **kwargs: Any):
    """:func:`~fairbinn.graph.backbones.build_gnn` for ``data`` with the paper's defaults.

    Two ``backbone`` layers ("gcn" or "gat") of width 64 with dropout 0.5, one
    linear fairness layer, one linear output layer; ``kwargs`` override them.
    """
    return build_gnn(data.num_features, backbone, **kwargs)


def run_graph(
    data: str | GraphDataset,
    config: TrainConfig | None = None,
    *,
    backbone: str = "gcn",
    data_dir: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    num_neighbors: Sequence[int] | None = None,
    full_batch_eval: bool = False,
    sparse_adjacency: bool = False,
    fairness_nodes: str = "train",
    **config_overrides: Any,
) -> TrainResult:
    """Train and evaluate one GNN on a graph benchmark, full batch or on neighbour-sampled mini-batches.

    Parameters
    ----------
    data : str or GraphDataset
        "nba", "pokec_z", "pokec_n", "bail", or a loaded graph.
    config : TrainConfig, optional
        Default: ``TrainConfig(**PAPER_GRAPH_SETTINGS)`` (Bail: :data:`BAIL_SETTINGS`); ``config_overrides``
        change single fields. Full batch, ``batch_size`` is unused (every step
        sees the whole graph; the training mask selects the nodes of the
        loss); with ``num_neighbors`` it is the number of seed nodes per
        mini-batch.
    backbone : str, default "gcn"
        "gcn", "gat" or another registered body.
    model_kwargs : dict, optional
        Passed to :func:`paper_gnn` (``hidden_channels``, ``dropout``, ...).
    num_neighbors : sequence of int, optional
        Train on neighbour-sampled mini-batches instead of the full graph
        (:class:`~fairbinn.graph.minibatch.NeighborBatches`): ``config.batch_size``
        training nodes per step with ``num_neighbors[i]`` neighbours sampled
        per node at hop ``i`` (e.g. ``[10, 10]`` for two GNN layers); the
        losses and the fairness constraint cover the batch's seed nodes only.
        The graph stays on the CPU; each mini-batch moves to ``config.device``.
        Needs PyG's sampling backend (``pyg-lib`` or ``torch-sparse``). GCN
        normalises with the sampled subgraph's degrees, which on power-law
        graphs costs accuracy; a GraphSAGE body (mean aggregation) does not
        have that problem (see :mod:`fairbinn.graph.minibatch`).
    full_batch_eval : bool, default False
        With ``num_neighbors``: evaluate validation and test on the full graph
        (exact, needs the memory of a full-batch forward pass) instead of on
        mini-batches sampled the same way as training's.
    sparse_adjacency : bool, default False
        Full-batch passes hand the body the adjacency as a sparse CSR matrix
        (:meth:`~fairbinn.graph.dataset.GraphDataset.with_sparse_adjacency`):
        the same model and results up to float rounding; GCN and GraphSAGE
        steps several times faster on large graphs. The body must accept it
        (PyG's convolutions do).
    fairness_nodes : {"train", "all"}, default "train"
        The nodes the fairness loss covers: the training nodes (as the BCE),
        or every node whose group is known. "all" needs a constraint that
        reads no labels (demographic parity, on either surrogate) and
        full-batch training; it uses the groups of the validation and test
        nodes while training (transductively, as the graph's features), never
        their labels.

    When the validation nodes are the test nodes (FairGNN's NBA protocol) an
    epoch chosen on validation is chosen on test; the run then warns, and the
    result's ``extra["val_is_test"]`` says so. The result's ``extra`` also
    holds the graph summary, the parameter counts and the wall time.
    """
    dataset = load_graph(data, data_dir) if isinstance(data, str) else data
    return run(dataset, config, model_kwargs={"backbone": backbone, **(model_kwargs or {})},
               loader_kwargs={"num_neighbors": num_neighbors, "full_batch_eval": full_batch_eval,
                              "sparse_adjacency": sparse_adjacency, "fairness_nodes": fairness_nodes},
               **config_overrides)


def _loaders(dataset: GraphDataset, config: TrainConfig, num_neighbors: Sequence[int] | None = None,
             full_batch_eval: bool = False, sparse_adjacency: bool = False,
             fairness_nodes: str = "train") -> tuple[Any, Any, Any]:
    """The full graph on ``config.device`` as three masked splits, or neighbour-sampled mini-batches."""
    if dataset.val_is_test and config.selection_metric is not None:
        warnings.warn(f"{dataset.name}: the validation nodes are the test nodes (FairGNN's protocol), so selecting "
                      f"the epoch on validation {config.selection_metric} selects it on test; use "
                      "selection_metric=None (last epoch) or load the graph with test_as_val=False",
                      UserWarning, stacklevel=4)
    if fairness_nodes not in ("train", "all"):
        raise ValueError(f"fairness_nodes must be 'train' or 'all', got {fairness_nodes!r}")
    if fairness_nodes == "all":
        if num_neighbors is not None:
            raise ValueError("fairness_nodes='all' needs full-batch training (num_neighbors=None): a mini-batch "
                             "holds only its seed nodes' neighbourhoods")
        if config.strategy != "erm" and config.build_constraint().uses_labels:
            raise ValueError(f"fairness_nodes='all' needs a constraint that reads no labels (demographic parity); "
                             f"{config.build_constraint()!r} reads them, and the unlabelled, validation and test "
                             "nodes' labels must not be used")
    if num_neighbors is not None:
        sampled = neighbor_batches(dataset, batch_size=config.batch_size, num_neighbors=num_neighbors, seed=config.seed)
        if not full_batch_eval:
            return sampled
    full = dataset.with_sparse_adjacency() if sparse_adjacency else dataset
    on_device = full.to(resolve_device(config.device))
    train = on_device.train
    if fairness_nodes == "all":
        data = on_device.data
        train = FullGraph(data, data.train_mask, "train", fairness_mask=data.sens >= 0)
    return sampled[0] if num_neighbors is not None else train, on_device.val, on_device.test


def _describe(result: TrainResult, dataset: GraphDataset, loaders: tuple, model_kwargs: dict[str, Any]) -> dict:
    extra: dict[str, Any] = {"val_is_test": dataset.val_is_test}
    if isinstance(loaders[1], FullGraph):
        extra["adjacency"] = "sparse csr" if "adj_t" in loaders[1].data else "edge_index"
    if isinstance(loaders[0], FullGraph):
        fairness_mask = loaders[0].fairness_mask
        extra["fairness_nodes"] = int((loaders[0].mask if fairness_mask is None else fairness_mask).sum())
    if isinstance(loaders[0], NeighborBatches):
        extra["minibatch"] = {
            "num_neighbors": [int(k) for k in loaders[0].num_neighbors],
            "batch_size": loaders[0].batch_size,
            "batches_per_epoch": len(loaders[0]),
            "evaluation": "neighbour-sampled mini-batches" if isinstance(loaders[1], NeighborBatches) else "full batch",
        }
    return extra


def _headline(dataset: GraphDataset, model_kwargs: dict[str, Any]) -> str:
    summary = dataset.summary()
    return (f"{dataset.name} ({model_kwargs.get('backbone', 'gcn')}): test metrics, {summary['test']['nodes']} test "
            f"nodes, {summary['train']['nodes']} training nodes, groups {dataset.group_names}")


for _name, _spec in GRAPH_DATASETS.items():
    register_benchmark(Benchmark(
        _name, "graph", load=functools.partial(load_graph, _name), build_model=paper_gnn,
        paper_settings=lambda dataset, settings=_SETTINGS.get(_name, PAPER_GRAPH_SETTINGS): settings,
        loaders=_loaders, describe=_describe,
        headline=_headline, dataset_type=GraphDataset, source=_spec.source,
    ))
