"""Node split protocols: FairGNN's (one shuffle of the labelled nodes) and NIFTY's (one per label)."""

from __future__ import annotations

import random

import numpy as np

__all__ = ["fairgnn_split", "nifty_split"]


def fairgnn_split(
    labelled: np.ndarray,
    *,
    label_number: int,
    seed: int = 20,
    test_as_val: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test node positions as FairGNN draws them.

    Parameters
    ----------
    labelled : array of int, shape (L,)
        Positions of the labelled nodes, in node-table order.
    label_number : int
        The label budget: at most this many training nodes.
    seed : int, default 20
        Seed of the shuffle (FairGNN uses 20 for NBA and Pokec).
    test_as_val : bool, default False
        FairGNN's NBA setting: the test split is every shuffled labelled node
        from position ``label_number`` on, and it doubles as the validation split.

    Returns
    -------
    train, val, test : arrays of int

    The protocol: shuffle the labelled nodes with Python's ``random`` seeded with
    ``seed`` (so the permutation is exactly FairGNN's), take the first
    ``min(L // 2, label_number)`` for training, positions ``[L // 2, 3L // 4)``
    for validation and ``[3L // 4, L)`` for test (``L`` the number of labelled
    nodes; the halves are ``int(0.5 * L)`` and ``int(0.75 * L)``).
    """
    if not isinstance(label_number, int) or isinstance(label_number, bool) or label_number < 1:
        raise ValueError(f"label_number must be a positive integer, got {label_number!r}")
    order = [int(i) for i in labelled]
    random.Random(seed).shuffle(order)
    shuffled = np.asarray(order, dtype=np.int64)
    n = len(shuffled)
    half, three_quarters = int(0.5 * n), int(0.75 * n)
    train = shuffled[: min(half, label_number)]
    if test_as_val:
        test = shuffled[label_number:]
        return train, test, test
    return train, shuffled[half:three_quarters], shuffled[three_quarters:]


def nifty_split(
    labels: np.ndarray,
    *,
    label_number: int = 100,
    seed: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test node positions as NIFTY draws them (its ``load_bail``, ``load_credit``, ...).

    Parameters
    ----------
    labels : array of int, shape (N,)
        0/1 label of every node.
    label_number : int, default 100
        The label budget: at most ``label_number // 2`` training nodes of each label.
    seed : int, default 20
        Seed of Python's ``random`` (NIFTY calls ``random.seed(20)``).

    Returns
    -------
    train, val, test : arrays of int
        Each the label-0 positions followed by the label-1 positions.

    The protocol: the positions of label 0 and of label 1 are shuffled in turn
    by one generator (``random.seed(seed)``, then ``random.shuffle`` of the
    label-0 positions, then of the label-1 positions, so the second shuffle
    continues the first one's stream); of each label's ``L`` shuffled
    positions the first ``min(int(0.5 L), label_number // 2)`` train,
    ``[int(0.5 L), int(0.75 L))`` validate and ``[int(0.75 L), L)`` test.
    Validation and test are thus stratified by label and disjoint.
    """
    if not isinstance(label_number, int) or isinstance(label_number, bool) or label_number < 2:
        raise ValueError(f"label_number must be an integer >= 2 (half of it per label), got {label_number!r}")
    labels = np.asarray(labels)
    generator = random.Random(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for value in (0, 1):
        order = np.flatnonzero(labels == value).tolist()
        generator.shuffle(order)
        shuffled = np.asarray(order, dtype=np.int64)
        n = len(shuffled)
        half, three_quarters = int(0.5 * n), int(0.75 * n)
        parts[0].append(shuffled[: min(half, label_number // 2)])
        parts[1].append(shuffled[half:three_quarters])
        parts[2].append(shuffled[three_quarters:])
    train, val, test = (np.concatenate(p) for p in parts)
    return train, val, test
