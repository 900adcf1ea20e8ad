import pytest
import torch
from torch import nn

from fairbinn.core import create_fairness_layer, list_fairness_layers, register_fairness_layer
from fairbinn.core import fairness_layers as registry


def test_builtin_layers_are_registered_and_width_preserving():
    assert {"linear", "residual"} <= set(list_fairness_layers())
    x = torch.randn(7, 12)
    for name in ("linear", "residual"):
        block = create_fairness_layer(name, width=12, num_layers=3)
        assert block(x).shape == (7, 12)
    linear = create_fairness_layer("linear", 12, 3)
    assert sum(isinstance(m, nn.Linear) for m in linear.modules()) == 3
    assert sum(isinstance(m, nn.ReLU) for m in linear.modules()) == 3


def test_residual_block_starts_as_identity_and_can_learn():
    block = create_fairness_layer("residual", width=5, num_layers=2)
    x = torch.randn(4, 5)
    assert torch.equal(block(x), x)
    block(x).square().sum().backward()
    assert block[0].outer.weight.grad.abs().sum() > 0  # the zero-initialised map still gets a gradient


def test_layer_options_are_passed_through():
    block = create_fairness_layer("linear", 8, 2, activation="tanh", dropout=0.1)
    kinds = [type(m) for m in block]
    assert kinds == [nn.Linear, nn.Tanh, nn.Dropout, nn.Linear, nn.Tanh, nn.Dropout]


def test_register_custom_layer(monkeypatch):
    monkeypatch.setattr(registry, "_FAIRNESS_LAYERS", registry._FAIRNESS_LAYERS.copy())

    @register_fairness_layer("scale")
    def scale(width, num_layers=1, init=2.0):
        layer = nn.Linear(width, width, bias=False)
        nn.init.eye_(layer.weight)
        layer.weight.data *= init
        return layer

    assert "scale" in list_fairness_layers()
    block = create_fairness_layer("scale", 3, init=3.0)
    assert torch.allclose(block(torch.ones(1, 3)), torch.full((1, 3), 3.0))
    with pytest.raises(ValueError, match="already registered"):
        register_fairness_layer("scale")(scale)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="nope", width=4), "unknown fairness layer 'nope'"),
        (dict(name="linear", width=0), "width"),
        (dict(name="linear", width=4, num_layers=0), "num_layers"),
        (dict(name="linear", width=4, activation="swishy"), "unknown activation"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_fairness_layer(**kwargs)
