"""Many models of one architecture trained at once, with stacked weights.

A sweep trains the same network for several (eta, seed) pairs. Small
networks leave the hardware idle: a step of one Adult MLP is bound by
per-operator overhead, not by arithmetic. :func:`stack_models` turns ``k``
models of identical structure into one :class:`StackedFairModel` whose
parameters carry a leading model axis (a ``Linear`` becomes a batched matrix
product over ``(k, n, width)`` activations), and
:meth:`~fairbinn.core.trainer.Trainer.fit` updates all of them in one pass
per minibatch with the ordinary strategies
(:mod:`fairbinn.core.strategies`): every loss becomes a vector ``(k,)`` and
the players step on its sum, so each model receives exactly the gradient it
would receive alone. Adam works elementwise, so a stacked run follows the
same trajectory as ``k`` separate runs up to floating-point rounding; each
model also keeps its own shuffling order (its seed's), its own eta and its
own epoch selection.

What can be stacked: ``nn.Linear``, element-wise activations, ``nn.Identity``,
``nn.Dropout`` with ``p = 0``, and containers whose forward only chains their
children (``nn.Sequential``, the built-in fairness layers). Anything else
raises :class:`NotStackableError`; :func:`register_stacker` adds a module type.
Dropout with ``p > 0`` is refused because a stack cannot draw the masks the
separate runs would draw.
"""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from .fairness_layers import LinearStack, ResidualStack, _ResidualLayer
from .model import FairModel
from .registry import Registry

__all__ = [
    "NotStackableError",
    "StackedLinear",
    "StackedFairModel",
    "register_stacker",
    "stack_modules",
    "stack_models",
]


class NotStackableError(TypeError):
    """The models cannot be trained as one stack (the caller trains them one at a time)."""


Stacker = Callable[[Sequence[nn.Module]], nn.Module]
_STACKERS: Registry[Stacker] = Registry("stacker", key_type=type)  # keyed by module type
_ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Softplus,
)


def register_stacker(module_type: type, *, overwrite: bool = False) -> Callable[[Stacker], Stacker]:
    """Decorator registering ``stacker(modules) -> module`` for modules of exactly ``module_type``.

    The returned module maps ``(k, n, ...)`` inputs to ``(k, n, ...)`` outputs,
    applying ``modules[i]`` to slice ``i``, and names its parameters as
    ``modules[0]`` does, with a leading axis of size ``k``. A type that has a
    stacker raises ``ValueError`` unless ``overwrite=True`` (see :mod:`fairbinn.core.registry`).
    """
    return _STACKERS.register(module_type, overwrite=overwrite)


def stack_modules(modules: Sequence[nn.Module]) -> nn.Module:
    """One module computing ``modules[i]`` on slice ``i`` of a ``(k, n, ...)`` input.

    Raises :class:`NotStackableError` naming the first module type that cannot be stacked.
    """
    first = modules[0]
    kind = type(first)
    if any(type(m) is not kind for m in modules):
        raise NotStackableError(f"the models differ in structure: {sorted({type(m).__name__ for m in modules})}")
    if kind in _STACKERS:
        return _STACKERS.create(kind, modules)
    if kind is nn.Dropout:
        if any(m.p > 0 for m in modules):
            raise NotStackableError("dropout with p > 0 cannot be stacked: its masks would differ from separate runs")
        return nn.Identity()
    if kind in _ELEMENTWISE:
        if any(repr(m) != repr(first) for m in modules):
            raise NotStackableError(f"the models' {kind.__name__} settings differ")
        return copy.deepcopy(first)
    raise NotStackableError(f"{kind.__name__} cannot be stacked (no stacker registered for it)")


class StackedLinear(nn.Module):
    """``k`` linear maps applied to ``(k, n, in_features)``, giving ``(k, n, out_features)``.

    ``weight`` is ``(k, out_features, in_features)`` and ``bias`` ``(k, out_features)``:
    the ``nn.Linear`` parameters of the ``k`` models stacked.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias) if bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight.transpose(1, 2)
        if self.bias is None:
            return torch.bmm(x, weight)
        return torch.baddbmm(self.bias.unsqueeze(1), x, weight)


@register_stacker(nn.Linear)
def _stack_linear(modules: Sequence[nn.Module]) -> nn.Module:
    shapes = {tuple(m.weight.shape) for m in modules}
    if len(shapes) > 1 or len({m.bias is None for m in modules}) > 1:
        raise NotStackableError(f"the models' Linear layers differ in shape: {sorted(shapes)}")
    weight = torch.stack([m.weight.detach() for m in modules]).clone()
    bias = None if modules[0].bias is None else torch.stack([m.bias.detach() for m in modules]).clone()
    return StackedLinear(weight, bias)


def _stack_children(modules: Sequence[nn.Module]) -> nn.Module:
    """Stack a container whose forward only chains its children."""
    first = modules[0]
    if list(first.named_parameters(recurse=False)) or list(first.named_buffers(recurse=False)):
        raise NotStackableError(f"{type(first).__name__} holds parameters of its own")
    names = [name for name, _ in first.named_children()]
    if any([name for name, _ in m.named_children()] != names for m in modules):
        raise NotStackableError(f"the models' {type(first).__name__} blocks differ in structure")
    stacked = copy.copy(first)
    stacked._modules = {name: stack_modules([getattr(m, name) for m in modules]) for name in names}
    return stacked


for _container in (nn.Sequential, LinearStack, ResidualStack, _ResidualLayer):
    register_stacker(_container)(_stack_children)


class StackedFairModel(FairModel):
    """``k`` :class:`FairModel` s in one: inputs ``(k, n, ...)``, logits ``(k, n)``.

    Its ``state_dict`` has the keys of one model's, each tensor with a leading
    axis of size ``k``; :meth:`model_state_dict` gives model ``i``'s.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, fairness: nn.Module, num_models: int):
        super().__init__(encoder, head, fairness)
        self.num_models = num_models

    def _checked_logits(self, logits: Tensor) -> Tensor:
        if logits.dim() == 3 and logits.shape[2] == 1:
            logits = logits.squeeze(2)
        if logits.dim() != 2 or logits.shape[0] != self.num_models:
            raise ValueError(f"a stack of {self.num_models} models must give logits (k, n); got {tuple(logits.shape)}")
        return logits

    def model_state_dict(self, index: int) -> dict[str, Tensor]:
        """The state dict of model ``index``, loadable into one of the original models."""
        return {name: value[index].clone() for name, value in self.state_dict().items()}


def stack_models(models: Sequence[FairModel]) -> StackedFairModel:
    """Stack ``models`` (identical structure, any parameter values) into one model.

    Raises :class:`NotStackableError` when a part cannot be stacked.
    """
    if not models:
        raise ValueError("stack_models needs at least one model")
    if any(type(m) is not FairModel for m in models):
        raise NotStackableError("only plain FairModel instances can be stacked")
    parts = {name: stack_modules([getattr(m, name) for m in models]) for name in ("encoder", "head", "fairness")}
    return StackedFairModel(num_models=len(models), **parts)
