"""Fairness layers: the fairness player's block, behind a registry.

Every fairness layer is width-preserving, ``(n, width) -> (n, width)``, so it
can be spliced between any encoder and head. Register new kinds with
:func:`register_fairness_layer`; build them by name with
:func:`create_fairness_layer`::

    @register_fairness_layer("gated")
    def gated(width: int, num_layers: int = 1, **kwargs) -> nn.Module:
        ...

    block = create_fairness_layer("gated", width=64, num_layers=2)
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from .registry import Registry

__all__ = [
    "register_fairness_layer",
    "create_fairness_layer",
    "list_fairness_layers",
    "make_activation",
    "LinearStack",
    "ResidualStack",
]

FairnessLayerFactory = Callable[..., nn.Module]
_FAIRNESS_LAYERS: Registry[FairnessLayerFactory] = Registry("fairness layer")

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """Activation module by name: one of relu, leaky_relu, gelu, silu, elu, tanh, sigmoid, identity."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}") from None


def register_fairness_layer(
    name: str, *, overwrite: bool = False
) -> Callable[[FairnessLayerFactory], FairnessLayerFactory]:
    """Decorator registering ``factory(width, num_layers=1, **kwargs) -> nn.Module`` under ``name``.

    Names are case-insensitive (see :mod:`fairbinn.core.registry`). Raises
    ``ValueError`` if ``name`` is taken, unless ``overwrite=True``.
    """
    return _FAIRNESS_LAYERS.register(name, overwrite=overwrite)


def list_fairness_layers() -> list[str]:
    """Names of the registered fairness layers, sorted."""
    return _FAIRNESS_LAYERS.names()


def create_fairness_layer(name: str, width: int, num_layers: int = 1, **kwargs) -> nn.Module:
    """Build the fairness layer ``name`` mapping ``(n, width)`` to ``(n, width)``.

    Parameters
    ----------
    name : str
        A name from :func:`list_fairness_layers` ("linear", "residual", ...).
    width : int
        Feature width the block reads and writes.
    num_layers : int, default 1
        Number of layers in the block (the paper's "fairness layers").
    **kwargs
        Passed to the factory (e.g. ``activation``, ``dropout``).
    """
    factory = _FAIRNESS_LAYERS.get(name)
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"fairness layer width must be a positive integer, got {width!r}")
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
    return factory(width, num_layers=num_layers, **kwargs)


class LinearStack(nn.Sequential):
    """``num_layers`` blocks of ``Linear(width, width) -> activation -> dropout``.

    The fairness layers of the FairBiNN paper (one ReLU-activated linear layer
    by default). Shape ``(n, width) -> (n, width)``.
    """

    def __init__(
        self, width: int, num_layers: int = 1, activation: str = "relu", dropout: float = 0.0
    ) -> None:
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            layers += [nn.Linear(width, width), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class _ResidualLayer(nn.Module):
    def __init__(self, width: int, activation: str, dropout: float, zero_init: bool) -> None:
        super().__init__()
        self.inner = nn.Linear(width, width)
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.outer = nn.Linear(width, width)
        if zero_init:
            nn.init.zeros_(self.outer.weight)
            nn.init.zeros_(self.outer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.outer(self.dropout(self.activation(self.inner(x))))


class ResidualStack(nn.Sequential):
    """``num_layers`` residual layers ``x + Linear(act(Linear(x)))``.

    With ``zero_init=True`` (default) the outer linear map starts at zero, so
    the block starts as the identity and the fairness player begins from the
    accuracy player's representation. Shape ``(n, width) -> (n, width)``.
    """

    def __init__(
        self,
        width: int,
        num_layers: int = 1,
        activation: str = "relu",
        dropout: float = 0.0,
        zero_init: bool = True,
    ) -> None:
        super().__init__(
            *(_ResidualLayer(width, activation, dropout, zero_init) for _ in range(num_layers))
        )


register_fairness_layer("linear")(LinearStack)
register_fairness_layer("residual")(ResidualStack)
