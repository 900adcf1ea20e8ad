import random

import numpy as np
import pytest

from fairbinn.graph import fairgnn_split


def _fairgnn_reference(labelled, label_number, seed, test_idx):
    """FairGNN's own steps: the global ``random`` shuffling a numpy array in place."""
    label_idx = np.array(labelled)
    random.seed(seed)
    random.shuffle(label_idx)
    n = len(label_idx)
    train = label_idx[: min(int(0.5 * n), label_number)]
    val = label_idx[int(0.5 * n) : int(0.75 * n)]
    test = label_idx[label_number:] if test_idx else label_idx[int(0.75 * n) :]
    return train, test if test_idx else val, test


@pytest.mark.parametrize("label_number, test_as_val", [(100, True), (30, False), (500, False)])
def test_matches_fairgnn_exactly(label_number, test_as_val):
    labelled = np.flatnonzero(np.arange(403) % 5 != 0)  # 322 labelled nodes
    ours = fairgnn_split(labelled, label_number=label_number, seed=20, test_as_val=test_as_val)
    for got, expected in zip(ours, _fairgnn_reference(labelled, label_number, 20, test_as_val)):
        np.testing.assert_array_equal(got, expected)


def test_sizes_and_disjointness():
    train, val, test = fairgnn_split(np.arange(313), label_number=100, seed=20)
    assert (len(train), len(val), len(test)) == (100, 78, 79)
    assert not set(train) & set(val) and not set(val) & set(test) and not set(train) & set(test)
    train, val, test = fairgnn_split(np.arange(313), label_number=500, seed=20)
    assert len(train) == 156  # the budget is capped at half of the labelled nodes


def test_label_budget_must_be_positive():
    with pytest.raises(ValueError, match="label_number must be a positive integer"):
        fairgnn_split(np.arange(10), label_number=0)
