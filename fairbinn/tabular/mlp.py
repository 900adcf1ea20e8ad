"""Multilayer-perceptron backbone with the fairness block at a chosen depth."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ..core.fairness_layers import create_fairness_layer, make_activation
from ..core.model import FairModel
from ..core.saving import records_build

__all__ = ["build_mlp"]


def _dense(widths: Sequence[int], activation: str, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), make_activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


@records_build()
def build_mlp(
    in_features: int,
    hidden_dims: Sequence[int] = (128, 128),
    *,
    fairness_position: int | None = None,
    num_fairness_layers: int = 1,
    fairness_layer: str = "linear",
    dropout: float = 0.0,
    activation: str = "relu",
    **fairness_kwargs,
) -> FairModel:
    """An MLP ``FairModel``: hidden layers, the fairness block, more hidden layers, a logit.

    Parameters
    ----------
    in_features : int
        Input width ``d``; the model maps ``(n, d)`` to logits ``(n,)``.
    hidden_dims : sequence of int, default (128, 128)
        Widths of the hidden ``Linear -> activation [-> Dropout]`` layers.
    fairness_position : int, optional
        How many hidden layers come before the fairness block, from 0 (the
        block reads the raw input) to ``len(hidden_dims)`` (the default: the
        block sits just before the output layer). The encoder is the first
        ``fairness_position`` hidden layers; the head is the remaining hidden
        layers plus ``Linear(width, 1)``.
    num_fairness_layers : int, default 1
        Layers in the fairness block (the paper uses 1 for Adult, 3 for Health).
    fairness_layer : str, default "linear"
        Registered fairness-layer kind (see ``list_fairness_layers()``).
    dropout : float, default 0.0
        Dropout after each hidden layer of the encoder and head.
    activation : str, default "relu"
    **fairness_kwargs
        Passed to the fairness-layer factory (e.g. ``activation``).

    The paper's tabular network is ``build_mlp(d, (d, d), num_fairness_layers=k)``:
    two fully connected layers, ``k`` fairness layers, one output layer.
    """
    if not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"in_features must be a positive integer, got {in_features!r}")
    hidden = list(hidden_dims)
    if any(not isinstance(w, int) or w < 1 for w in hidden):
        raise ValueError(f"hidden_dims must be positive integers, got {hidden}")
    position = len(hidden) if fairness_position is None else fairness_position
    if not isinstance(position, int) or not 0 <= position <= len(hidden):
        raise ValueError(
            f"fairness_position must be an integer from 0 to len(hidden_dims)={len(hidden)}, got {position!r}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    widths = [in_features, *hidden]
    block_width = widths[position]
    encoder = nn.Sequential(*_dense(widths[: position + 1], activation, dropout))
    head = nn.Sequential(*_dense(widths[position:], activation, dropout), nn.Linear(widths[-1], 1))
    fairness = create_fairness_layer(fairness_layer, block_width, num_fairness_layers, **fairness_kwargs)
    return FairModel(encoder=encoder, head=head, fairness=fairness)
