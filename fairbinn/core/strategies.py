"""Training strategies: how one step updates the parameters.

``ERM``, ``Lagrangian`` and ``Bilevel`` share everything else (the trainer's
loop, evaluation and model selection). Each strategy owns its optimizers and
learning-rate schedulers.

Bilevel step (FairBiNN), follower first, one shared minibatch::

    z = encoder(x)                          # one encoder forward, kept in the graph
    follower: eta * fairness(head(fairness_block(z.detach())))
              gradient w.r.t. the fairness block only, Adam step (fairness_lr)
    leader:   BCE(head(fairness_block(z))) [+ eta * fairness]  # block already updated
              gradient w.r.t. encoder and head only, Adam step (lr)

By default (``config.leader_penalty=True``) the leader's loss is BCE + eta *
fairness, the game of the authors' released code, whose numbers the paper
reports; ``leader_penalty=False`` is the paper's Algorithm 1 as written (the
leader on BCE alone; see :class:`~fairbinn.core.config.TrainConfig`).

The follower's backward never enters the encoder, and neither backward
computes gradients for the other player's parameters. In leader-first order,
or with separate minibatches, the follower needs encoder features the leader's
forward did not produce (the encoder has just changed, or the batch differs),
so it takes one extra encoder forward without gradient tracking.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar, TypeVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import ExponentialLR

from . import distributed
from .compiled import compile_strategy
from .config import TrainConfig
from .constraints import FairnessConstraint
from .data import Batch
from .model import FairModel
from .registry import Registry

__all__ = [
    "Strategy", "ERM", "Lagrangian", "Bilevel", "create_strategy", "register_strategy", "list_strategies",
    "resolve_strategy",
]


def _adam(params: list[nn.Parameter], lr: float, decay: float, **adam_kwargs):
    optimizer = torch.optim.Adam(params, lr=lr, **adam_kwargs)
    return optimizer, ExponentialLR(optimizer, gamma=decay)


class Strategy(ABC):
    """One way of updating a :class:`FairModel` on a batch.

    Parameters
    ----------
    model : FairModel
    config : TrainConfig
        Supplies eta, learning rates, decay, order and batch options.
    constraint : FairnessConstraint
    num_groups : int, optional
        Number of groups, so the fairness loss needs no per-step inference.
    eta : float or Tensor, optional
        Fairness weight; default ``config.eta``. A tensor ``(k,)`` gives each
        model of a stack (see :mod:`fairbinn.core.stacked`) its own weight.
    adam_kwargs : dict, optional
        Extra arguments of every ``torch.optim.Adam`` (e.g. ``fused=True``).

    Losses are scalars for one model. For a stack of ``k`` models the model
    returns logits ``(k, n)`` and every loss is a vector ``(k,)``, one per
    model; the players step on the sum, so each model's gradient is the one it
    would get alone.
    """

    name: ClassVar[str]
    compiled_methods: ClassVar[tuple[str, ...]] = ()
    """Methods computing forward passes and losses (no updates) that ``TrainConfig(compile=...)``
    runs through ``torch.compile`` (see :mod:`fairbinn.core.compiled`)."""

    def __init__(
        self,
        model: FairModel,
        config: TrainConfig,
        constraint: FairnessConstraint,
        num_groups: int | None = None,
        eta: float | Tensor | None = None,
        adam_kwargs: dict | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.constraint = constraint
        self.num_groups = num_groups
        self.eta = config.eta if eta is None else eta
        self.adam_kwargs = dict(adam_kwargs or {})
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[ExponentialLR] = []
        self.forward: nn.Module = model  # the model's forward, or its DistributedDataParallel wrapper

    def data_parallel(self, **ddp_kwargs) -> None:
        """Route the forward passes whose gradients must be averaged over processes through
        ``DistributedDataParallel`` (see :mod:`fairbinn.core.distributed`); here: the whole model."""
        self.forward = nn.parallel.DistributedDataParallel(self.model, **ddp_kwargs)

    @property
    def uses_follower_batches(self) -> bool:
        """Whether :meth:`step` wants a second, independently drawn batch."""
        return False

    @abstractmethod
    def step(self, batch: Batch, follower_batch: Batch | None = None) -> dict[str, Tensor]:
        """Update the parameters on ``batch``; return detached losses by name (scalars, or ``(k,)`` for a stack)."""

    def end_epoch(self) -> None:
        """Advance the learning-rate schedulers."""
        for scheduler in self.schedulers:
            scheduler.step()

    def _add_optimizer(self, params: list[nn.Parameter], lr: float, decay: float):
        optimizer, scheduler = _adam(params, lr, decay, **self.adam_kwargs)
        self.optimizers.append(optimizer)
        self.schedulers.append(scheduler)
        return optimizer

    def _bce(self, logits: Tensor, y: Tensor) -> Tensor:
        if distributed.active():  # the mean over the global batch: global sum / global count
            per_example = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
            sums = per_example.sum(-1)
            count = torch.full_like(sums, per_example.shape[-1])
            total, count = distributed.global_sum(torch.stack([sums, count])).unbind(0)
            return total / count
        if logits.dim() == 1:
            return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
        per_example = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
        return per_example.mean(dim=1)

    def _fairness(self, logits: Tensor, y: Tensor, s: Tensor) -> Tensor:
        return self.constraint(torch.sigmoid(logits), y, s, self.num_groups)


def _total(loss: Tensor) -> Tensor:
    """The loss to differentiate: the loss itself, or the sum over the models of a stack."""
    return loss if loss.dim() == 0 else loss.sum()


class ERM(Strategy):
    """Empirical risk minimisation: all parameters minimise BCE; no fairness term."""

    name = "erm"
    compiled_methods = ("_loss",)

    def __init__(self, model, config, constraint, num_groups=None, **kwargs):
        super().__init__(model, config, constraint, num_groups, **kwargs)
        self.optimizer = self._add_optimizer(list(model.parameters()), config.lr, config.lr_decay)

    def _loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        logits, y, _ = batch.selected(self.forward(batch.inputs))
        loss = self._bce(logits, y)
        return loss, {"bce": loss.detach()}

    def step(self, batch: Batch, follower_batch: Batch | None = None) -> dict[str, Tensor]:
        loss, record = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        _total(loss).backward()
        self.optimizer.step()
        return record


class Lagrangian(ERM):
    """Penalty method: all parameters minimise BCE + eta * fairness loss."""

    name = "lagrangian"

    def _loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        logits, y, s = batch.selected(self.forward(batch.inputs))
        bce = self._bce(logits, y)
        fairness = self._fairness(logits, y, s)
        loss = bce + self.eta * fairness
        return loss, {"bce": bce.detach(), "fairness": fairness.detach(), "loss": loss.detach()}


class Bilevel(Strategy):
    """FairBiNN's Stackelberg step: the fairness layers (follower) and the rest (leader) in turn."""

    name = "bilevel"
    compiled_methods = ("_encoded", "_follower_loss", "_leader_loss", "_joint_losses")

    def __init__(self, model, config, constraint, num_groups=None, **kwargs):
        super().__init__(model, config, constraint, num_groups, **kwargs)
        self.leader_params = list(model.leader_parameters())
        self.follower_params = list(model.follower_parameters())
        if not self.follower_params:
            raise ValueError(
                "the bilevel strategy needs a fairness block with trainable parameters; "
                "this model's fairness block has none"
            )
        shared = {id(p) for p in self.leader_params} & {id(p) for p in self.follower_params}
        if shared:
            raise ValueError(
                f"{len(shared)} parameter tensor(s) belong to both the leader and the follower; "
                "the fairness block must not share modules with the encoder or head"
            )
        self.leader_optimizer = self._add_optimizer(self.leader_params, config.lr, config.lr_decay)
        self.follower_optimizer = self._add_optimizer(
            self.follower_params, config.fairness_lr, config.fairness_lr_decay
        )
        self.encode: nn.Module = model.encoder  # the leader's forward, or its DDP wrapper

    @property
    def uses_follower_batches(self) -> bool:
        return self.config.separate_batches

    def data_parallel(self, **ddp_kwargs) -> None:
        """DDP averages the leader's (encoder's and head's) gradients; the follower averages its own."""
        self.encode = nn.parallel.DistributedDataParallel(_Leader(self.model), **ddp_kwargs)

    def _encoded(self, inputs) -> Tensor:
        return self.encode(inputs)

    def _follower_loss(self, features: Tensor, batch: Batch) -> Tensor:
        logits, y, s = batch.selected(self.model.decode(features))
        return self._fairness(logits, y, s)

    def _leader_loss(self, features: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """The leader's loss and its BCE part."""
        logits, y, s = batch.selected(self.model.decode(features))
        bce = self._bce(logits, y)
        return (bce + self.eta * self._fairness(logits, y, s) if self.config.leader_penalty else bce), bce

    def _joint_losses(self, features: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """BCE and fairness from one decode (the simultaneous order)."""
        logits, y, s = batch.selected(self.model.decode(features))
        return self._bce(logits, y), self._fairness(logits, y, s)

    def _follower_step(self, features: Tensor, batch: Batch) -> Tensor:
        fairness = self._follower_loss(features, batch)
        grads = torch.autograd.grad(_total(self.eta * fairness), self.follower_params)
        grads = distributed.average_gradients(list(grads))
        for param, grad in zip(self.follower_params, grads):
            param.grad = grad
        self.follower_optimizer.step()
        return fairness.detach()

    def _leader_step(self, features: Tensor, batch: Batch) -> Tensor:
        loss, bce = self._leader_loss(features, batch)
        self.leader_optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(_total(loss), inputs=self.leader_params)
        self.leader_optimizer.step()
        return bce.detach()

    def _fresh_features(self, batch: Batch) -> Tensor:
        with torch.no_grad():
            return self.model.encoder(batch.inputs)

    def _simultaneous_step(self, features: Tensor, batch: Batch) -> dict[str, Tensor]:
        """One forward; the follower's gradient of eta * fairness, the leader's of its loss; both step."""
        bce, fairness = self._joint_losses(features, batch)
        grads = torch.autograd.grad(_total(self.eta * fairness), self.follower_params, retain_graph=True)
        loss = bce + self.eta * fairness if self.config.leader_penalty else bce
        self.leader_optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(_total(loss), inputs=self.leader_params)
        for param, grad in zip(self.follower_params, distributed.average_gradients(list(grads))):
            param.grad = grad
        self.follower_optimizer.step()
        self.leader_optimizer.step()
        return {"bce": bce.detach(), "fairness": fairness.detach()}

    def step(self, batch: Batch, follower_batch: Batch | None = None) -> dict[str, Tensor]:
        shared_batch = follower_batch is None
        follower_batch = batch if shared_batch else follower_batch
        features = self._encoded(batch.inputs)
        if self.config.order == "simultaneous":
            return self._simultaneous_step(features, batch)
        if self.config.order == "follower_first":
            follower_features = features.detach() if shared_batch else self._fresh_features(follower_batch)
            fairness = self._follower_step(follower_features, follower_batch)
            bce = self._leader_step(features, batch)
        else:
            bce = self._leader_step(features, batch)
            fairness = self._follower_step(self._fresh_features(follower_batch), follower_batch)
        return {"bce": bce, "fairness": fairness}


class _Leader(nn.Module):
    """The leader's modules (encoder and head) as one module whose forward is the encoder's,
    so DistributedDataParallel syncs the head's gradients too (the head runs on its output)."""

    def __init__(self, model: FairModel) -> None:
        super().__init__()
        self.encoder, self.head = model.encoder, model.head

    def forward(self, inputs):
        return self.encoder(inputs)


_STRATEGIES: Registry[type[Strategy]] = Registry("strategy", {cls.name: cls for cls in (ERM, Lagrangian, Bilevel)},
                                                base=Strategy)

_S = TypeVar("_S", bound=type)


def register_strategy(name: str, *, overwrite: bool = False) -> Callable[[_S], _S]:
    """Class decorator registering a :class:`Strategy` subclass under ``name``.

    The name then works wherever a strategy name does: ``TrainConfig(strategy=name)``,
    ``fairbinn.sweep(..., strategies=[name])``, ``fairbinn train --mode name``.
    The class is built as ``cls(model, config, constraint, num_groups, **kwargs)``
    (see :class:`Strategy`). Names are case-insensitive (see
    :mod:`fairbinn.core.registry`); a taken name raises ``ValueError`` unless
    ``overwrite=True``.
    """
    return _STRATEGIES.register(name, overwrite=overwrite)


def list_strategies() -> list[str]:
    """Names of the registered strategies, sorted."""
    return _STRATEGIES.names()


def is_bilevel(name: str) -> bool:
    """Whether ``name`` is a registered two-player (:class:`Bilevel`) strategy, whose update order matters."""
    return name in _STRATEGIES and issubclass(_STRATEGIES.get(name), Bilevel)


def resolve_strategy(name: str) -> str:
    """The registered strategy name that ``name`` refers to (names are case-insensitive).

    Raises ``ValueError("unknown strategy 'x'; choose one of ...")`` if there is none.
    """
    return _STRATEGIES.canonical(name)


def create_strategy(
    model: FairModel,
    config: TrainConfig,
    constraint: FairnessConstraint,
    num_groups: int | None = None,
    **kwargs,
) -> Strategy:
    """The strategy named by ``config.strategy``, with its optimizers built.

    ``kwargs`` (``eta``, ``adam_kwargs``) go to :class:`Strategy`. With
    ``config.compile`` its :attr:`~Strategy.compiled_methods` run through
    ``torch.compile`` (:func:`~fairbinn.core.compiled.compile_strategy`).
    """
    strategy = _STRATEGIES.create(config.strategy, model, config, constraint, num_groups, **kwargs)
    if config.compile:
        compile_strategy(strategy, config.compile)
    return strategy
