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

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterator, Sequence

import numpy as np
import pandas as pd

from ..core.datadir import file_sha256
from ..core.tablefile import guess_separator, read_csv_table

__all__ = [
    "PublishedFile", "read_node_table", "read_edge_list", "edges_to_positions", "check_published", "file_sha256",
]


@dataclass(frozen=True)
class PublishedFile:
    """Size in bytes and sha256 of a file as its authors published it."""

    name: str
    size: int
    sha256: str


def read_node_table(
    path: Path,
    id_column: str,
    *,
    required: Sequence[str] = (),
    numeric: Collection[str] | Callable[[str], bool] | None = None,
    complete: Collection[str] | Callable[[str], bool] | None = None,
) -> pd.DataFrame:
    """The node table, checked for an id column with unique integer ids.

    The file is read by :func:`~fairbinn.core.tablefile.read_csv_table`, which
    also checks that the header names the ``required`` columns, that every
    line has as many fields as the header, that the ``numeric`` columns hold
    numbers and the ``complete`` ones a value on every row. Raises
    ``ValueError`` naming the file, the line and what was expected (a missing
    column, a malformed row, a non-integer or duplicate id).
    """
    table = read_csv_table(
        path, required=[id_column, *required], numeric=_and_column(numeric, id_column),
        complete=_and_column(complete, id_column), what="node table", line_index=True,
    )
    ids = table[id_column]
    if not pd.api.types.is_integer_dtype(ids):
        fractional = (ids != np.floor(ids)).to_numpy() if pd.api.types.is_float_dtype(ids) else np.ones(len(ids), bool)
        line = table.index[int(fractional.argmax())]
        raise ValueError(f"{path}, line {line}: expected an integer node id in column {id_column!r}, got {ids.at[line]}")
    duplicated = ids.duplicated().to_numpy()
    if duplicated.any():
        line = table.index[int(duplicated.argmax())]
        first = table.index[int((ids == ids.at[line]).to_numpy().argmax())]
        raise ValueError(
            f"{path}, line {line}: expected every node id once in column {id_column!r}, found {ids.at[line]} "
            f"again (first on line {first}); {int(duplicated.sum())} duplicate node id(s) in all"
        )
    return table.reset_index(drop=True)


def _and_column(selection: Collection[str] | Callable[[str], bool] | None, column: str):
    """``selection`` (column names or a predicate on them) with ``column`` added."""
    if selection is None:
        return [column]
    if callable(selection):
        return lambda name: name == column or selection(name)
    return [column, *selection]


def edge_line_fields(path: Path, what: str) -> Iterator[tuple[int, str, list[str]]]:
    """Each non-blank line of an edge list as ``(line number, line, its two fields)``.

    Raises ``ValueError`` naming the file and line of the first line that is
    not two whitespace-separated fields (``what`` says what they should be,
    e.g. "integer node ids"), with the separator it seems to use instead.
    """
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            other = guess_separator(line) if len(fields) == 1 else None
            hint = f", the line looks {other!r}-separated" if other else ""
            raise ValueError(f"{path}, line {number}: expected two {what} separated by whitespace, "
                             f"found {len(fields)} field(s){hint}: {line!r}")
        yield number, line, fields


def read_edge_list(path: Path) -> np.ndarray:
    """Edges as an int64 array ``(m, 2)`` of node ids, one pair per line.

    Raises ``ValueError`` naming the first line that is not two integers
    separated by whitespace.
    """
    try:
        fast = pd.read_csv(path, sep=r"\s+", header=None)
    except pd.errors.EmptyDataError:
        return np.empty((0, 2), dtype=np.int64)
    except (pd.errors.ParserError, UnicodeDecodeError):  # ragged lines: fall through to the line-by-line diagnosis
        fast = None
    if fast is not None and fast.shape[1] == 2 and all(pd.api.types.is_integer_dtype(t) for t in fast.dtypes):
        return fast.to_numpy(np.int64)
    for number, line, fields in edge_line_fields(path, "integer node ids"):
        bad = [f for f in fields if not f.lstrip("-").isdigit()]
        if bad:
            raise ValueError(f"{path}, line {number}: expected two integer node ids, got {bad[0]!r} in {line!r}")
    raise ValueError(f"{path}: expected two integer node ids on every line, could not read them as such")


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
        elif file_sha256(path) != expected.sha256:
            problems.append(f"{expected.name} has the published size but a different sha256")
    return problems
