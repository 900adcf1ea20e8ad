import pytest
import torch
from torch_geometric.nn import GAT
from torch_geometric.utils import coalesce

from fairbinn.graph import ReusingGAT, ReusingGATConv, create_gnn_body

from test_gcn import _adjacencies, _grads, _graph, check_copies_and_pickles, train_both

TOL = dict(rtol=1e-4, atol=1e-5)


def _simple_graph(seed=0, n=30, e=90):
    """A random directed graph without repeated edges (GATConv attends to each copy of a repeated edge)."""
    x, edge_index = _graph(seed, n, e)
    return x, coalesce(edge_index, num_nodes=n)


def _pair(heads=1, dropout=0.5):
    torch.manual_seed(0)
    pyg = GAT(5, 8, 2, dropout=dropout, residual=True, heads=heads)
    ours = ReusingGAT(5, 8, 2, dropout=dropout, residual=True, heads=heads)
    ours.load_state_dict(pyg.state_dict())
    return pyg, ours


def _both(models, call):
    """Run ``call(model)`` on each model from the same random state (the attention dropout draws alike)."""
    outputs = []
    for model in models:
        torch.manual_seed(1)
        outputs.append(call(model))
    return outputs


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("layout", ["edge_index", "csr"])
@pytest.mark.parametrize("training", [False, True])
def test_same_outputs_and_gradients_as_pyg_gat(heads, layout, training):
    x, edge_index = _simple_graph()
    adj = _adjacencies(x, edge_index)[layout]
    models = _pair(heads)
    assert list(models[1].state_dict()) == list(models[0].state_dict())
    assert all(type(conv) is ReusingGATConv for conv in models[1].convs)
    for model in models:
        model.train(training)
    for step in range(2):  # the second call reuses the first's edges and pattern
        for model in models:
            model.zero_grad()
        pyg_out, our_out = _both(models, lambda model: model(x, adj))
        torch.testing.assert_close(our_out, pyg_out, **TOL)
        _both(models, lambda model: model(x, adj).square().sum().backward())
        for a, b in zip(_grads(models[1]), _grads(models[0])):
            torch.testing.assert_close(a, b, **TOL)
    assert models[1].convs[0]._kept is not None


def test_the_edges_are_kept_for_the_same_graph_only():
    x, edge_index = _simple_graph()
    pyg, ours = _pair(dropout=0.0)
    ours(x, edge_index)
    kept = ours.convs[0]._kept
    ours(x, edge_index)
    assert ours.convs[0]._kept is kept
    other_x, other_edges = _simple_graph(seed=1, n=20, e=50)
    torch.testing.assert_close(ours(other_x, other_edges), pyg(other_x, other_edges), **TOL)
    assert ours.convs[0]._kept is not kept
    other_edges[0, 0] = (other_edges[0, 0] + 1) % 20  # changed in place: another graph (kept free of repeats)
    other_edges = coalesce(other_edges, num_nodes=20)
    torch.testing.assert_close(ours(other_x, other_edges), pyg(other_x, other_edges), **TOL)


def test_repeated_edges_and_other_inputs_take_gatconvs_own_path():
    x, edge_index = _graph()  # repeats some edges
    pyg, ours = _pair(dropout=0.0)
    torch.testing.assert_close(ours(x, edge_index), pyg(x, edge_index), **TOL)
    assert ours.convs[0]._kept.pattern is None  # found once, kept: GATConv's path for this graph
    conv = ours.convs[0]
    out, (edges, attention) = conv(x, coalesce(edge_index), return_attention_weights=True)
    assert out.shape == (30, 8) and attention.shape == (edges.shape[1], 1)


def test_a_graph_first_seen_under_inference_mode_still_trains():
    x, edge_index = _simple_graph()
    adj = _adjacencies(x, edge_index)["csr"]
    models = _pair(dropout=0.0)
    with torch.inference_mode():
        pyg_out, our_out = _both(models, lambda model: model(x, adj))
        torch.testing.assert_close(our_out, pyg_out, **TOL)
    _both(models, lambda model: model(x, adj).sum().backward())
    for a, b in zip(_grads(models[1]), _grads(models[0])):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("layout", ["edge_index", "csr"])
def test_second_derivatives_match_pyg_gat(layout):
    x, edge_index = _simple_graph()
    adj = _adjacencies(x, edge_index)[layout]
    products = []
    for model in _pair(dropout=0.0):
        params = list(model.parameters())
        grads = torch.autograd.grad(model(x, adj).tanh().sum(), params, create_graph=True)
        products.append(torch.autograd.grad(grads, params, grad_outputs=[torch.ones_like(g) for g in grads]))
    for a, b in zip(*products):
        torch.testing.assert_close(a, b, **TOL)


def test_copies_and_pickles_keep_the_weights_and_drop_the_graph():
    x, edge_index = _simple_graph()
    check_copies_and_pickles(_pair(dropout=0.0)[1], x, edge_index)


def test_the_gat_body_is_the_reusing_gat():
    for kwargs in ({}, {"residual": False}, {"heads": 2}):
        body = create_gnn_body("gat", 5, 8, **kwargs)
        assert isinstance(body, ReusingGAT) and all(type(conv) is ReusingGATConv for conv in body.convs)


@pytest.mark.parametrize("sparse", [False, True])
def test_training_gives_the_parameters_and_records_of_pyg_gat(sparse):
    pyg, ours = train_both(GAT, ReusingGAT, sparse, residual=True)
    # Adam's first steps are about lr * sign(gradient) wherever a gradient is near zero, so there the rounding of
    # the sums' order moves a weight by up to lr: compare each tensor as a whole
    for name, a in pyg.model.state_dict().items():
        b = ours.model.state_dict()[name]
        assert (b - a).norm() <= 1e-3 * a.norm() + 1e-6, name
    for a, b in zip(pyg.history, ours.history):
        torch.testing.assert_close(b["train_bce"], a["train_bce"], **TOL)
        torch.testing.assert_close(b["val_soft_dp"], a["val_soft_dp"], **TOL)

