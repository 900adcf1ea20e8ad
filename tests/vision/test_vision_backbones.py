import pytest
import timm
import torch
import torchvision
from torch import nn

from fairbinn.core.config import TrainConfig
from fairbinn.core.data import Batch
from fairbinn.core.fairness_layers import LinearStack
from fairbinn.core.strategies import create_strategy
from fairbinn.vision import ConvResidualStack, create_vision_model, list_vision_fairness

IMAGES = torch.randn(6, 3, 32, 32)


def reference_resnet18(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=1).eval()


def vision_model(seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return create_vision_model(**kwargs).eval()


@torch.no_grad()
def test_resnet18_split_into_512_features_fairness_layer_and_logit():
    model = vision_model()
    features = model.encoder(IMAGES)
    assert features.shape == (6, 512)
    assert isinstance(model.fairness, LinearStack) and model.fairness[0].in_features == 512
    assert isinstance(model.head, nn.Linear) and model.head.out_features == 1
    assert model(IMAGES).shape == (6,)
    # encoder + head are exactly torchvision's ResNet-18: the split cuts nothing out
    assert torch.allclose(model.head(features), reference_resnet18()(IMAGES), atol=1e-5)
    leader = sum(p.numel() for p in model.leader_parameters())
    follower = sum(p.numel() for p in model.follower_parameters())
    assert (leader, follower) == (11_177_025, 512 * 512 + 512)


@torch.no_grad()
def test_conv_residual_block_sits_before_pooling_and_starts_as_identity():
    model = vision_model(fairness="conv_residual", num_fairness_layers=2)
    feature_map = model.encoder(IMAGES)
    assert feature_map.shape == (6, 512, 1, 1)
    assert isinstance(model.fairness, ConvResidualStack) and len(model.fairness) == 2
    assert torch.equal(model.fairness(feature_map), feature_map)  # zero-initialised outer convolutions
    assert torch.allclose(model(IMAGES), reference_resnet18()(IMAGES).squeeze(1), atol=1e-5)
    big = torch.randn(2, 512, 3, 3)
    assert vision_model(fairness="conv_residual", fairness_kwargs={"zero_init": False}).fairness(big).shape == big.shape


@torch.no_grad()
def test_layer4_is_the_fairness_player_as_in_the_released_code():
    model = vision_model(fairness="layer4")
    assert model.encoder(IMAGES).shape == (6, 256, 2, 2)
    assert [type(block) for block in model.fairness] == [torchvision.models.resnet.BasicBlock] * 2
    assert model.fairness(model.encoder(IMAGES)).shape == (6, 512, 1, 1)
    assert torch.allclose(model(IMAGES), reference_resnet18()(IMAGES).squeeze(1), atol=1e-5)
    assert sum(p.numel() for p in model.follower_parameters()) == 8_393_728  # ResNet-18's layer4
    with pytest.raises(ValueError, match="num_fairness_layers must be 1"):
        create_vision_model(fairness="layer4", num_fairness_layers=2)
    with pytest.raises(ValueError, match="needs a torchvision ResNet"):
        create_vision_model("test_resnet", source="timm", fairness="layer4")


def test_pretrained_weights_file_must_exist(tmp_path):
    message = r"pretrained weights file .*resnet18-f37072fd.pth not found; weights are not downloaded"
    with pytest.raises(FileNotFoundError, match=message):
        create_vision_model(pretrained=tmp_path / "resnet18-f37072fd.pth")
    with pytest.raises(FileNotFoundError, match="not found"):
        create_vision_model("test_convnext", source="timm", pretrained=tmp_path / "missing.safetensors")
    with pytest.raises(TypeError, match="path of a local weights file"):
        create_vision_model(pretrained=True)


@torch.no_grad()
def test_pretrained_loads_a_saved_imagenet_state_dict(tmp_path):
    torch.manual_seed(1)
    imagenet = torchvision.models.resnet18()  # 1000 classes, as torchvision's released weights
    torch.save(imagenet.state_dict(), tmp_path / "resnet18.pth")
    model = vision_model(seed=2, pretrained=tmp_path / "resnet18.pth")
    imagenet.fc = nn.Identity()
    assert torch.equal(model.encoder(IMAGES), imagenet.eval()(IMAGES))
    assert model.head.out_features == 1  # the 1000-class classifier is dropped
    # a file of another architecture is refused by name
    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "resnet34.pth")
    message = r"resnet34.pth is not a state_dict of torchvision resnet18: 0 missing key\(s\) \[\], \d+ unexpected"
    with pytest.raises(ValueError, match=message):
        create_vision_model(pretrained=tmp_path / "resnet34.pth")


