"""Image backbones cut into encoder -> fairness block -> head.

Three places for the fairness player's block (``fairness=``):

* a registered fairness layer (default ``"linear"``, see
  :func:`~fairbinn.core.fairness_layers.list_fairness_layers`) between the
  pooled features ``(n, width)`` and the final linear classifier: the
  encoder is the whole backbone up to its pre-logit features, the head is the
  classifier ``Linear(width, 1)``;
* ``"conv_residual"``: a width-preserving convolutional residual block on the
  feature map before pooling: the encoder outputs ``(n, C, h, w)``, the head
  pools and classifies;
* ``"layer4"`` (torchvision ResNets): the backbone's last stage is the
  fairness block, as in the authors' released code: the encoder is the stem
  and ``layer1``-``layer3``, the head is pooling and ``fc``. A bilevel step
  runs the block twice in training mode (follower, then leader), so its
  BatchNorm running statistics take two updates per step.

Backbones come from torchvision (the ResNet family, ``source="torchvision"``)
or from timm (any model, by name, ``source="timm"``), split through timm's
``forward_features`` / ``forward_head`` interface. Weights start at random:
nothing is downloaded; ``pretrained=`` loads a local weights file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import timm
import torch
import torchvision
from torch import Tensor, nn

from ..core.fairness_layers import create_fairness_layer, list_fairness_layers, make_activation
from ..core.model import FairModel
from ..core.saving import records_build

__all__ = ["SOURCES", "BLOCK_FAIRNESS", "ConvResidualStack", "create_vision_model", "list_vision_fairness"]

SOURCES = ("torchvision", "timm")
BLOCK_FAIRNESS = ("conv_residual", "layer4")
"""Fairness blocks that act on feature maps rather than on pooled features."""


def list_vision_fairness() -> list[str]:
    """Every value ``create_vision_model(fairness=...)`` accepts."""
    return [*BLOCK_FAIRNESS, *list_fairness_layers()]


class _ConvResidualLayer(nn.Module):
    def __init__(self, channels: int, activation: str, zero_init: bool) -> None:
        super().__init__()
        self.inner = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.activation = make_activation(activation)
        self.outer = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        if zero_init:
            nn.init.zeros_(self.outer.weight)
            nn.init.zeros_(self.outer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.outer(self.activation(self.inner(x)))


class ConvResidualStack(nn.Sequential):
    """``num_layers`` residual layers ``x + Conv3x3(act(Conv3x3(x)))`` on a feature map.

    Maps ``(n, channels, h, w)`` to the same shape. With ``zero_init=True``
    (default) the outer convolution starts at zero, so the block starts as
    the identity and the fairness player begins from the accuracy player's
    features (as :class:`~fairbinn.core.fairness_layers.ResidualStack` does
    for pooled features).
    """

    def __init__(self, channels: int, num_layers: int = 1, activation: str = "relu", zero_init: bool = True) -> None:
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        super().__init__(*(_ConvResidualLayer(channels, activation, zero_init) for _ in range(num_layers)))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(
                f"the conv_residual fairness block needs feature maps (n, C, h, w), got shape {tuple(x.shape)}; "
                "token-based models such as ViTs need fairness='linear'"
            )
        return super().forward(x)


class _TimmFeatures(nn.Module):
    """A timm model's ``forward_features``: images -> feature map (or tokens)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)


class _TimmHead(nn.Module):
    """A timm model's ``forward_head``: pooling, norm and classifier -> logits ``(n, 1)``.

    The modules it runs belong to the encoder's timm model (the accuracy
    player owns both), so it holds the model without registering it: its
    parameters are counted, optimised and saved once, through the encoder.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "model", model)

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_head(x)

    def extra_repr(self) -> str:
        return f"forward_head of {type(self.model).__name__} (parameters owned by the encoder)"


@records_build(drop=("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path"))  # weights files
def create_vision_model(
    name: str = "resnet18",
    *,
    source: str = "torchvision",
    fairness: str = "linear",
    num_fairness_layers: int = 1,
    pretrained: str | os.PathLike | None = None,
    fairness_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> FairModel:
    """A binary image classifier as a :class:`~fairbinn.core.model.FairModel`.

    Parameters
    ----------
    name : str, default "resnet18"
        Architecture: a torchvision ResNet (``resnet18``, ``resnet50``,
        ``resnext50_32x4d``, ...) or any timm model name.
    source : {"torchvision", "timm"}, default "torchvision"
    fairness : str, default "linear"
        Where the fairness block goes and what it is (see the module
        docstring): a registered fairness layer on the pooled features,
        ``"conv_residual"`` or ``"layer4"`` (torchvision ResNets only).
    num_fairness_layers : int, default 1
        Layers in the fairness block; must be 1 for ``"layer4"``.
    pretrained : path, optional
        Local weights file. torchvision: a ``state_dict`` of the same
        architecture (e.g. ``resnet18-f37072fd.pth``); a classifier of another
        class count is dropped and the 1-logit head starts at random. timm: a
        checkpoint timm can load for ``name`` (through its ``pretrained_cfg``
        ``file``); the classifier is adapted the same way. Weights are never
        downloaded; a missing file raises ``FileNotFoundError``.
    fairness_kwargs : dict, optional
        Passed to the fairness block (e.g. ``activation``, ``dropout``,
        ``zero_init``).
    **model_kwargs
        Passed to the backbone constructor (e.g. ``img_size=64`` for a timm
        ViT, ``drop_rate``).

    Returns
    -------
    FairModel
        Images ``(n, 3, H, W)`` -> logits ``(n,)``. The encoder and head are
        the accuracy player, the fairness block the fairness player.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")
    if fairness not in list_vision_fairness():
        raise ValueError(f"unknown fairness block {fairness!r}; choose one of {list_vision_fairness()}")
    if fairness == "layer4" and source != "torchvision":
        raise ValueError("fairness='layer4' needs a torchvision ResNet (source='torchvision')")
    if fairness == "layer4" and num_fairness_layers != 1:
        raise ValueError(
            "fairness='layer4' makes the backbone's last stage the fairness block; "
            f"num_fairness_layers must be 1, got {num_fairness_layers!r}"
        )
    weights = _weights_path(pretrained)
    if source == "torchvision":
        return _torchvision_model(name, fairness, num_fairness_layers, weights, fairness_kwargs or {}, model_kwargs)
    return _timm_model(name, fairness, num_fairness_layers, weights, fairness_kwargs or {}, model_kwargs)


