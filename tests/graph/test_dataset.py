import pytest
import torch
from torch_geometric.data import Data

from fairbinn.core.constraints import DemographicParity
from fairbinn.graph import FullGraph, GraphDataset, check_graph


def _graph(**changes) -> Data:
    n = 12
    values = dict(
        x=torch.randn(n, 3),
        edge_index=torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]]),
        y=torch.tensor([0, 1] * 6),
        sens=torch.tensor([0, 0, 1] * 4),
        train_mask=torch.arange(n) < 6,
        val_mask=(torch.arange(n) >= 6) & (torch.arange(n) < 9),
        test_mask=torch.arange(n) >= 9,
    )
    values.update(changes)
    return Data(**values)


def test_valid_graph_passes():
    check_graph(_graph())


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(val_mask=torch.arange(12) >= 5), "train_mask and val_mask overlap in 1 node"),
        (dict(val_mask=torch.arange(12) >= 8), "val_mask and test_mask overlap in 3 node"),
        (dict(sens=torch.zeros(12, dtype=torch.long)), "single group"),
        (dict(test_mask=torch.zeros(12, dtype=torch.bool)), "test_mask selects no node"),
        (dict(train_mask=torch.ones(12)), "train_mask must be a boolean tensor"),
        (dict(y=torch.tensor([0, 1, -1] * 4)), "train nodes: labels must be binary 0/1"),
        (dict(edge_index=torch.tensor([[0], [12]])), r"edge_index refers to nodes outside \[0, 12\)"),
        (dict(x=torch.full((12, 3), float("nan"))), "x contains NaN"),
    ],
)
def test_bad_graphs_are_rejected(changes, message):
    with pytest.raises(ValueError, match=message):
        check_graph(_graph(**changes))


def test_validation_may_equal_test_only_when_allowed():
    same = _graph(val_mask=torch.arange(12) >= 9)
    with pytest.raises(ValueError, match="overlap"):
        check_graph(same)
    check_graph(same, allow_val_as_test=True)
    partial = _graph(val_mask=torch.arange(12) >= 8)
    with pytest.raises(ValueError, match="overlap"):
        check_graph(partial, allow_val_as_test=True)


def test_full_graph_loader_yields_the_whole_graph_with_the_split_mask():
    data = _graph()
    dataset = GraphDataset("toy", data, ["a", "b", "c"], ["0", "1"], "y", "s")
    loader = dataset.train
    assert isinstance(loader, FullGraph) and len(loader) == 1
    (batch,) = list(loader)
    x, edge_index = batch.inputs
    assert x is data.x and edge_index is data.edge_index
    assert torch.equal(batch.mask, data.train_mask)
    y, s = loader.targets()
    assert y.tolist() == [0, 1, 0, 1, 0, 1] and s.tolist() == [0, 0, 1, 0, 0, 1]
    # the fairness loss sees only the masked nodes: mean scores per group over train nodes
    scores = torch.linspace(0, 1, 12)
    values, ys, ss = batch.selected(scores)
    gap = DemographicParity(norm="absolute")(values, ys.float(), ss, 2)
    train = scores[:6]
    expected = (train[[2, 5]].mean() - train[[0, 1, 3, 4]].mean()).abs()
    torch.testing.assert_close(gap, expected)
    summary = dataset.summary()
    assert summary["train"] == {"nodes": 6, "positive_rate": 0.5, "group_shares": [0.6667, 0.3333]}
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        dataset.split("dev")


def test_sparse_adjacency_is_the_transposed_adjacency_and_keeps_edge_index():
    data = _graph(edge_index=torch.tensor([[0, 1, 1, 2, 5], [1, 0, 2, 1, 4]]))  # 5 -> 4 has no reverse
    dataset = GraphDataset("toy", data, ["a", "b", "c"], ["0", "1"], "y", "s")
    sparse = dataset.with_sparse_adjacency()
    assert sparse.with_sparse_adjacency() is sparse and "adj_t" not in dataset.data  # the original is untouched
    assert torch.equal(sparse.data.edge_index, data.edge_index)
    adj_t = sparse.data.adj_t
    assert adj_t.layout == torch.sparse_csr and adj_t.shape == (12, 12)
    dense = adj_t.to_dense()
    expected = torch.zeros(12, 12)
    expected[[1, 0, 2, 1, 4], [0, 1, 1, 2, 5]] = 1  # row = target, column = source
    assert torch.equal(dense, expected)
    (batch,) = list(sparse.val)
    x, edges = batch.inputs
    assert x is data.x and edges is adj_t and torch.equal(batch.mask, data.val_mask)
