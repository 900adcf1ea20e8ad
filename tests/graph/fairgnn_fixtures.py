"""Tiny graphs written in FairGNN's file format, for loader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_graph(
    folder: Path,
    stem: str = "toy",
    *,
    num_nodes: int = 40,
    sens: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    edges: list[tuple[int, int]] | None = None,
    ids: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>_relationship.txt``; return their paths.

    Node ids are ``1000 + position`` unless given; by default labels cycle
    -1, 0, 1, 2 (one unlabelled node in four, label 2 binarises to 1), the
    sensitive attribute alternates 0/1, and the edges form a ring.
    """
    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + num_nodes) if ids is None else ids
    labels = np.resize([-1, 0, 1, 2], num_nodes) if labels is None else labels
    sens = np.arange(num_nodes) % 2 if sens is None else sens
    table = pd.DataFrame({
        "user_id": ids,
        "f_a": rng.normal(size=num_nodes).round(3),
        "target": labels,
        "f_b": rng.integers(0, 5, size=num_nodes),
        "group": sens,
    })
    folder.mkdir(parents=True, exist_ok=True)
    nodes = folder / f"{stem}.csv"
    table.to_csv(nodes, index=False)
    if edges is None:
        edges = [(int(ids[i]), int(ids[(i + 1) % num_nodes])) for i in range(num_nodes)]
    relationship = folder / f"{stem}_relationship.txt"
    relationship.write_text("".join(f"{a}\t{b}\n" for a, b in edges))
    return nodes, relationship
