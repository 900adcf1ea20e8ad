"""A node-classification graph with fairness splits, and its full-batch loaders."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import copy
import warnings
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import to_torch_csr_tensor

from ..core.data import Batch, check_targets

__all__ = ["GraphDataset", "FullGraph", "check_graph"]

SPLITS = ("train", "val", "test")


class FullGraph:
    """One split of a graph as a loader that yields the whole graph once.

    Each iteration yields a single :class:`~fairbinn.core.data.Batch` whose
    ``inputs`` are ``(x, edge_index)`` and whose ``mask`` selects the split's
    nodes, so the encoder runs on the full graph while losses, the fairness
    constraint and metrics see only the masked nodes. When ``data`` carries
    ``adj_t`` (:meth:`GraphDataset.with_sparse_adjacency`) the inputs are
    ``(x, adj_t)`` instead.

    Parameters
    ----------
    data : torch_geometric.data.Data
        With ``x`` ``(N, d)``, ``edge_index`` ``(2, E)``, ``y`` ``(N,)`` (-1 for
        unlabelled nodes) and ``sens`` ``(N,)`` (group index, -1 if unknown).
    mask : Tensor, shape (N,), bool
    name : str
        Used in error messages.
    fairness_mask : Tensor, shape (N,), bool, optional
        The nodes the fairness loss covers, when not ``mask``'s (e.g. every
        node whose group is known, for a constraint that needs no labels);
        handed on as the batch's ``fairness_mask``.
    """

    def __init__(self, data: Data, mask: Tensor, name: str = "data", fairness_mask: Tensor | None = None) -> None:
        self.data = data
        self.mask = mask
        self.name = name
        self.fairness_mask = fairness_mask

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Batch]:
        edges = self.data.adj_t if "adj_t" in self.data else self.data.edge_index
        yield Batch((self.data.x, edges), self.data.y, self.data.sens, self.mask, self.fairness_mask)

    def targets(self) -> tuple[Tensor, Tensor]:
        """Labels and groups of the masked nodes, for the trainer's checks."""
        return self.data.y[self.mask], self.data.sens[self.mask]

    @property
    def num_nodes(self) -> int:
        return int(self.mask.sum())


def check_graph(data: Data, *, allow_val_as_test: bool = False) -> None:
    """Raise ``ValueError`` naming the first problem with a graph's tensors and masks.

    Checks: ``x`` is ``(N, d)`` and finite; ``edge_index`` is ``(2, E)`` with
    node indices in ``[0, N)``; ``y`` and ``sens`` are ``(N,)``; the masks are
    boolean ``(N,)`` and non-empty; the training mask shares no node with the
    validation or test mask; validation and test are disjoint, or identical when
    ``allow_val_as_test`` (FairGNN's published NBA protocol); every masked node
    has a 0/1 label and a known group; the labelled nodes of the splits hold at
    least two groups.
    """
    n = data.num_nodes
    x, edge_index = data.x, data.edge_index
    if x is None or x.dim() != 2 or x.shape[0] != n:
        raise ValueError(f"x must have shape (num_nodes={n}, d), got {None if x is None else tuple(x.shape)}")
    if not torch.isfinite(x).all():
        row, col = (~torch.isfinite(x)).nonzero()[0].tolist()
        raise ValueError(f"x contains NaN or infinite values (first at node {row}, feature {col})")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(f"edge_index refers to nodes outside [0, {n})")
    for name in ("y", "sens"):
        value = getattr(data, name, None)
        if value is None or value.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {None if value is None else tuple(value.shape)}")
    masks = {}
    for split in SPLITS:
        mask = getattr(data, f"{split}_mask", None)
        if mask is None or mask.dtype != torch.bool or mask.shape != (n,):
            raise ValueError(f"{split}_mask must be a boolean tensor of shape ({n},)")
        if not mask.any():
            raise ValueError(f"{split}_mask selects no node")
        masks[split] = mask
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = int((masks[a] & masks[b]).sum())
        if not shared:
            continue
        if (a, b) == ("val", "test") and allow_val_as_test and torch.equal(masks[a], masks[b]):
            continue
        raise ValueError(
            f"{a}_mask and {b}_mask overlap in {shared} node(s); splits must be disjoint"
            + (" (validation may equal test only as FairGNN's NBA protocol, test_as_val=True)"
               if (a, b) == ("val", "test") else "")
        )
    for split, mask in masks.items():
        check_targets(data.y[mask], data.sens[mask], name=f"{split} nodes")
    labelled = masks["train"] | masks["val"] | masks["test"]
    groups = torch.unique(data.sens[labelled])
    if len(groups) < 2:
        raise ValueError(
            f"the sensitive attribute has a single group ({groups.tolist()}) among the labelled nodes; "
            "fairness between groups is undefined"
        )


