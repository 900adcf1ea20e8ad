"""Loaders of published fairness graphs: FairGNN's format (NBA, Pokec-z, Pokec-n) and NIFTY's (Bail),
or any graph in either format."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data
from torch_geometric.utils import remove_self_loops, to_undirected

from ..core.datadir import DatasetSource, RemoteFile, dataset_dir
from .dataset import GraphDataset
from .fairgnn_files import PublishedFile, check_published, edges_to_positions, read_edge_list, read_node_table
from .nifty_files import read_nifty_edges, read_nifty_nodes
from .splits import fairgnn_split, nifty_split

__all__ = [
    "PublishedGraph",
    "FairGNNGraph",
    "NiftyGraph",
    "GRAPH_DATASETS",
    "load_fairgnn_graph",
    "load_nifty_graph",
    "load_nba",
    "load_pokec",
    "load_bail",
    "load_graph",
]

logger = logging.getLogger("fairbinn")


_FAIRGNN_DATASET = "https://raw.githubusercontent.com/EnyanDai/FairGNN/main/dataset/"
_NIFTY_DATASET = "https://raw.githubusercontent.com/chirag126/nifty/main/dataset/"


@dataclass(frozen=True)
class PublishedGraph:
    """How to read one published graph: a node table ``<stem>.csv`` and an edge list beside it.

    Attributes
    ----------
    name : str
        Dataset name ("nba", "pokec_z", "pokec_n", "bail").
    folder : str
        Sub-directory of the data directory holding the files.
    stem : str
        The files are ``<stem>.csv`` and ``<stem><edge_suffix>``.
    label, sensitive : str
        Label and sensitive-attribute columns.
    label_number : int
        The publishers' label budget (see the format's split).
    published : tuple of PublishedFile
        Sizes and checksums of the published files, when documented.
    remote_folder : str
        Folder of the files under the publishers' ``dataset/`` on GitHub, for downloads.

    Each format (:class:`FairGNNGraph`, :class:`NiftyGraph`) gives its edge
    file's suffix, its repository and :meth:`read`.
    """

    name: str
    folder: str
    stem: str
    label: str
    sensitive: str
    label_number: int
    published: tuple[PublishedFile, ...] = ()
    remote_folder: str = ""

    edge_suffix: ClassVar[str]
    repository: ClassVar[str]  # raw URL of the publishers' dataset/ folder

    @property
    def file_names(self) -> list[str]:
        return [f"{self.stem}.csv", f"{self.stem}{self.edge_suffix}"]

    @property
    def source(self) -> DatasetSource:
        """The published files in the publishers' repository (``fairbinn download <name>``)."""
        base = self.repository + self.remote_folder
        return DatasetSource(self.name, self.folder, tuple(RemoteFile.published(f, base) for f in self.published))

    def settings(self) -> dict[str, Any]:
        """The published settings, as keyword arguments of the format's loader."""
        return dict(label=self.label, sensitive=self.sensitive, label_number=self.label_number, name=self.name)

    def read(self, nodes: Path, edges: Path, **overrides: Any) -> GraphDataset:
        """The graph in the two files with this graph's published settings, ``overrides`` applied."""
        raise NotImplementedError


@dataclass(frozen=True)
class FairGNNGraph(PublishedGraph):
    """One of FairGNN's published graphs (``<stem>.csv``, ``<stem>_relationship.txt``); see
    :class:`PublishedGraph`, plus:

    Attributes
    ----------
    test_as_val : bool
        FairGNN's NBA protocol: the test nodes double as validation nodes.
    normalize_features : bool
        Min-max scale every feature to [-1, 1] (FairGNN does this for NBA only).
    """

    test_as_val: bool = False
    normalize_features: bool = False

    edge_suffix = "_relationship.txt"
    repository = _FAIRGNN_DATASET

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "test_as_val": self.test_as_val, "normalize_features": self.normalize_features}

    def read(self, nodes: Path, edges: Path, **overrides: Any) -> GraphDataset:
        """:func:`load_fairgnn_graph` of the two files with this graph's published settings."""
        return load_fairgnn_graph(nodes, edges, **{**self.settings(), **overrides})


