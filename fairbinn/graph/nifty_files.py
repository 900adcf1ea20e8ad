"""Reading graphs in NIFTY's published file format (Bail, Credit, German).

NIFTY (Agarwal et al., UAI 2021) distributes a graph as two files:

* a node table, ``<name>.csv``: a header row and one row per node, with no id
  column (a node's id is its 0-based row number), a 0/1 label column, a 0/1
  sensitive-attribute column and numeric feature columns;
* an edge list, ``<name>_edges.txt``: one edge per line, two row numbers
  separated by whitespace and written as floats by ``numpy.savetxt``
  (``0.000000000000000000e+00 3.597000000000000000e+03``).

This module turns them into arrays; :func:`fairbinn.graph.datasets.load_nifty_graph`
builds the :class:`~fairbinn.graph.dataset.GraphDataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..core.tablefile import read_csv_table
from .fairgnn_files import edge_line_fields

__all__ = ["read_nifty_nodes", "read_nifty_edges"]


def read_nifty_nodes(path: Path, *, binary: Sequence[str]) -> pd.DataFrame:
    """The node table (row ``i`` = node ``i``), every column numeric and complete.

    ``binary`` names the columns that must exist and hold only 0 and 1 (the
    label and the sensitive attribute). Raises ``ValueError`` naming the file,
    the line and what was expected. The returned frame is indexed ``0 .. n-1``.
    """
    table = read_csv_table(path, required=list(binary), numeric=lambda c: True, complete=lambda c: True,
                           what="node table", line_index=True)
    if table.empty:
        raise ValueError(f"{path}: expected one row per node after the header, found none")
    for column in binary:
        values = table[column]
        bad = ~values.isin([0, 1])
        if bad.any():
            line = table.index[int(bad.to_numpy().argmax())]
            raise ValueError(
                f"{path}, line {line}: expected 0 or 1 in column {column!r} (a binary label or sensitive "
                f"attribute), got {values.at[line]}; values found: {sorted(values.unique().tolist())[:8]}"
            )
    return table.reset_index(drop=True)


def read_nifty_edges(path: Path, num_nodes: int) -> np.ndarray:
    """Edges as an int64 array ``(m, 2)`` of row numbers in ``[0, num_nodes)``, one pair per line.

    Each line holds two whitespace-separated numbers with integral values
    (``3.597e+03`` is node 3597); blank lines are skipped. Raises
    ``ValueError`` naming the file and the first line that is not two
    integers, or that names a row outside the node table; an edge list
    without any edge is an error too.
    """
    try:
        fast = pd.read_csv(path, sep=r"\s+", header=None, dtype=np.float64)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: expected one edge per line (two node row numbers), the file has none") from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError):  # ragged or non-numeric: diagnose line by line
        fast = None
    if fast is not None and fast.shape[1] == 2:
        values = fast.to_numpy()
        if np.isfinite(values).all() and (values == np.floor(values)).all() and \
                (values >= 0).all() and (values < num_nodes).all():
            return values.astype(np.int64)
    _raise_first_bad_line(path, num_nodes)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise_first_bad_line(path: Path, num_nodes: int) -> None:
    for number, line, fields in edge_line_fields(path, "node row numbers"):
        for field in fields:
            try:
                value = float(field)
            except ValueError:
                value = float("nan")
            if not np.isfinite(value) or value != int(value):
                raise ValueError(f"{path}, line {number}: expected two integer node row numbers (written as "
                                 f"integers or floats), got {field!r} in {line!r}")
            if not 0 <= value < num_nodes:
                raise ValueError(f"{path}, line {number}: node {int(value)} is not a row of the node table, "
                                 f"which has {num_nodes} rows (nodes 0 to {num_nodes - 1}): {line!r}")
    raise ValueError(f"{path}: expected two integer node row numbers on every line, could not read them as such")