@dataclass(frozen=True)
class GraphDataset:
    """A graph with node splits for fair node classification.

    Attributes
    ----------
    name : str
    data : torch_geometric.data.Data
        ``x`` ``(N, d)`` float32, ``edge_index`` ``(2, E)`` int64 (undirected:
        both directions, no duplicates, no self-loops; GCN and GAT add their
        own), ``y`` ``(N,)`` int64 (0/1, -1 for unlabelled nodes), ``sens``
        ``(N,)`` int64 (group index, -1 if unknown), and boolean
        ``train_mask``, ``val_mask``, ``test_mask`` ``(N,)``.
    feature_names, group_names : list of str
    label, sensitive_attribute : str
    val_is_test : bool
        True under FairGNN's NBA protocol, where the test nodes double as the
        validation nodes: choosing an epoch "on validation" then chooses it on
        test.
    notes : dict
        What loading did (edges dropped, nodes without a label or group, ...).
    """

    name: str
    data: Data
    feature_names: list[str]
    group_names: list[str]
    label: str
    sensitive_attribute: str
    val_is_test: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_graph(self.data, allow_val_as_test=self.val_is_test)

    @property
    def num_features(self) -> int:
        return int(self.data.num_features)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    def split(self, name: str) -> FullGraph:
        """The full-batch loader of split ``name`` ("train", "val" or "test")."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return FullGraph(self.data, getattr(self.data, f"{name}_mask"), name)

    @property
    def train(self) -> FullGraph:
        return self.split("train")

    @property
    def val(self) -> FullGraph:
        return self.split("val")

    @property
    def test(self) -> FullGraph:
        return self.split("test")

    def with_sparse_adjacency(self) -> "GraphDataset":
        """A copy whose full-batch loaders hand the body ``adj_t`` instead of ``edge_index``.

        ``adj_t`` is the transposed adjacency as a ``torch.sparse_csr`` tensor
        ``(N, N)`` (row ``i`` lists the sources of the edges into ``i``; PyG's
        ``ToSparseTensor(layout=torch.sparse_csr)`` layout). PyG's GCN and GraphSAGE
        then aggregate with one sparse matrix product instead of gathering and
        scattering every edge's message: the same outputs up to float rounding,
        about 5x (GCN) and 8x (GraphSAGE) faster on Bail on a CPU
        (``benchmarks/graph.py --sparse-adjacency``). GAT computes a message
        per edge either way. The body must accept a sparse adjacency in place
        of ``edge_index`` (PyG's convolutions do). ``edge_index`` is kept.
        """
        if "adj_t" in self.data:
            return self
        data = copy.copy(self.data)
        with warnings.catch_warnings():  # torch's "sparse CSR support is in beta" notice
            warnings.simplefilter("ignore", UserWarning)
            data.adj_t = to_torch_csr_tensor(data.edge_index.flip(0), size=(data.num_nodes, data.num_nodes))
        return replace(self, data=data)

    def to(self, device: torch.device | str) -> "GraphDataset":
        """A copy whose tensors live on ``device`` (moved once, not every epoch)."""
        return replace(self, data=self.data.to(device))

    def summary(self) -> dict[str, Any]:
        """Node and edge counts, positive rates and group shares of each split, as plain values."""
        data = self.data
        out: dict[str, Any] = {
            "name": self.name,
            "num_nodes": int(data.num_nodes),
            "num_edges": int(data.edge_index.shape[1]),
            "num_features": self.num_features,
            "label": self.label,
            "sensitive_attribute": self.sensitive_attribute,
            "groups": self.group_names,
            "val_is_test": self.val_is_test,
        }
        for split in SPLITS:
            mask = getattr(data, f"{split}_mask").cpu()
            y, s = data.y.cpu()[mask], data.sens.cpu()[mask]
            counts = np.bincount(s.numpy(), minlength=self.num_groups)
            out[split] = {
                "nodes": int(mask.sum()),
                "positive_rate": round(float(y.float().mean()), 4),
                "group_shares": [round(int(c) / len(s), 4) for c in counts],
            }
        out["examples"] = {split: out[split]["nodes"] for split in SPLITS}
        out["notes"] = self.notes
        return out