@dataclass(frozen=True)
class NiftyGraph(PublishedGraph):
    """One of NIFTY's published graphs (``<stem>.csv``, ``<stem>_edges.txt``; ``label_number``: at
    most ``label_number // 2`` training nodes per label); see :class:`PublishedGraph`."""

    edge_suffix = "_edges.txt"
    repository = _NIFTY_DATASET

    def read(self, nodes: Path, edges: Path, **overrides: Any) -> GraphDataset:
        """:func:`load_nifty_graph` of the two files with this graph's published settings."""
        return load_nifty_graph(nodes, edges, **{**self.settings(), **overrides})


GRAPH_DATASETS: dict[str, PublishedGraph] = {
    "nba": FairGNNGraph(
        "nba", "nba", "nba", label="SALARY", sensitive="country", label_number=100,
        test_as_val=True, normalize_features=True, remote_folder="NBA/",  # upper case in FairGNN's repository
        published=(
            PublishedFile("nba.csv", 128_489, "fe295195cff01f20b785fe9de1e24062123cb146bdae080ce8b3ea8315d45b80"),
            PublishedFile("nba_relationship.txt", 325_785,
                          "14c73245e5d6b6457cce7504e2bb0ded6b81155e25bf0e7d23793df7c01b4873"),
        ),
    ),
    "pokec_z": FairGNNGraph(
        "pokec_z", "pokec", "region_job", label="I_am_working_in_field", sensitive="region", label_number=500,
        remote_folder="pokec/", published=(
            PublishedFile("region_job.csv", 38_608_131,
                          "62f299e688cc07c29fa36f0d4c0f1c15137bd0fdced5931eec15e724e4bda3cd"),
            PublishedFile("region_job_relationship.txt", 11_351_174,
                          "a34945943c13a8790439c2230bfb00e6573bb82fe781ccc30a295276b825acf8"),
        ),
    ),
    "pokec_n": FairGNNGraph(
        "pokec_n", "pokec", "region_job_2", label="I_am_working_in_field", sensitive="region", label_number=500,
        remote_folder="pokec/", published=(
            PublishedFile("region_job_2.csv", 36_477_998,
                          "2b236a694fe861c826333d5174d8bf779c787072c73c40c185990d93c8ae9a3c"),
            PublishedFile("region_job_2_relationship.txt", 10_280_603,
                          "bab0f431bae94a91a142b03e7f49f53acf981db403d6d38f788cabe51ab17546"),
        ),
    ),
    "bail": NiftyGraph(
        "bail", "bail", "bail", label="RECID", sensitive="WHITE", label_number=100, remote_folder="bail/",
        published=(
            PublishedFile("bail.csv", 820_405, "11a7c62be2b7aed7cb069624789755d5f57acc8b69580564e2401b084e2d5faf"),
            PublishedFile("bail_edges.txt", 20_198_850,
                          "c43049fb5d9a0a994fcf4931fb34838716e4bf40e4ae30b9e504d9f4362ca0fe"),
        ),
    ),
}
"""The published benchmark graphs with their published settings: FairGNN's NBA, Pokec-z and Pokec-n,
NIFTY's Bail."""


