import pytest
import torch
from torch import nn

from fairbinn.tabular import build_mlp, paper_mlp


def linear_shapes(module):
    return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, nn.Linear)]


def test_paper_network_layout():
    model = build_mlp(102, (102, 102), num_fairness_layers=1)
    assert linear_shapes(model.encoder) == [(102, 102), (102, 102)]
    assert linear_shapes(model.fairness) == [(102, 102)]
    assert linear_shapes(model.head) == [(1, 102)]
    assert model(torch.randn(3, 102)).shape == (3,)


def test_fairness_position_and_extra_layers():
    model = build_mlp(10, (32, 16, 8), fairness_position=1, num_fairness_layers=2, dropout=0.2)
    assert linear_shapes(model.encoder) == [(32, 10)]
    assert linear_shapes(model.fairness) == [(32, 32), (32, 32)]
    assert linear_shapes(model.head) == [(16, 32), (8, 16), (1, 8)]
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 3
    raw = build_mlp(10, (32,), fairness_position=0)
    assert linear_shapes(raw.fairness) == [(10, 10)] and list(raw.encoder.parameters()) == []


def test_paper_mlp_uses_dataset_width_and_fairness_layers(adult):
    model = paper_mlp(adult)
    assert linear_shapes(model.encoder) == [(102, 102), (102, 102)]
    assert len(linear_shapes(model.fairness)) == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(in_features=0), "in_features"),
        (dict(in_features=4, hidden_dims=(8, -1)), "hidden_dims"),
        (dict(in_features=4, hidden_dims=(8,), fairness_position=2), "fairness_position"),
        (dict(in_features=4, dropout=1.0), "dropout"),
        (dict(in_features=4, fairness_layer="conv"), "unknown fairness layer"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_mlp(**kwargs)
