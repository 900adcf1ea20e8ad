import copy
import io

import pytest
import torch
from torch_geometric.nn import GCN
from torch_geometric.utils import to_torch_csr_tensor

from fairbinn.graph import ReusingGCN, ReusingGCNConv, create_gnn_body


def _graph(seed=0, n=30, e=90):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    edge_index = torch.randint(0, n, (2, e), generator=g)  # directed, with duplicates and self-loops
    return x, edge_index


def _pair():
    torch.manual_seed(0)
    pyg = GCN(5, 8, 2, dropout=0.0)
    ours = ReusingGCN(5, 8, 2, dropout=0.0)
    ours.load_state_dict(pyg.state_dict())
    return pyg, ours


def _adjacencies(x, edge_index):
    csr = to_torch_csr_tensor(edge_index.flip(0), size=(x.shape[0], x.shape[0]))  # adj_t, as ToSparseTensor makes it
    return {"edge_index": edge_index, "csr": csr}


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("layout", ["edge_index", "csr"])
def test_same_outputs_and_gradients_as_pyg_gcn_over_repeated_calls(layout):
    x, edge_index = _graph()
    adj = _adjacencies(x, edge_index)[layout]
    pyg, ours = _pair()
    assert list(ours.state_dict()) == list(pyg.state_dict())
    for step in range(3):  # the second and third calls reuse the first's normalised adjacency
        for model in (pyg, ours):
            model.zero_grad()
            model(x, adj).square().sum().backward()
        torch.testing.assert_close(ours(x, adj), pyg(x, adj), rtol=1e-5, atol=1e-6)
        for a, b in zip(_grads(ours), _grads(pyg)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        with torch.no_grad():  # a training step between calls changes the weights, not the graph
            for p in list(pyg.parameters()) + list(ours.parameters()):
                p -= 0.1 * p.grad


def test_the_kept_adjacency_is_kept_for_the_same_graph_only():
    x, edge_index = _graph()
    conv = ReusingGCNConv(5, 4)
    conv(x, edge_index)
    kept = conv._kept
    conv(x, edge_index)
    assert conv._kept is kept
    other_x, other_edges = _graph(seed=1, n=20, e=50)
    reference = GCN(5, 4, 1)
    reference.convs[0].load_state_dict(conv.state_dict())
    # another graph (what PyG's cached=True would get wrong) is normalised afresh
    torch.testing.assert_close(conv(other_x, other_edges), reference(other_x, other_edges))
    assert conv._kept is not kept
    # the same tensor changed in place is another graph too
    other_edges[1, :10] = torch.arange(10)
    torch.testing.assert_close(conv(other_x, other_edges), reference(other_x, other_edges))
    # and so are new edge weights
    weights = torch.rand(other_edges.shape[1])
    torch.testing.assert_close(conv(other_x, other_edges, weights), reference(other_x, other_edges, weights))
    # and a setting of the normalisation changed on the layer
    conv.improved = reference.convs[0].improved = True
    torch.testing.assert_close(conv(other_x, other_edges, weights), reference(other_x, other_edges, weights))


def test_edge_weights_that_need_a_gradient_get_one():
    x, edge_index = _graph()
    pyg, ours = _pair()
    grads = []
    for model in (pyg, ours):
        weights = torch.rand(edge_index.shape[1], generator=torch.Generator().manual_seed(3)).requires_grad_()
        model(x, edge_index, weights).sum().backward()
        grads.append(weights.grad)
    assert ours.convs[0]._kept is None  # PyG's own path
    torch.testing.assert_close(grads[1], grads[0])


def test_a_graph_first_seen_under_inference_mode_still_trains():
    x, edge_index = _graph()
    csr = _adjacencies(x, edge_index)["csr"]
    pyg, ours = _pair()
    with torch.inference_mode():
        torch.testing.assert_close(ours(x, csr), pyg(x, csr))
    ours(x, csr).sum().backward()
    pyg(x, csr).sum().backward()
    for a, b in zip(_grads(ours), _grads(pyg)):
        torch.testing.assert_close(a, b)


def test_second_derivatives_go_through_the_sparse_product():
    x, edge_index = _graph()
    csr = _adjacencies(x, edge_index)["csr"]
    vs = []
    for model in _pair():
        params = list(model.parameters())
        grads = torch.autograd.grad(model(x, csr).tanh().sum(), params, create_graph=True)
        direction = [torch.ones_like(g) for g in grads]
        hvp = torch.autograd.grad(grads, params, grad_outputs=direction)
        vs.append(hvp)
    for a, b in zip(*vs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def check_copies_and_pickles(model, x, edge_index):
    """A copy and a pickled-and-loaded ``model`` give its outputs; the loaded one keeps no graph's work."""
    expected = model(x, edge_index)
    torch.testing.assert_close(copy.deepcopy(model)(x, edge_index), expected)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert all(conv._kept is None for conv in loaded.convs)
    torch.testing.assert_close(loaded(x, edge_index), expected)


def test_copies_and_pickles_keep_the_weights_and_drop_the_graph():
    x, edge_index = _graph()
    check_copies_and_pickles(_pair()[1], x, edge_index)


def test_the_gcn_body_is_the_reusing_gcn():
    body = create_gnn_body("gcn", 5, 8)
    assert isinstance(body, ReusingGCN)
    assert all(isinstance(conv, ReusingGCNConv) for conv in body.convs)


def test_a_graph_made_under_inference_mode_is_kept_at_each_call():
    x, edge_index = _graph()
    pyg, ours = _pair()
    with torch.inference_mode():
        made_here = edge_index.clone()  # no version counter: nothing to tell an in-place change by
        torch.testing.assert_close(ours(x, made_here), pyg(x, made_here))
        assert all(conv._kept is None for conv in ours.convs)


@pytest.mark.parametrize("sparse", [False, True])
def test_training_gives_the_parameters_and_records_of_pyg_gcn(sparse):
    pyg, ours = train_both(GCN, ReusingGCN, sparse)
    for a, b in zip(pyg.model.state_dict().values(), ours.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    for a, b in zip(pyg.history, ours.history):  # every epoch's losses and validation metrics
        torch.testing.assert_close(b["train_bce"], a["train_bce"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b["val_soft_dp"], a["val_soft_dp"], rtol=1e-5, atol=1e-6)


def train_both(pyg_class, our_class, sparse, **body_kwargs):
    """15 epochs of the default game with PyG's body and with ours, from the same seed, on a small graph."""
    from fairbinn.graph import pokec_like_graph, run_graph

    graph = pokec_like_graph(300, num_features=32, labelled_fraction=1.0, label_number=60, seed=0)
    results = []
    for body_class in (pyg_class, our_class):
        torch.manual_seed(0)
        body = body_class(32, 64, 2, dropout=0.5, **body_kwargs)
        results.append(run_graph(graph, backbone=body, sparse_adjacency=sparse, strategy="bilevel", epochs=15,
                                 progress=False, seed=0))
    return results
