import pytest
import torch
from torch import nn

from fairbinn import FairModel


def make_model():
    return FairModel(
        encoder=nn.Sequential(nn.Linear(4, 6), nn.ReLU()),
        fairness=nn.Linear(6, 6),
        head=nn.Linear(6, 1),
    )


def test_forward_shape_and_parameter_split():
    model = make_model()
    assert model(torch.randn(5, 4)).shape == (5,)
    leader = {id(p) for p in model.leader_parameters()}
    follower = {id(p) for p in model.follower_parameters()}
    assert leader.isdisjoint(follower)
    assert leader | follower == {id(p) for p in model.parameters()}
    assert len(follower) == 2  # weight and bias of the fairness layer


def test_decode_equals_forward_from_features():
    model = make_model()
    x = torch.randn(3, 4)
    assert torch.equal(model.decode(model.encoder(x)), model(x))


def test_no_fairness_block_is_identity_with_no_follower_parameters():
    model = FairModel(encoder=nn.Linear(4, 6), head=nn.Linear(6, 1))
    assert list(model.follower_parameters()) == []
    x = torch.randn(2, 4)
    assert torch.equal(model(x), model.head(model.encoder(x)).squeeze(1))


def test_head_with_several_outputs_is_rejected():
    model = FairModel(encoder=nn.Identity(), head=nn.Linear(4, 3))
    with pytest.raises(ValueError, match="one logit per example"):
        model(torch.randn(2, 4))


def test_parameter_counts_per_player():
    model = FairModel(nn.Linear(3, 4), nn.Linear(4, 1), nn.Linear(4, 4))
    assert model.parameter_counts() == {"leader_parameters": 3 * 4 + 4 + 4 + 1, "follower_parameters": 4 * 4 + 4}
