import dataclasses

import pytest
import torch
from torch_geometric.nn import GraphSAGE

from fairbinn import Trainer
from fairbinn.core.model import FairModel
from fairbinn.graph import backbones
from fairbinn.graph import (
    GraphDataset,
    build_gnn,
    create_gnn_body,
    list_gnn_bodies,
    paper_gnn,
    pokec_like_graph,
    register_gnn_body,
    run_graph,
)

from test_dataset import _graph


@pytest.mark.parametrize("backbone", ["gcn", "gat"])
def test_named_bodies_give_node_logits(backbone):
    data = _graph()
    model = build_gnn(3, backbone, hidden_channels=8)
    assert isinstance(model, FairModel)
    logits = model((data.x, data.edge_index))
    assert logits.shape == (12,)
    features = model.encoder((data.x, data.edge_index))
    assert features.shape == (12, 8)
    # the fairness block is FairBiNN's Linear -> ReLU, owned by the follower
    assert [type(m).__name__ for m in model.fairness] == ["Linear", "ReLU"]
    assert {id(p) for p in model.follower_parameters()} == {id(p) for p in model.fairness.parameters()}


def test_gat_heads_and_body_kwargs():
    body = create_gnn_body("gat", 3, 8, num_layers=2, dropout=0.0, heads=2)
    assert body.convs[0].heads == 2


def test_any_pyg_model_is_an_encoder_and_trains_bilevel():
    data = _graph()
    sage = GraphSAGE(3, 8, num_layers=2)
    model = build_gnn(3, sage, hidden_channels=8)
    dataset = GraphDataset("toy", data, ["a", "b", "c"], ["0", "1"], "y", "s")
    encoder_before = [p.detach().clone() for p in model.encoder.parameters()]
    fairness_before = [p.detach().clone() for p in model.fairness.parameters()]
    result = Trainer(strategy="bilevel", epochs=2, fairness_lr=1e-2, progress=False).fit(
        model, dataset.train, dataset.val, dataset.test
    )
    assert set(result.test) >= {"accuracy", "auc", "dp", "eo", "eopp"}
    assert all(not torch.equal(a, b) for a, b in zip(encoder_before, model.encoder.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(fairness_before, model.fairness.parameters()))


def test_registry_and_errors(monkeypatch):
    monkeypatch.setattr(backbones, "_BODIES", backbones._BODIES.copy())
    with pytest.raises(ValueError, match="unknown GNN body 'gin'"):
        create_gnn_body("gin", 3)
    register_gnn_body("sage_test", GraphSAGE)
    assert "sage_test" in list_gnn_bodies()
    assert build_gnn(3, "sage_test", hidden_channels=4)((torch.randn(5, 3), torch.tensor([[0], [1]]))).shape == (5,)
    with pytest.raises(ValueError, match="already registered"):
        register_gnn_body("gcn", GraphSAGE)
    with pytest.raises(ValueError, match="outputs 8 channels but hidden_channels is 64"):
        build_gnn(3, GraphSAGE(3, 8, num_layers=2))


def test_a_gnn_round_trips_through_save_and_load(tmp_path):
    from fairbinn.core.saving import load_model, save_model

    data = _graph()
    torch.manual_seed(0)
    model = build_gnn(3, "gat", hidden_channels=8, num_fairness_layers=2).eval()
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    inputs = (data.x, data.edge_index)
    assert torch.equal(loaded(inputs), model(inputs))
    # a body given as a module object cannot be rebuilt from JSON
    assert build_gnn(3, GraphSAGE(3, 8, num_layers=2), hidden_channels=8).build_spec is None


@pytest.fixture(scope="module")
def dense_offset_graph():
    """A dense graph (400 nodes, mean degree 40) whose features share a large common part (offset 3), as NBA's
    min-max scaled sparse columns do: neighbourhood means then look alike from node to node."""
    graph = pokec_like_graph(400, num_features=32, avg_degree=40, labelled_fraction=1.0, label_number=100, seed=0)
    data = graph.data.clone()
    data.x = data.x + 3
    return dataclasses.replace(graph, data=data)


def _spread(model, data) -> float:
    """How much the body's node representations differ: mean distance to their mean over their mean norm."""
    with torch.no_grad():
        z = model.eval().encoder((data.x, data.edge_index))
    return float((z - z.mean(0)).norm(dim=1).mean() / z.norm(dim=1).mean())


def test_gat_does_not_collapse_to_a_constant_classifier(dense_offset_graph):
    """The regression of NBA's GAT runs at the paper's lr 1e-2: without its residual projection, GAT's
    node representations differed by 4-5% at initialisation on this graph (GCN's by 45%) and ERM ended at a
    constant classifier for seeds 0 and 2 of 3 within 100 epochs (seed 0: every test node positive)."""
    data = dense_offset_graph.data
    for seed in range(3):
        torch.manual_seed(seed)
        assert _spread(paper_gnn(dense_offset_graph, "gat"), data) > 0.1
    result = run_graph(dense_offset_graph, backbone="gat", strategy="erm", seed=0, epochs=100,
                       selection_metric=None, progress=False)
    with torch.no_grad():
        positive = (result.model.eval()((data.x, data.edge_index))[data.test_mask] > 0).float().mean()
    assert 0.05 < positive < 0.95
    assert result.test["accuracy"] > 0.6