def _weights_path(pretrained: str | os.PathLike | None) -> Path | None:
    if pretrained is None:
        return None
    if isinstance(pretrained, bool):
        raise TypeError(
            "pretrained takes the path of a local weights file; weights cannot be downloaded here"
        )
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained weights file {path} not found; weights are not downloaded: "
            "save a state_dict of the architecture (e.g. torchvision's resnet18-f37072fd.pth) and pass its path"
        )
    return path


def _torchvision_model(
    name: str,
    fairness: str,
    num_fairness_layers: int,
    weights: Path | None,
    fairness_kwargs: dict[str, Any],
    model_kwargs: dict[str, Any],
) -> FairModel:
    try:
        backbone = torchvision.models.get_model(name, weights=None, num_classes=1, **model_kwargs)
    except ValueError:
        raise ValueError(f"unknown torchvision model {name!r}; for other architectures use source='timm'") from None
    if not isinstance(backbone, torchvision.models.ResNet):
        raise ValueError(
            f"source='torchvision' supports the ResNet family, got {name!r} ({type(backbone).__name__}); "
            "use source='timm' for other architectures"
        )
    if weights is not None:
        _load_torchvision_weights(backbone, weights, name)
    b = backbone
    stem = [b.conv1, b.bn1, b.relu, b.maxpool, b.layer1, b.layer2, b.layer3]
    pool = [b.avgpool, nn.Flatten(1)]
    width = b.fc.in_features
    if fairness == "layer4":
        return FairModel(nn.Sequential(*stem), nn.Sequential(*pool, b.fc), b.layer4)
    if fairness == "conv_residual":
        block = ConvResidualStack(width, num_fairness_layers, **fairness_kwargs)
        return FairModel(nn.Sequential(*stem, b.layer4), nn.Sequential(*pool, b.fc), block)
    block = create_fairness_layer(fairness, width, num_fairness_layers, **fairness_kwargs)
    return FairModel(nn.Sequential(*stem, b.layer4, *pool), b.fc, block)


def _load_torchvision_weights(model: nn.Module, path: Path, name: str) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (parameter name -> tensor) of torchvision {name}")
    own = model.state_dict()
    classifier = [k for k in ("fc.weight", "fc.bias") if k in state and state[k].shape != own[k].shape]
    state = {k: v for k, v in state.items() if k not in classifier}
    mismatched = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    missing = sorted(set(own) - set(state) - set(classifier))
    unexpected = sorted(set(state) - set(own))
    if mismatched or missing or unexpected:
        raise ValueError(
            f"{path} is not a state_dict of torchvision {name}: "
            f"{len(missing)} missing key(s) {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, "
            f"{len(mismatched)} of another shape {mismatched[:3]}"
        )
    model.load_state_dict(state, strict=False)


def _timm_model(
    name: str,
    fairness: str,
    num_fairness_layers: int,
    weights: Path | None,
    fairness_kwargs: dict[str, Any],
    model_kwargs: dict[str, Any],
) -> FairModel:
    if weights is not None:
        model_kwargs = {**model_kwargs, "pretrained": True, "pretrained_cfg_overlay": {"file": str(weights)}}
    try:
        backbone = timm.create_model(name, num_classes=1, **model_kwargs)
    except RuntimeError as error:
        if "Unknown model" in str(error):
            raise ValueError(f"unknown timm model {name!r}; see timm.list_models()") from None
        raise
    if fairness == "conv_residual":
        block = ConvResidualStack(backbone.num_features, num_fairness_layers, **fairness_kwargs)
        return FairModel(_TimmFeatures(backbone), _TimmHead(backbone), block)
    classifier = backbone.get_classifier()
    if not isinstance(classifier, nn.Linear):
        raise ValueError(
            f"timm model {name!r} has a {type(classifier).__name__} classifier; a fairness layer on pooled "
            "features needs a single nn.Linear classifier"
        )
    backbone.reset_classifier(0)  # the model now returns its pre-logit features (n, width)
    block = create_fairness_layer(fairness, classifier.in_features, num_fairness_layers, **fairness_kwargs)
    return FairModel(backbone, classifier, block)
