"""Reading graphs in FairGNN's published file format.

A graph is two files:

* a node table, ``<name>.csv``: a header row, one row per node, an id column
  (``user_id``), a label column, a sensitive-attribute column and numeric
  feature columns;
* an edge list, ``<name>_relationship.txt``: one edge per line, two node ids
  separated by whitespace.

This module turns them into arrays; :mod:`fairbinn.graph.datasets` builds the
:class:`~fairbinn.graph.dataset.GraphDataset`.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PublishedFile", "read_node_table", "read_edge_list", "edges_to_positions", "check_published"]


@dataclass(frozen=True)
class PublishedFile:
    """Size in bytes and sha256 of a file as its authors published it."""

    name: str
    size: int
    sha256: str


def read_node_table(path: Path, id_column: str) -> pd.DataFrame:
    """The node table, checked for an id column with unique integer ids.

    Raises ``ValueError`` naming the problem (missing column, non-integer or
    duplicate ids).
    """
    table = pd.read_csv(path)
    if id_column not in table.columns:
        raise ValueError(f"{path}: no node id column {id_column!r}; columns are {list(table.columns)[:12]}...")
    ids = table[id_column]
    if not pd.api.types.is_integer_dtype(ids):
        raise ValueError(f"{path}: node ids in {id_column!r} must be integers, got dtype {ids.dtype}")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise ValueError(
            f"{path}: {len(duplicated)} duplicate node id(s) in {id_column!r}, "
            f"e.g. {duplicated.unique()[:5].tolist()}; every node must appear once"
        )
    return table


def read_edge_list(path: Path) -> np.ndarray:
    """Edges as an int64 array ``(m, 2)`` of node ids, one pair per line.

    Raises ``ValueError`` naming the first line that is not two integers.
    """
    try:
        fast = pd.read_csv(path, sep=r"\s+", header=None)
    except pd.errors.EmptyDataError:
        return np.empty((0, 2), dtype=np.int64)
    except pd.errors.ParserError:  # ragged lines: fall through to the line-by-line diagnosis
        fast = None
    if fast is not None and fast.shape[1] == 2 and all(pd.api.types.is_integer_dtype(t) for t in fast.dtypes):
        return fast.to_numpy(np.int64)
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if fields and (len(fields) != 2 or not all(f.lstrip("-").isdigit() for f in fields)):
            raise ValueError(f"{path}, line {number}: expected two integer node ids, got {line!r}")
    raise ValueError(f"{path}: could not read the edge list as two integer columns")


def edges_to_positions(edges: np.ndarray, ids: np.ndarray, *, source: str = "edge list") -> tuple[np.ndarray, int]:
    """Map an ``(m, 2)`` array of node ids to row positions in ``ids``.

    Edges with an endpoint that is not among ``ids`` are dropped with a
    ``UserWarning`` that counts them. Returns the ``(2, k)`` position array
    and the number of dropped edges.
    """
    index = pd.Index(ids)
    positions = index.get_indexer(edges.reshape(-1)).reshape(-1, 2)
    known = (positions >= 0).all(axis=1)
    dropped = int((~known).sum())
    if dropped:
        unknown_ids = np.unique(edges[positions < 0])
        warnings.warn(
            f"{source}: dropped {dropped} of {len(edges)} edges whose endpoint is not in the node table "
            f"({len(unknown_ids)} unknown node ids, e.g. {unknown_ids[:3].tolist()})",
            UserWarning,
            stacklevel=3,
        )
    return positions[known].T.copy(), dropped


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_published(folder: Path, files: tuple[PublishedFile, ...]) -> list[str]:
    """How the files in ``folder`` differ from the published ones; empty if they are identical.

    The size is compared first and the checksum only computed when sizes match.
    """
    problems = []
    for expected in files:
        path = folder / expected.name
        size = path.stat().st_size
        if size != expected.size:
            problems.append(f"{expected.name} has {size:,} bytes, the published file {expected.size:,}")
        elif _sha256(path) != expected.sha256:
            problems.append(f"{expected.name} has the published size but a different sha256")
    return problems
