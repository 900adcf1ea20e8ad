"""Training strategies: how one step updates the parameters.

``ERM``, ``Lagrangian`` and ``Bilevel`` share everything else (the trainer's
loop, evaluation and model selection). Each strategy owns its optimizers and
learning-rate schedulers.

Bilevel step (FairBiNN), follower first, one shared minibatch::

    z = encoder(x)                          # one encoder forward, kept in the graph
    follower: eta * fairness(head(fairness_block(z.detach())))
              gradient w.r.t. the fairness block only, SGD step (fairness_lr)
    leader:   BCE(head(fairness_block(z))) [+ eta * fairness]  # block already updated
              gradient w.r.t. encoder and head only, Adam step (lr)

By default (``config.leader_penalty=True``) the leader's loss is BCE + eta *
fairness, the game of the authors' released code, whose numbers the paper
reports; ``leader_penalty=False`` is the paper's Algorithm 1 as written (the
leader on BCE alone; see :class:`~fairbinn.core.config.TrainConfig`).

The follower steps by plain SGD (``config.follower_optimizer="sgd"``, the
default), whose step scales with eta; ``"adam"``, the released code's
follower, moves about ``fairness_lr`` per step whatever eta is. With
``config.follower_bce=True`` the follower minimises BCE + eta * fairness, so
that as eta goes to 0 the block becomes an ordinary accuracy layer.

``Stackelberg`` plays the same game with an anticipating leader: its gradient
includes the follower's response to the leader's parameters (unrolled
follower steps or the implicit-function theorem; see :class:`Stackelberg`).

The follower's backward never enters the encoder, and neither backward
computes gradients for the other player's parameters. In leader-first order,
or with separate minibatches, the follower needs encoder features the leader's
forward did not produce (the encoder has just changed, or the batch differs),
so it takes one extra encoder forward without gradient tracking.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, ClassVar, TypeVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import ExponentialLR

from . import distributed
from .compiled import compile_strategy
from .constraints import FairnessConstraint
from .data import Batch
from .model import FairModel
from .registry import Registry

if TYPE_CHECKING:  # for annotations only: the configuration module imports this one
    from .config import TrainConfig

__all__ = [
    "Strategy", "ERM", "Lagrangian", "Bilevel", "Stackelberg", "create_strategy", "register_strategy",
    "list_strategies", "resolve_strategy", "is_bilevel", "is_stackelberg",
]


def _optimizer(params: list[nn.Parameter], lr: float, decay: float, kind: str = "adam", **adam_kwargs):
    """An Adam (``kind="adam"``, with ``adam_kwargs``) or plain SGD optimizer and its per-epoch decay."""
    if kind == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(params, lr=lr)
    else:
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

    def _add_optimizer(self, params: list[nn.Parameter], lr: float, decay: float, kind: str = "adam"):
        optimizer, scheduler = _optimizer(params, lr, decay, kind, **self.adam_kwargs)
        self.optimizers.append(optimizer)
        self.schedulers.append(scheduler)
        return optimizer

    def _bce(self, logits: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """The mean BCE of ``logits`` ``(n,)`` (or ``(k, n)`` for a stack) against labels ``y``; with sample
        weights ``weight`` (the shape of ``y``), the weighted mean ``sum(w_i * bce_i) / sum(w_i)`` (0 for a
        batch whose weights are all zero)."""
        if weight is not None:
            per_example = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), reduction="none")
            weight = weight.to(per_example.dtype)
            sums = (per_example * weight).sum(-1)
            total = weight.sum(-1).expand_as(sums)
            if distributed.active():  # the weighted mean over the global batch
                sums, total = distributed.global_sum(torch.stack([sums, total])).unbind(0)
            return sums / total.clamp_min(torch.finfo(total.dtype).tiny)
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
        loss = self._bce(logits, y, batch.selected_weight())
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
        out = self.forward(batch.inputs)
        logits, y, _ = batch.selected(out)
        bce = self._bce(logits, y, batch.selected_weight())
        fairness = self._fairness(*batch.fairness_selected(out))
        loss = bce + self.eta * fairness
        return loss, {"bce": bce.detach(), "fairness": fairness.detach(), "loss": loss.detach()}


class Bilevel(Strategy):
    """FairBiNN's Stackelberg step: the fairness layers (follower) and the rest (leader) in turn."""

    name = "bilevel"
    compiled_methods = ("_encoded", "_follower_forward", "_leader_forward", "_joint_forward")

    def __init__(self, model, config, constraint, num_groups=None, **kwargs):
        super().__init__(model, config, constraint, num_groups, **kwargs)
        self.leader_params = list(model.leader_parameters())
        self.follower_params = list(model.follower_parameters())
        if not self.follower_params:
            raise ValueError(
                f"the {self.name} strategy needs a fairness block with trainable parameters (the follower); "
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
            self.follower_params, config.fairness_lr, config.fairness_lr_decay, config.follower_optimizer
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

    def _follower_loss(self, out: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """The follower's loss, eta * fairness (+ BCE with ``config.follower_bce``), and the fairness loss,
        from the logits ``out`` of all of ``batch``'s examples."""
        fairness = self._fairness(*batch.fairness_selected(out))
        loss = self.eta * fairness
        if not self.config.follower_bce:
            return loss, fairness
        logits, y, _ = batch.selected(out)
        return loss + self._bce(logits, y, batch.selected_weight()), fairness

    def _leader_loss(self, out: Tensor, batch: Batch, fairness: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The leader's loss, BCE (+ eta * fairness with ``config.leader_penalty``), and the BCE, from the
        logits ``out`` of all of ``batch``'s examples; ``fairness``: their fairness loss if already computed."""
        logits, y, _ = batch.selected(out)
        bce = self._bce(logits, y, batch.selected_weight())
        if not self.config.leader_penalty:
            return bce, bce
        return bce + self.eta * (self._fairness(*batch.fairness_selected(out)) if fairness is None else fairness), bce

    def _follower_forward(self, features: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """The follower's loss and the fairness loss on ``batch``, from the encoder's ``features``."""
        return self._follower_loss(self.model.decode(features), batch)

    def _leader_forward(self, features: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """The leader's loss and the BCE on ``batch``, from the encoder's ``features``."""
        return self._leader_loss(self.model.decode(features), batch)

    def _joint_forward(self, features: Tensor, batch: Batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One decode, both players' losses (the simultaneous order): follower loss, fairness, leader loss, BCE."""
        out = self.model.decode(features)
        follower_loss, fairness = self._follower_loss(out, batch)
        return (follower_loss, fairness, *self._leader_loss(out, batch, fairness))

    def _follower_step(self, features: Tensor, batch: Batch) -> Tensor:
        loss, fairness = self._follower_forward(features, batch)
        grads = torch.autograd.grad(_total(loss), self.follower_params)
        grads = distributed.average_gradients(list(grads))
        for param, grad in zip(self.follower_params, grads):
            param.grad = grad
        self.follower_optimizer.step()
        return fairness.detach()

    def _leader_step(self, features: Tensor, batch: Batch) -> Tensor:
        loss, bce = self._leader_forward(features, batch)
        self.leader_optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(_total(loss), inputs=self.leader_params)
        self.leader_optimizer.step()
        return bce.detach()

    def _fresh_features(self, batch: Batch) -> Tensor:
        with torch.no_grad():
            return self.model.encoder(batch.inputs)

    def _simultaneous_step(self, features: Tensor, batch: Batch) -> dict[str, Tensor]:
        """One forward; the follower's gradient of eta * fairness, the leader's of its loss; both step."""
        follower_loss, fairness, loss, bce = self._joint_forward(features, batch)
        grads = torch.autograd.grad(_total(follower_loss), self.follower_params, retain_graph=True)
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


class Stackelberg(Bilevel):
    """The bilevel game with an anticipating leader: its gradient includes the follower's response.

    The follower (fairness block, parameters ``phi``) minimises
    ``f(theta, phi) = eta * fairness`` (+ BCE with ``config.follower_bce``);
    the leader (encoder and head, ``theta``) minimises ``L(theta, phi*(theta))``
    with ``L`` = BCE (+ eta * fairness with ``config.leader_penalty``), where
    ``phi*(theta)`` is the follower's response. The leader steps on the total
    derivative ``dL/dtheta`` (the hypergradient), which the other strategies
    replace by the partial ``d_theta L``:

    ``config.hypergradient="unrolled"``
        ``phi_{t+1} = phi_t - a * grad_phi f(theta, phi_t)`` for
        ``config.unroll_steps`` steps from the current ``phi``, with ``a`` the
        follower's current learning rate (``fairness_lr``, decayed), taken
        differentiably (``torch.func.functional_call`` with the stepped
        parameters); ``L`` is evaluated at ``phi_k`` and differentiated through
        the steps.
    ``config.hypergradient="implicit"``
        At the current ``phi``, taken as the follower's equilibrium:
        ``dL/dtheta = d_theta L - d2_{theta phi} f . v`` with
        ``v = [d2_{phi phi} f + cg_damping I]^-1 d_phi L``, ``v`` from
        ``config.cg_iters`` conjugate-gradient iterations on Hessian-vector
        products (double backward).

    Then the follower takes its actual step with its configured optimizer
    (``follower_optimizer``, on its own loss), before the leader
    (``order="follower_first"``, the default) or after it (``"leader_first"``);
    ``"simultaneous"`` is refused. One encoder forward per step (and one more
    without gradient for the follower in leader-first order or with separate
    batches, as for :class:`Bilevel`): the unrolled steps repeat only the
    fairness block and head, and both hypergradients backpropagate once
    through the encoder.

    Stacks (:mod:`fairbinn.core.stacked`): the models' losses are summed, so
    the unrolled steps are each model's own; conjugate gradients take one
    step size per model (inner products over each model's slice of the
    stacked parameters), so each model's hypergradient is the one it would get
    alone. Distributed (``torchrun``): the leader's gradient is not routed
    through DistributedDataParallel; every gradient and Hessian-vector
    product is averaged over the processes (the all-reduce of
    :func:`~fairbinn.core.distributed.global_sum` is differentiable twice),
    which gives a single process's hypergradient.

    Each step reports ``hypergradient_norm``, the Euclidean norm of the
    leader's hypergradient (per model for a stack); the trainer stops with the
    epoch and step where it, or any loss, stops being finite.
    """

    name = "stackelberg"
    compiled_methods = ()  # the hypergradients differentiate twice, which compiled graphs do not support

    def __init__(self, model, config, constraint, num_groups=None, **kwargs):
        super().__init__(model, config, constraint, num_groups, **kwargs)
        if config.order == "simultaneous":
            raise ValueError("a stackelberg leader anticipates the follower's response; the players step in turn "
                             "(order 'follower_first' or 'leader_first'), not simultaneously")
        self.follower_names = [name for name, _ in model.fairness.named_parameters()]
        self.num_models: int | None = getattr(model, "num_models", None)  # a stack: per-model inner products
        self._norm: Tensor | None = None

    def data_parallel(self, **ddp_kwargs) -> None:
        """No DistributedDataParallel: the hypergradient is taken with ``torch.autograd.grad`` and its
        pieces are averaged over the processes here (see the class docstring)."""

    def hypergradient(self, batch: Batch, features: Tensor | None = None) -> list[Tensor]:
        """The leader's hypergradient on ``batch``, one tensor per leader parameter (the shapes of
        ``model.leader_parameters()``), without stepping. ``features``: the encoder's output on
        ``batch.inputs`` with its graph, if already computed."""
        features = self.encode(batch.inputs) if features is None else features
        return self._hypergradient(features, batch)[0]

    def _hypergradient(self, features: Tensor, batch: Batch) -> tuple[list[Tensor], Tensor]:
        if self.config.hypergradient == "implicit":
            return self._implicit(features, batch)
        return self._unrolled(features, batch)

    def _grad(self, output: Tensor, inputs: list[Tensor], **kwargs) -> list[Tensor]:
        """``torch.autograd.grad``, zeros for inputs ``output`` does not depend on."""
        return list(torch.autograd.grad(output, inputs, allow_unused=True, materialize_grads=True, **kwargs))

    def _unrolled(self, features: Tensor, batch: Batch) -> tuple[list[Tensor], Tensor]:
        rate = self.follower_optimizer.param_groups[0]["lr"]
        phi: list[Tensor] = list(self.follower_params)
        for step in range(self.config.unroll_steps):
            follower = None if step == 0 else dict(zip(self.follower_names, phi))
            loss, _ = self._follower_loss(self.model.decode(features, follower), batch)
            grads = distributed.global_mean(self._grad(_total(loss), phi, create_graph=True))
            phi = [p - rate * g for p, g in zip(phi, grads)]
        loss, bce = self._leader_loss(self.model.decode(features, dict(zip(self.follower_names, phi))), batch)
        grads = distributed.average_gradients(self._grad(_total(loss), self.leader_params))
        return grads, bce.detach()

    def _implicit(self, features: Tensor, batch: Batch) -> tuple[list[Tensor], Tensor]:
        out = self.model.decode(features)
        follower_loss, fairness = self._follower_loss(out, batch)
        loss, bce = self._leader_loss(out, batch, fairness)
        phi, theta = self.follower_params, self.leader_params
        follower_grad = self._grad(_total(follower_loss), phi, create_graph=True)
        partial = distributed.average_gradients(self._grad(_total(loss), theta + phi, retain_graph=True))
        partial_theta, partial_phi = partial[:len(theta)], partial[len(theta):]
        damping = self.config.cg_damping

        def damped_hvp(vector: list[Tensor]) -> list[Tensor]:
            products = self._grad(follower_grad, phi, grad_outputs=vector, retain_graph=True)
            return [h + damping * v for h, v in zip(distributed.average_gradients(products), vector)]

        v = self._conjugate_gradients(damped_hvp, partial_phi)
        cross = distributed.average_gradients(self._grad(follower_grad, theta, grad_outputs=v))
        return [a - c for a, c in zip(partial_theta, cross)], bce.detach()

    def _dot(self, a: list[Tensor], b: list[Tensor]) -> Tensor:
        """Inner product of two parameter lists: a scalar, or one per model ``(k,)`` for a stack."""
        if self.num_models is None:
            return sum((x * y).sum() for x, y in zip(a, b))
        return sum((x * y).reshape(self.num_models, -1).sum(1) for x, y in zip(a, b))

    def _scale(self, c: Tensor, t: Tensor) -> Tensor:
        """``c * t`` with ``c`` a scalar, or one factor per model ``(k,)`` along ``t``'s leading axis."""
        return c * t if self.num_models is None else c.view(-1, *[1] * (t.dim() - 1)) * t

    def _conjugate_gradients(self, operator: Callable[[list[Tensor]], list[Tensor]],
                             b: list[Tensor]) -> list[Tensor]:
        """``config.cg_iters`` iterations of conjugate gradients on ``operator(x) = b`` from ``x = 0``
        (per model for a stack); a zero residual or curvature stops a model's updates."""
        x = [torch.zeros_like(t) for t in b]
        r = [t.clone() for t in b]
        p = [t.clone() for t in b]
        rr = self._dot(r, r)
        for _ in range(self.config.cg_iters):
            ap = operator(p)
            curvature = self._dot(p, ap)
            alpha = torch.where(curvature != 0, rr / curvature, torch.zeros_like(rr))
            x = [xi + self._scale(alpha, pi) for xi, pi in zip(x, p)]
            r = [ri - self._scale(alpha, api) for ri, api in zip(r, ap)]
            new_rr = self._dot(r, r)
            beta = torch.where(rr != 0, new_rr / rr, torch.zeros_like(rr))
            p = [ri + self._scale(beta, pi) for ri, pi in zip(r, p)]
            rr = new_rr
        return x

    def _leader_step(self, features: Tensor, batch: Batch) -> Tensor:
        grads, bce = self._hypergradient(features, batch)
        for param, grad in zip(self.leader_params, grads):
            param.grad = grad
        self.leader_optimizer.step()
        self._norm = self._dot(grads, grads).sqrt()
        return bce

    def step(self, batch: Batch, follower_batch: Batch | None = None) -> dict[str, Tensor]:
        """The bilevel step with the leader on its hypergradient; reports ``bce`` (the leader's, after the
        anticipated steps when unrolled), ``fairness`` (the follower's) and ``hypergradient_norm``."""
        record = super().step(batch, follower_batch)
        return {**record, "hypergradient_norm": self._norm}


class _Leader(nn.Module):
    """The leader's modules (encoder and head) as one module whose forward is the encoder's,
    so DistributedDataParallel syncs the head's gradients too (the head runs on its output)."""

    def __init__(self, model: FairModel) -> None:
        super().__init__()
        self.encoder, self.head = model.encoder, model.head

    def forward(self, inputs):
        return self.encoder(inputs)


_STRATEGIES: Registry[type[Strategy]] = Registry("strategy", {cls.name: cls for cls in (ERM, Lagrangian, Bilevel, Stackelberg)},
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


def is_stackelberg(name: str) -> bool:
    """Whether ``name`` is a registered :class:`Stackelberg` strategy, whose leader reads the hypergradient settings."""
    return name in _STRATEGIES and issubclass(_STRATEGIES.get(name), Stackelberg)


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