@torch.no_grad()
def test_timm_pretrained_loads_a_local_checkpoint(tmp_path):
    torch.manual_seed(3)
    source = timm.create_model("test_convnext")
    torch.save(source.state_dict(), tmp_path / "convnext.pth")
    model = vision_model(seed=4, name="test_convnext", source="timm", pretrained=tmp_path / "convnext.pth")
    source.reset_classifier(0)
    assert torch.allclose(model.encoder(IMAGES), source.eval()(IMAGES), atol=1e-6)


TIMM_MODELS = [("test_vit", {"img_size": 32}), ("test_convnext", {})]


@pytest.mark.parametrize("name, kwargs", TIMM_MODELS)
@torch.no_grad()
def test_timm_models_split_at_the_pre_logit_features(name, kwargs):
    model = vision_model(name=name, source="timm", **kwargs)
    torch.manual_seed(0)
    reference = timm.create_model(name, num_classes=1, **kwargs).eval()
    features = model.encoder(IMAGES)
    assert features.shape == (6, reference.num_features) and model(IMAGES).shape == (6,)
    assert torch.allclose(model.head(features), reference(IMAGES), atol=1e-5)


@pytest.mark.parametrize("name, kwargs", TIMM_MODELS)
def test_one_bilevel_step_on_timm_models_moves_each_player_in_its_own_update(name, kwargs):
    model = vision_model(name=name, source="timm", **kwargs).train()
    config = TrainConfig(strategy="bilevel", eta=1.0, lr=1e-3, fairness_lr=1e-3)
    strategy = create_strategy(model, config, config.build_constraint(), num_groups=2)
    leader, follower = list(model.leader_parameters()), list(model.follower_parameters())
    before = [p.detach().clone() for p in leader + follower]
    seen = {}

    def between_updates(optimizer, args, kwargs):  # runs after the follower's step, before the leader's
        seen["leader"] = [p.detach().clone() for p in leader]
        seen["follower"] = [p.detach().clone() for p in follower]

    strategy.leader_optimizer.register_step_pre_hook(between_updates)
    y, s = torch.tensor([0, 1, 0, 1, 1, 0.0]), torch.tensor([0, 0, 0, 1, 1, 1])
    losses = strategy.step(Batch(IMAGES, y, s))
    assert torch.isfinite(losses["bce"]) and torch.isfinite(losses["fairness"]) and losses["fairness"] > 0
    old_leader, old_follower = before[: len(leader)], before[len(leader):]
    # follower step: the fairness block moved, the leader did not
    assert all(torch.equal(a, b) for a, b in zip(seen["leader"], old_leader))
    assert any(not torch.equal(a, b) for a, b in zip(seen["follower"], old_follower))
    # leader step: encoder and head moved, the fairness block did not
    assert all(torch.equal(p, b) for p, b in zip(follower, seen["follower"]))
    assert any(not torch.equal(p, b) for p, b in zip(leader, seen["leader"]))


@torch.no_grad()
def test_timm_conv_residual_on_feature_maps_and_a_clear_error_on_tokens():
    model = vision_model(name="test_convnext", source="timm", fairness="conv_residual")
    torch.manual_seed(0)
    reference = timm.create_model("test_convnext", num_classes=1).eval()
    assert model.encoder(IMAGES).dim() == 4
    assert torch.allclose(model(IMAGES), reference(IMAGES).squeeze(1), atol=1e-5)
    # the head runs the encoder's timm modules without owning them: each parameter counted once
    assert list(model.head.parameters()) == []
    assert sum(p.numel() for p in model.leader_parameters()) == sum(p.numel() for p in reference.parameters())
    vit = vision_model(name="test_vit", source="timm", fairness="conv_residual", img_size=32)
    with pytest.raises(ValueError, match="needs feature maps .* ViTs need fairness='linear'"):
        vit(IMAGES)


def test_unknown_names_are_refused():
    assert list_vision_fairness()[:2] == ["conv_residual", "layer4"] and "linear" in list_vision_fairness()
    with pytest.raises(ValueError, match="unknown fairness block 'gated'; choose one of"):
        create_vision_model(fairness="gated")
    with pytest.raises(ValueError, match="unknown source 'hub'"):
        create_vision_model(source="hub")
    with pytest.raises(ValueError, match="unknown torchvision model 'resnet9'"):
        create_vision_model("resnet9")
    with pytest.raises(ValueError, match="supports the ResNet family, got 'mobilenet_v3_small'"):
        create_vision_model("mobilenet_v3_small")
    with pytest.raises(ValueError, match="unknown timm model 'no_such_net'"):
        create_vision_model("no_such_net", source="timm")
