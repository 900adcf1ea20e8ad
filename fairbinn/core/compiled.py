"""``TrainConfig(compile=...)``: a strategy's forward passes and losses through ``torch.compile``.

Each strategy names the methods that compute its losses from a batch
(:attr:`~fairbinn.core.strategies.Strategy.compiled_methods`: forward passes
and losses, no parameter updates). :func:`compile_strategy` replaces them on
the instance with ``torch.compile``'d versions; gradients, optimizer steps and
schedulers stay eager, so the parameters, optimizers and checkpoints are the
same objects as in an uncompiled run. Inductor is asked for eager's random
numbers (``fallback_random``), so dropout draws the same masks.

Compilation happens lazily, inside the first training step (and again for a
new batch shape). The first step is therefore guarded: the model's and
optimizers' states and the random generators are copied before it; if it
raises, they are restored, the eager methods put back, one ``RuntimeWarning``
names the error, and the step runs again uncompiled. An error that the eager
step raises too is the caller's and propagates.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .strategies import Strategy

__all__ = ["compile_strategy"]


def compile_strategy(strategy: "Strategy", backend: bool | str = True) -> bool:
    """Compile ``strategy``'s :attr:`compiled_methods` in place; return whether it did.

    ``backend`` is ``True`` (torch's default, inductor) or a backend name. When
    ``torch.compile`` is unsupported on this Python or platform, or the strategy
    names no methods to compile (``stackelberg``: its hypergradients
    differentiate twice), warn once and leave the strategy eager (returns
    ``False``).
    """
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        warnings.warn("torch.compile is not supported here (torch._dynamo.is_dynamo_supported() is False); "
                      "training runs uncompiled", RuntimeWarning, stacklevel=3)
        return False
    if not strategy.compiled_methods:
        warnings.warn(f"the {strategy.name} strategy has no compiled path; training runs uncompiled",
                      RuntimeWarning, stacklevel=3)
        return False
    name = "inductor" if backend is True else backend
    # inductor draws dropout masks with its own generator unless told to use eager's
    options = {"fallback_random": True} if name == "inductor" else None
    eager = {method: getattr(strategy, method) for method in strategy.compiled_methods}
    for method, function in eager.items():
        setattr(strategy, method, torch.compile(function, backend=name, options=options))
    strategy.step = _CompiledStep(strategy, eager, name)  # the instance's step, over the class's
    return True


class _CompiledStep:
    """A compiled strategy's step: the class's step without donated buffers (a bilevel step
    differentiates one graph twice, ``retain_graph=True``, which donated buffers forbid); the
    first call restarts uncompiled from the same state if it fails."""

    def __init__(self, strategy: "Strategy", eager: dict[str, Any], backend: str) -> None:
        self.strategy, self.eager, self.backend, self.first = strategy, eager, backend, True

    def __call__(self, batch, follower_batch=None):
        import torch._functorch.config

        step = type(self.strategy).step
        with torch._functorch.config.patch(donated_buffer=False):
            if not self.first:
                return step(self.strategy, batch, follower_batch)
            self.first = False
            saved = _snapshot(self.strategy)
            try:
                return step(self.strategy, batch, follower_batch)
            except Exception as error:  # noqa: BLE001 - any failure of the compiled path falls back
                self._fall_back(saved, error)
        return self.strategy.step(batch, follower_batch)

    def _fall_back(self, saved: dict[str, Any], error: Exception) -> None:
        strategy = self.strategy
        _restore(strategy, saved)
        for method, function in self.eager.items():
            setattr(strategy, method, function)
        del strategy.step  # the class's step again
        message = f"{type(error).__name__}: {_first_line(error)}"
        cause = getattr(error, "inner_exception", None) or error.__cause__
        if cause is not None:
            message += f", from {type(cause).__name__}: {_first_line(cause)}"
        warnings.warn(f"torch.compile (backend {self.backend!r}) failed in the first training step "
                      f"({message}); training continues uncompiled from the same state",
                      RuntimeWarning, stacklevel=3)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _snapshot(strategy: "Strategy") -> dict[str, Any]:
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "model": copy.deepcopy(strategy.model.state_dict()),
        "optimizers": [copy.deepcopy(o.state_dict()) for o in strategy.optimizers],
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if cuda else None,
    }


def _restore(strategy: "Strategy", saved: dict[str, Any]) -> None:
    strategy.model.load_state_dict(saved["model"])
    for optimizer, state in zip(strategy.optimizers, saved["optimizers"]):
        optimizer.load_state_dict(state)
    for param in strategy.model.parameters():
        param.grad = None
    torch.set_rng_state(saved["cpu_rng"])
    if saved["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
