"""Loaders of FairGNN-format graphs: NBA, Pokec-z, Pokec-n, or any graph in that format."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data
from torch_geometric.utils import remove_self_loops, to_undirected

from ..core.datadir import DatasetSource, RemoteFile, dataset_dir
from .dataset import GraphDataset
from .fairgnn_files import PublishedFile, check_published, edges_to_positions, read_edge_list, read_node_table
from .splits import fairgnn_split

__all__ = [
    "FairGNNGraph",
    "GRAPH_DATASETS",
    "load_fairgnn_graph",
    "load_nba",
    "load_pokec",
    "load_graph",
]

logger = logging.getLogger("fairbinn")


@dataclass(frozen=True)
class FairGNNGraph:
    """How to read one of FairGNN's published graphs.

    Attributes
    ----------
    name : str
        Dataset name ("nba", "pokec_z", "pokec_n").
    folder : str
        Sub-directory of the data directory holding the files.
    stem : str
        The files are ``<stem>.csv`` and ``<stem>_relationship.txt``.
    label, sensitive : str
        Label and sensitive-attribute columns.
    label_number : int
        FairGNN's label budget (training nodes at most).
    test_as_val : bool
        FairGNN's NBA protocol: the test nodes double as validation nodes.
    normalize_features : bool
        Min-max scale every feature to [-1, 1] (FairGNN does this for NBA only).
    published : tuple of PublishedFile
        Sizes and checksums of the published files, when documented.
    remote_folder : str
        Folder of the files under FairGNN's ``dataset/`` on GitHub, for downloads.
    """

    name: str
    folder: str
    stem: str
    label: str
    sensitive: str
    label_number: int
    test_as_val: bool = False
    normalize_features: bool = False
    published: tuple[PublishedFile, ...] = ()
    remote_folder: str = ""

    @property
    def file_names(self) -> list[str]:
        return [f"{self.stem}.csv", f"{self.stem}_relationship.txt"]

    @property
    def source(self) -> DatasetSource:
        """The published files in FairGNN's repository (``fairbinn download <name>``)."""
        base = _FAIRGNN_DATASET + self.remote_folder
        return DatasetSource(self.name, self.folder, tuple(RemoteFile.published(f, base) for f in self.published))


_FAIRGNN_DATASET = "https://raw.githubusercontent.com/EnyanDai/FairGNN/main/dataset/"


GRAPH_DATASETS: dict[str, FairGNNGraph] = {
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
}
"""FairGNN's three benchmark graphs with their published settings."""


def _min_max(x: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """FairGNN's ``feature_norm``: each column to ``2 (x - min) / (max - min) - 1``; constant columns to 0."""
    low, high = x.min(axis=0), x.max(axis=0)
    span = high - low
    constant = np.flatnonzero(span == 0).tolist()
    scaled = 2 * (x - low) / np.where(span == 0, 1, span) - 1
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
    masks = []
    for part in split:
        mask = np.zeros(len(table), dtype=bool)
        mask[part] = True
        masks.append(torch.as_tensor(mask & known))
    dropped_unknown = int((~known[np.unique(np.concatenate(split))]).sum())
    if dropped_unknown:
        notes["split_nodes_without_group"] = dropped_unknown
    data = Data(
        x=torch.tensor(x, dtype=torch.float32),
        edge_index=edge_index,
        y=torch.as_tensor(y),
        sens=torch.as_tensor(sens),
        train_mask=masks[0],
        val_mask=masks[1],
        test_mask=masks[2],
    )
    dataset = GraphDataset(
        name=name or nodes.stem, data=data, feature_names=features, group_names=group_names,
        label=label, sensitive_attribute=sensitive, val_is_test=test_as_val, notes=notes,
    )
    logger.info(
        "%s: %d nodes, %d undirected edges, %d features; %d train / %d val / %d test nodes; %s",
        dataset.name, data.num_nodes, notes["undirected_edges"], len(features),
        int(masks[0].sum()), int(masks[1].sum()), int(masks[2].sum()), notes,
    )
    return dataset


def _load_published(
    spec: FairGNNGraph, data_dir: str | os.PathLike | None, folder: str | None, **overrides: Any
) -> GraphDataset:
    location, (nodes, edges) = dataset_dir(folder or spec.folder, data_dir, [spec.file_names])
    settings: dict[str, Any] = dict(
        label=spec.label, sensitive=spec.sensitive, label_number=spec.label_number,
        test_as_val=spec.test_as_val, normalize_features=spec.normalize_features, name=spec.name,
    )
    settings.update(overrides)
    differences = check_published(location, spec.published) if spec.published else []
    if differences:
        warnings.warn(
            f"{spec.name}: the files in {location} are not the published ones ({'; '.join(differences)}); "
            "results on them are not comparable with the paper",
            UserWarning,
            stacklevel=3,
        )
    dataset = load_fairgnn_graph(nodes, edges, **settings)
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


def load_graph(name: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> GraphDataset:
    """Load a graph benchmark by (case-insensitive) name: "nba", "pokec_z" or "pokec_n"."""
    key = name.lower().replace("-", "_")
    if key == "nba":
        return load_nba(data_dir, **kwargs)
    if key in GRAPH_DATASETS:
        return load_pokec(key[-1], data_dir, **kwargs)
    raise ValueError(f"unknown graph dataset {name!r}; choose one of {sorted(GRAPH_DATASETS)}")