def _min_max(x: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """FairGNN's and NIFTY's ``feature_norm``: each column to ``2 (x - min) / (max - min) - 1``, in ``x``'s
    dtype; constant columns to 0 (where ``feature_norm`` divides by zero)."""
    low, high = x.min(axis=0), x.max(axis=0)
    span = high - low
    constant = np.flatnonzero(span == 0).tolist()
    scaled = 2 * (x - low) / np.where(span == 0, span.dtype.type(1), span) - 1
    scaled[:, constant] = 0
    return scaled, constant


def _feature_matrix(table: pd.DataFrame, columns: list[str], source: Path) -> np.ndarray:
    """The feature columns as float64; :func:`read_node_table` has checked their values line by line."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{source}, line 1: feature column(s) {missing} not found; expected them in the header "
            f"(line 1), which names {list(table.columns)[:12]}{'...' if len(table.columns) > 12 else ''}"
        )
    frame = table[columns]
    non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise ValueError(f"{source}: feature column(s) {non_numeric[:5]} are not numeric")
    with_nan = frame.columns[frame.isna().any()].tolist()
    if with_nan:
        raise ValueError(f"{source}: feature column(s) {with_nan[:5]} contain missing values")
    return frame.to_numpy(np.float64)


def load_fairgnn_graph(
    nodes: str | os.PathLike,
    edges: str | os.PathLike,
    *,
    label: str,
    sensitive: str,
    label_number: int,
    features: Sequence[str] | None = None,
    id_column: str = "user_id",
    split_seed: int = 20,
    test_as_val: bool = False,
    normalize_features: bool = False,
    keep_sensitive_feature: bool = False,
    name: str | None = None,
) -> GraphDataset:
    """Load any graph in FairGNN's format (node CSV + whitespace edge list).

    Parameters
    ----------
    nodes, edges : path
        The node table and the edge list (see :mod:`fairbinn.graph.fairgnn_files`).
    label : str
        Label column: a negative (or missing) value marks an unlabelled node,
        a value > 0 is the positive class, 0 the negative class.
    sensitive : str
        Sensitive-attribute column: each distinct value >= 0 becomes a group
        (sorted); a negative or missing value marks a node whose group is unknown.
    label_number : int
        Label budget of :func:`~fairbinn.graph.splits.fairgnn_split`.
    features : sequence of str, optional
        Feature columns; default every column except the id, the label and
        the sensitive attribute.
    id_column : str, default "user_id"
    split_seed : int, default 20
        Seed of FairGNN's shuffle of the labelled nodes (fixed across training seeds).
    test_as_val : bool, default False
        Let the test nodes double as validation nodes (FairGNN's NBA protocol).
    normalize_features : bool, default False
        Min-max scale every feature column to [-1, 1] over all nodes, as FairGNN
        does for NBA (a constant column becomes 0).
    keep_sensitive_feature : bool, default False
        Keep the sensitive attribute among the features (FairBiNN's released
        loader does; FairGNN's drops it). Ignored when ``features`` is given.
    name : str, optional
        Dataset name; default the node file's stem.

    Returns
    -------
    GraphDataset
        Edges made undirected (both directions, duplicates merged, self-loops
        removed). Edges with an endpoint missing from the node table are dropped
        with a warning that counts them. Nodes whose group is unknown are left
        out of every split. ``notes`` records all of this.
    """
    nodes, edges = Path(nodes), Path(edges)
    for path in (nodes, edges):
        if not path.is_file():
            raise FileNotFoundError(f"graph file not found: {path}")
    features = list(features) if features is not None else None
    if features is not None and label in features:
        raise ValueError(f"the label column {label!r} cannot also be a feature")
    excluded = {id_column, label} | (set() if keep_sensitive_feature else {sensitive})
    chosen = set(features) if features is not None else None

    def is_feature(column: str) -> bool:
        return column in chosen if chosen is not None else column not in excluded

    # label and sensitive attribute: numbers, empty for unknown; features: numbers on every row
    table = read_node_table(
        nodes, id_column, required=[label, sensitive],
        numeric=lambda column: column in (label, sensitive) or is_feature(column), complete=is_feature,
    )
    if features is None:
        features = [c for c in table.columns if is_feature(c)]
    x = _feature_matrix(table, features, nodes)
    notes: dict[str, Any] = {}
    if normalize_features:
        x, constant = _min_max(x)
        notes["features"] = "min-max scaled to [-1, 1] over all nodes" + (
            f"; {len(constant)} constant column(s) set to 0" if constant else ""
        )

    raw_label = pd.to_numeric(table[label], errors="coerce").to_numpy(np.float64)
    labelled = np.isfinite(raw_label) & (raw_label >= 0)
    y = np.where(labelled, (raw_label > 0).astype(np.int64), -1)
    raw_sens = pd.to_numeric(table[sensitive], errors="coerce").to_numpy(np.float64)
    known = np.isfinite(raw_sens) & (raw_sens >= 0)
    values, codes = np.unique(raw_sens[known], return_inverse=True)
    sens = np.full(len(table), -1, dtype=np.int64)
    sens[known] = codes
    group_names = [f"{sensitive}={v:g}" for v in values]

    pairs = read_edge_list(edges)
    positions, dropped = edges_to_positions(pairs, table[id_column].to_numpy(), source=str(edges))
    edge_index = torch.as_tensor(positions, dtype=torch.long)
    edge_index, _ = remove_self_loops(edge_index)
    edge_index = to_undirected(edge_index, num_nodes=len(table))
    notes.update(
        edges_in_file=len(pairs),
        edges_dropped_unknown_node=dropped,
        undirected_edges=int(edge_index.shape[1]) // 2,
        unlabelled_nodes=int((~labelled).sum()),
        unknown_group_nodes=int((~known).sum()),
    )

    split = fairgnn_split(np.flatnonzero(labelled), label_number=label_number, seed=split_seed,
                          test_as_val=test_as_val)
    return _assemble(x, edge_index, y, sens, split, known=known, name=name or nodes.stem, features=features,
                     group_names=group_names, label=label, sensitive=sensitive, val_is_test=test_as_val,
                     notes=notes)


def _assemble(x: np.ndarray, edge_index: torch.Tensor, y: np.ndarray, sens: np.ndarray,
              split: tuple[np.ndarray, np.ndarray, np.ndarray], *, known: np.ndarray, name: str,
              features: list[str], group_names: list[str], label: str, sensitive: str, val_is_test: bool,
              notes: dict[str, Any]) -> GraphDataset:
    """The :class:`GraphDataset` of a loaded graph: split positions become masks (nodes of unknown group left out)."""
    masks = []
    for part in split:
        mask = np.zeros(len(y), dtype=bool)
        mask[part] = True
        masks.append(torch.as_tensor(mask & known))
    dropped_unknown = int((~known[np.unique(np.concatenate(split))]).sum())
    if dropped_unknown:
        notes["split_nodes_without_group"] = dropped_unknown
    data = Data(
        x=torch.tensor(x, dtype=torch.float32),
        edge_index=edge_index,
        y=torch.tensor(y),
        sens=torch.tensor(sens),
        train_mask=masks[0],
        val_mask=masks[1],
        test_mask=masks[2],
    )
    dataset = GraphDataset(
        name=name, data=data, feature_names=features, group_names=group_names,
        label=label, sensitive_attribute=sensitive, val_is_test=val_is_test, notes=notes,
    )
    logger.info(
        "%s: %d nodes, %d undirected edges, %d features; %d train / %d val / %d test nodes; %s",
        dataset.name, data.num_nodes, notes["undirected_edges"], len(features),
        int(masks[0].sum()), int(masks[1].sum()), int(masks[2].sum()), notes,
    )
    return dataset


def load_nifty_graph(
    nodes: str | os.PathLike,
    edges: str | os.PathLike,
    *,
    label: str,
    sensitive: str,
    label_number: int = 100,
    features: Sequence[str] | None = None,
    split_seed: int = 20,
    normalize_features: bool = True,
    name: str | None = None,
) -> GraphDataset:
    """Load any graph in NIFTY's format (node CSV without id column + edge list of row numbers).

    Reproduces NIFTY's ``load_bail`` followed by the normalisation of its
    ``nifty_sota_gnn.py`` (github.com/chirag126/nifty), which is also how
    FairVGNN and PyGDebias read these graphs.

    Parameters
    ----------
    nodes, edges : path
        The node table (row ``i`` is node ``i``) and the edge list (two row
        numbers per line, integers or floats such as ``3.597e+03``); see
        :mod:`fairbinn.graph.nifty_files`.
    label, sensitive : str
        The label and sensitive-attribute columns; both must hold only 0 and 1
        (groups ``<sensitive>=0`` and ``<sensitive>=1``).
    label_number : int, default 100
        Label budget of :func:`~fairbinn.graph.splits.nifty_split`: at most
        ``label_number // 2`` training nodes per label (NIFTY uses 100 for Bail).
    features : sequence of str, optional
        Feature columns; default every column except the label, the sensitive
        attribute included, in file order (NIFTY's ``header.remove(predict_attr)``).
    split_seed : int, default 20
        Seed of NIFTY's per-label shuffle.
    normalize_features : bool, default True
        NIFTY's ``feature_norm``: every feature column except the sensitive one
        scaled to ``2 (x - min) / (max - min) - 1`` over all nodes, in float32
        as NIFTY does it (so the values are NIFTY's to the bit); the sensitive
        column stays 0/1. A constant column becomes 0 (NIFTY's would be NaN).
    name : str, optional
        Dataset name; default the node file's stem.

    Returns
    -------
    GraphDataset
        ``x`` ``(N, d)`` float32, ``y`` and ``sens`` ``(N,)`` 0/1. Edges made
        undirected (both directions, duplicates merged) without self-loops:
        NIFTY symmetrises the adjacency matrix the same way and then adds a
        self-loop to every node (``adj + sp.eye``); GCN and GAT add exactly
        those self-loops themselves, so the message passing is NIFTY's. Self-loops
        in the file are dropped for the same reason. Isolated nodes are kept.
        ``notes`` counts the edge lines, the self-loops in the file, the
        undirected edges and the isolated nodes.

    Raises
    ------
    ValueError
        Naming the file (and line) for a missing label or sensitive column, a
        value other than 0/1 in either, a non-numeric or empty feature value,
        an edge line that is not two integers or names a row outside the node
        table, an edge list without edges, or one with self-loops only.
    """
    nodes, edges = Path(nodes), Path(edges)
    for path in (nodes, edges):
        if not path.is_file():
            raise FileNotFoundError(f"graph file not found: {path}")
    table = read_nifty_nodes(nodes, binary=[label, sensitive])
    features = [c for c in table.columns if c != label] if features is None else list(features)
    if label in features:
        raise ValueError(f"the label column {label!r} cannot also be a feature")
    x = _feature_matrix(table, features, nodes).astype(np.float32)  # NIFTY: sp.csr_matrix(..., dtype=np.float32)
    notes: dict[str, Any] = {}
    if normalize_features:
        scaled_columns = [i for i, c in enumerate(features) if c != sensitive]
        x[:, scaled_columns], constant = _min_max(x[:, scaled_columns])
        notes["features"] = (f"min-max scaled to [-1, 1] over all nodes except the sensitive column "
                             f"{sensitive!r}" if sensitive in features else "min-max scaled to [-1, 1] over all nodes")
        if constant:
            notes["features"] += f"; {len(constant)} constant column(s) set to 0"

    num_nodes = len(table)
    pairs = read_nifty_edges(edges, num_nodes)
    edge_index = torch.as_tensor(pairs.T.copy(), dtype=torch.long)
    self_loops = int((edge_index[0] == edge_index[1]).sum())
    edge_index, _ = remove_self_loops(edge_index)
    if edge_index.shape[1] == 0:
        raise ValueError(f"{edges}: expected edges between distinct nodes, found only {self_loops} self-loop(s)")
    edge_index = to_undirected(edge_index, num_nodes=num_nodes)
    degree = np.bincount(edge_index[0].numpy(), minlength=num_nodes)
    notes.update(
        edges_in_file=len(pairs),
        self_loops_in_file=self_loops,
        undirected_edges=int(edge_index.shape[1]) // 2,
        isolated_nodes=int((degree == 0).sum()),
    )

    y = table[label].to_numpy(np.int64)
    sens = table[sensitive].to_numpy(np.int64)
    split = nifty_split(y, label_number=label_number, seed=split_seed)
    return _assemble(x, edge_index, y, sens, split, known=np.ones(num_nodes, dtype=bool),
                     name=name or nodes.stem, features=features, group_names=[f"{sensitive}=0", f"{sensitive}=1"],
                     label=label, sensitive=sensitive, val_is_test=False, notes=notes)


def _load_published(
    spec: PublishedGraph, data_dir: str | os.PathLike | None, folder: str | None, **overrides: Any
) -> GraphDataset:
    location, (nodes, edges) = dataset_dir(folder or spec.folder, data_dir, [spec.file_names])
    differences = check_published(location, spec.published) if spec.published else []
    if differences:
        warnings.warn(
            f"{spec.name}: the files in {location} are not the published ones ({'; '.join(differences)}); "
            "results on them are not comparable with the paper",
            UserWarning,
            stacklevel=3,
        )
    dataset = spec.read(nodes, edges, **overrides)
    dataset.notes["published_files"] = (
        "unverified (no published checksum)" if not spec.published
        else "differ: " + "; ".join(differences) if differences else "verified (size and sha256)"
    )
    return dataset


def load_nba(data_dir: str | os.PathLike | None = None, *, folder: str | None = None, **overrides: Any) -> GraphDataset:
    """FairGNN's NBA graph: 403 players, label SALARY (above median), sensitive attribute country.

    Reads ``<data_dir>/nba/nba.csv`` and ``nba_relationship.txt``. Defaults are
    FairGNN's published NBA setting: features min-max scaled to [-1, 1], label
    budget 100, split seed 20, and the test nodes (every labelled node after
    the first 100 shuffled ones) doubling as validation nodes. Pass
    ``test_as_val=False`` for disjoint validation and test splits.
    ``overrides`` go to :func:`load_fairgnn_graph`.
    """
    return _load_published(GRAPH_DATASETS["nba"], data_dir, folder, **overrides)


def load_pokec(
    variant: str = "z",
    data_dir: str | os.PathLike | None = None,
    *,
    folder: str | None = None,
    **overrides: Any,
) -> GraphDataset:
    """FairGNN's Pokec-z (``variant="z"``, ``region_job``) or Pokec-n (``"n"``, ``region_job_2``).

    Reads ``<data_dir>/pokec/<stem>.csv`` and ``<stem>_relationship.txt`` (the
    sub-directory can be changed with ``folder``). Label I_am_working_in_field
    binarised (> 0), sensitive attribute region, label budget 500, split seed
    20, disjoint validation and test halves. Files that differ from the
    published ones (size, then sha256) load with a warning. ``overrides`` go to
    :func:`load_fairgnn_graph`.
    """
    key = f"pokec_{variant.lower()}"
    if key not in GRAPH_DATASETS:
        raise ValueError(f"unknown Pokec variant {variant!r}; use 'z' or 'n'")
    return _load_published(GRAPH_DATASETS[key], data_dir, folder, **overrides)


def load_bail(
    data_dir: str | os.PathLike | None = None,
    *,
    folder: str | None = None,
    test_as_val: bool = False,
    **overrides: Any,
) -> GraphDataset:
    """NIFTY's Bail graph: 18,876 defendants, label RECID (recidivism), sensitive attribute WHITE.

    Reads ``<data_dir>/bail/bail.csv`` and ``bail_edges.txt`` (the sub-directory
    can be changed with ``folder``) with NIFTY's published setting
    (:func:`load_nifty_graph`): 18 features (every column but RECID, WHITE
    included and kept 0/1, the others min-max scaled to [-1, 1]), label budget
    100 (50 training nodes per label), split seed 20, per-label validation and
    test quarters. Files that differ from the published ones (size, then
    sha256) load with a warning. ``test_as_val`` is accepted for the command
    line's ``--disjoint-val`` only: Bail's validation and test nodes are
    always disjoint. ``overrides`` go to :func:`load_nifty_graph`
    (``label_number``, ``split_seed``, ``features``, ``normalize_features``).
    """
    if test_as_val:
        raise ValueError("bail: NIFTY's split has disjoint validation and test nodes; test_as_val=True is not "
                         "available")
    return _load_published(GRAPH_DATASETS["bail"], data_dir, folder, **overrides)


def load_graph(name: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> GraphDataset:
    """Load a graph benchmark by (case-insensitive) name: "nba", "pokec_z", "pokec_n" or "bail"."""
    key = name.lower().replace("-", "_")
    if key == "nba":
        return load_nba(data_dir, **kwargs)
    if key == "bail":
        return load_bail(data_dir, **kwargs)
    if key in GRAPH_DATASETS:
        return load_pokec(key[-1], data_dir, **kwargs)
    raise ValueError(f"unknown graph dataset {name!r}; choose one of {sorted(GRAPH_DATASETS)}")
