"""Dr-Fairness: adaptive data-ratio sampling among groups and between real and generated data.

Roh et al., "Dr-Fairness: Dynamic Data Ratio Adjustment for Fair Training on
Real and Generated Data". Where FairBiNN changes the model, Dr-Fairness
changes what the model sees: the outer variables of a bilevel problem are
sampling ratios, the inner problem is ordinary training.

Every training example has a label ``y``, a group ``z`` and a source (real or
generated), so it falls in one cell ``(y, z, source)``. For each label the
sampler keeps

* group ratios ``softmax(alpha[y])``, initialised to the real data's group
  proportions within that label, and
* a real fraction ``sigmoid(beta[y])``, starting at one half (fixed at 1 when
  there is no generated data),

and a minibatch takes ``round(batch_size * P(y))`` examples of label ``y``
(``P`` the real training data's label proportions), spread over the cells of
that label by a multinomial draw with those ratios, each cell's examples drawn
uniformly with replacement. In expectation the minibatch loss is then
``sum_c w_c * loss_c`` with cell weights
``w[y, z, real] = P(y) * softmax(alpha[y])[z] * sigmoid(beta[y])``.

Before each minibatch the ratios take one Adam step on the outer objective,
measured on a random batch of real validation examples::

    F = max_y (max_z loss_val(y, z) - min_z loss_val(y, z)) + k * loss_val

(the largest within-label gap between groups' losses, an equalized-odds style
gap, plus ``k`` times the overall validation loss). Its hypergradient follows
the implicit function theorem with the inverse Hessian replaced by the
identity, restricted to the head's parameters ``theta``::

    dF/dw_c  ~  -<grad_theta F, grad_theta loss_c>

``grad_theta F`` is one head backward on the validation batch;
``<grad_theta F, grad_theta loss_c>`` for every cell at once is one
forward-mode derivative (a JVP) of the per-cell losses of a small stratified
probe batch along that direction. The encoder (and a FairBiNN fairness block)
run once on each of the two batches without gradients: the validation batch
in evaluation mode, the probe with batch-norm layers normalising by the
probe's own statistics, so that its gradients are the ones a training step
takes (running statistics untouched, dropout off). (In evaluation mode a
ResNet trained on half faces, half noise scored its label-1 noise images at
p = 0.006, loss 5.1, where a training-mode batch scored them at about 0.2,
loss 1.6.)

``hessian="last_layer"`` keeps the inverse Hessian, restricted to the head's
final ``nn.Linear`` (one output) with inputs ``a`` (and a constant 1 for its
bias)::

    dF/dw_c  ~  -<H^-1 grad_theta F, grad_theta loss_c>,
    H = sum_c w_c mean_{i in c} p_i (1 - p_i) a_i a_i^T + damping * mean(diag) * I

the exact Hessian of the expected minibatch loss in those parameters (cross
entropy is linear-then-logistic there), measured on the probe batch and
solved directly (a ``d + 1`` square system, ``d`` the layer's width). The
identity scores a cell by how its gradient lines up with the validation
gradient as they stand; the Hessian asks how the fitted layer would move if
the cell weighed more, which discounts directions the layer fits easily and
separately. It is not the published method, so it is not the default; the
README's results compare the two.

Without generated data the method is adaptive group re-weighting of the real
data. It only changes the batches, so every strategy (ERM, Lagrangian,
FairBiNN's bilevel game) trains on them unchanged.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp
from torch.nn import functional as F
from torch.utils.data import ConcatDataset, default_collate

from . import distributed
from .constraints import group_gaps
from .data import Batch, Split, as_batch, check_targets, move_to, rows_of
from .options import check_options, non_negative_number, option, positive_number, raise_problems

__all__ = ["DrFairnessConfig", "DrFairnessSampler", "HESSIANS"]

REAL, GENERATED = 0, 1
HESSIANS = ("identity", "last_layer")
"""Inverse-Hessian approximations of the hypergradient (``DrFairnessSampler(hessian=...)``)."""


class _Pool:
    """Examples the sampler draws from: labels, groups, sources, and a way to build a batch of rows."""

    def __init__(self, data: Any, generated: Any = None, name: str = "training data") -> None:
        if isinstance(data, Split):
            if data.w is not None or getattr(generated, "w", None) is not None:
                raise ValueError(f"{name}: the Dr-Fairness sampler sets its own ratios and does not use sample "
                                 "weights; train a weighted Split with the uniform sampler")
            if generated is not None:
                if not isinstance(generated, Split):
                    raise TypeError("generated data must be a Split when the real data is a Split")
                if generated.num_features != data.num_features:
                    raise ValueError(
                        f"generated data has {generated.num_features} features, the real data {data.num_features}"
                    )
                data = Split(torch.cat([data.x, generated.x]), torch.cat([data.y, generated.y]),
                             torch.cat([data.s, generated.s]), name=data.name)
            self._split, self._rows = data, None
            y, s = data.y, data.s
        elif hasattr(data, "__getitem__") and hasattr(data, "targets") and hasattr(data, "__len__"):
            y, s = data.targets()
            if generated is not None:
                gy, gs = generated.targets()
                y, s, data = torch.cat([y, gy]), torch.cat([s, gs]), ConcatDataset([data, generated])
            self._split, self._rows = None, data
        else:
            full = self._single_batch(data, name)
            if generated is not None:
                raise ValueError("generated data is not supported for a graph: generated nodes would have no edges")
            nodes = full.mask.nonzero().squeeze(1) if full.mask is not None else torch.arange(len(full.y))
            self._graph, self._nodes = full, nodes
            self._split = self._rows = None
            y, s = full.y[nodes], full.s[nodes]
        self.y = y.float()
        self.s = s.long()
        self.source = torch.zeros(len(self.y), dtype=torch.long)
        if generated is not None:
            self.source[len(self.y) - _length(generated):] = GENERATED
        self.real = self.source == REAL

    @staticmethod
    def _single_batch(data: Any, name: str) -> Batch:
        """The one batch of a full-graph loader (a :class:`~fairbinn.graph.FullGraph`)."""
        if not hasattr(data, "__iter__") or (hasattr(data, "__len__") and len(data) != 1):
            raise TypeError(
                f"{name}: the Dr-Fairness sampler draws rows from a Split, a map-style dataset with "
                f"targets() (e.g. a CelebA split) or a full graph; got {type(data).__name__}"
            )
        return as_batch(next(iter(data)))

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, rows: Tensor) -> Batch:
        """A :class:`Batch` of the pool's ``rows`` (positions, repeats allowed)."""
        if self._split is not None:
            return Batch(self._split.x[rows], self._split.y[rows], self._split.s[rows])
        if self._rows is not None:
            return as_batch(default_collate([self._rows[i] for i in rows.tolist()]))
        graph = self._graph
        return Batch(graph.inputs, graph.y, graph.s, self._nodes[rows])


def _length(data: Any) -> int:
    return len(data.y) if isinstance(data, Split) else len(data)


@dataclass(frozen=True)
class DrFairnessConfig:
    """Dr-Fairness's settings: ``TrainConfig(sampler=DrFairnessConfig(k=1.0))``.

    ``lr``, ``k``, ``hessian`` and ``damping`` are the
    :class:`DrFairnessSampler` parameters of those names, with its defaults
    (``TrainConfig(sampler="drfairness")`` takes them all). Results record
    them, the CLI sets them and errors name them as ``ratio_<name>``.
    """

    lr: float = option(1e-3, "drfairness: Adam learning rate of the ratios (default 0.001)", flags=("--ratio-lr",), dest="ratio_lr",
                       check=positive_number)
    k: float = option(20.0, "drfairness: weight of the validation loss beside the group-loss gap (default 20)",
                      flags=("--ratio-k",), dest="ratio_k", check=non_negative_number)
    hessian: str = option("identity", "drfairness: inverse Hessian of the hypergradient, the identity over the head "
                                      "(as published, default) or the damped exact Hessian of the head's final "
                                      "linear layer", flags=("--ratio-hessian",), dest="ratio_hessian", choices=HESSIANS)
    damping: float = option(1e-3, "drfairness with --ratio-hessian last_layer: ridge relative to the Hessian's mean "
                                  "diagonal (default 0.001)", flags=("--ratio-damping",), dest="ratio_damping", check=positive_number)
    name: ClassVar[str] = "drfairness"
    adaptive: ClassVar[bool] = True  # the draws depend on the model: one stream of batches, no stacking

    def __post_init__(self) -> None:
        raise_problems("Dr-Fairness settings", check_options(self, prefix="ratio_"))

    def settings(self) -> dict[str, Any]:
        """The settings recorded in ``TrainConfig.to_dict()`` beside ``sampler``."""
        return {f"ratio_{f.name}": getattr(self, f.name) for f in fields(self)}

    def build(self, train: Any, val: Any, generated: Any = None, *, batch_size: int, seed: int) -> DrFairnessSampler:
        """The run's sampler over ``train`` (a Split, a full graph or a loader's dataset), ``val`` and ``generated``."""
        return DrFairnessSampler(rows_of(train), rows_of(val), generated=rows_of(generated), batch_size=batch_size,
                                 k=self.k, lr=self.lr, hessian=self.hessian, damping=self.damping, seed=seed)


class DrFairnessSampler:
    """Training minibatches drawn to adaptive per-label group and real/generated ratios.

    Pass it to :meth:`~fairbinn.core.trainer.Trainer.fit` as the training
    data; the trainer binds it to the model, records its ratios in the history
    every epoch and saves its state in checkpoints.

    Parameters
    ----------
    train : Split, graph split or dataset
        Real training data: a :class:`~fairbinn.core.data.Split`, a full-graph
        split (:class:`~fairbinn.graph.FullGraph`; batches are the whole graph
        with an index ``mask`` of the drawn nodes, repeats allowed), or a
        map-style dataset of ``(inputs, y, s)`` with ``targets()`` (a CelebA
        split).
    val : same kinds as ``train``
        Real validation data for the outer objective.
    generated : same kind as ``train``, optional
        Generated (synthetic) examples with the same fields. Not for graphs.
    batch_size : int, default 100
        Examples per minibatch. An epoch has ``ceil(n_real / batch_size)``
        minibatches (nodes of a graph count as examples).
    k : float, default 20.0
        Weight of the overall validation loss in the outer objective.
    lr : float, default 1e-3
        Adam learning rate of the ratio logits.
    val_batch_size : int, default 256
        Real validation examples per outer step.
    probe_per_cell : int, default 16
        Training examples per cell in the probe batch whose loss gradients
        enter the hypergradient (all of a smaller cell).
    hessian : {"identity", "last_layer"}, default "identity"
        The inverse-Hessian approximation of the hypergradient: the identity
        over all head parameters (the method as published), or the damped
        exact Hessian of the head's final linear layer (see the module
        docstring; the head must end in an ``nn.Linear`` with one output).
    damping : float, default 1e-3
        ``hessian="last_layer"``: ridge added to the Hessian, relative to the
        mean of its diagonal.
    seed : int, default 0
        Seeds the draws.

    Attributes
    ----------
    alpha : Tensor, shape (2, G)
        Group-ratio logits per label (``-inf`` for a group with no example of that label).
    beta : Tensor, shape (2,)
        Real-fraction logits per label (unused without generated data).
    """

    def __init__(
        self,
        train: Any,
        val: Any,
        *,
        generated: Any = None,
        batch_size: int = 100,
        k: float = 20.0,
        lr: float = 1e-3,
        val_batch_size: int = 256,
        probe_per_cell: int = 16,
        hessian: str = "identity",
        damping: float = 1e-3,
        seed: int = 0,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("val_batch_size", val_batch_size),
                            ("probe_per_cell", probe_per_cell)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        DrFairnessConfig(lr=lr, k=k, hessian=hessian, damping=damping)  # validates them
        if val is None:
            raise ValueError("the Dr-Fairness sampler needs real validation data for its outer objective")
        self.pool = _Pool(train, generated)
        self.val_pool = _Pool(val, name="validation data")
        check_targets(self.pool.y[self.pool.real], self.pool.s[self.pool.real], name="real training data",
                      min_groups=2)
        check_targets(self.val_pool.y, self.val_pool.s, name="validation data")
        if generated is not None:
            check_targets(self.pool.y[~self.pool.real], self.pool.s[~self.pool.real], name="generated data")
        self.has_generated = generated is not None
        self.batch_size, self.k, self.lr = batch_size, float(k), float(lr)
        self.val_batch_size, self.probe_per_cell, self.seed = val_batch_size, probe_per_cell, seed
        self.hessian, self.damping = hessian, float(damping)
        self.num_groups = int(max(self.pool.s.max(), self.val_pool.s.max())) + 1

        pool, groups = self.pool, self.num_groups
        self.num_cells = 4 * groups  # (label, group, source)
        self.cell = (pool.y.long() * groups + pool.s) * 2 + pool.source  # (n,) cell of every example
        counts = torch.bincount(self.cell, minlength=self.num_cells).view(2, groups, 2)
        self.members = [torch.nonzero(self.cell == c).squeeze(1) for c in range(self.num_cells)]
        self.available = counts > 0  # (2, G, 2)
        real = counts[:, :, REAL].double()
        label_share = real.sum(1) / real.sum()
        self.label_counts = _largest_remainder(label_share * batch_size)  # (2,) held at real proportions
        with torch.no_grad():
            alpha = torch.log(real / real.sum(1, keepdim=True).clamp_min(1)).float()
            alpha[~self.available.any(2)] = -math.inf
        self.alpha = nn.Parameter(alpha)
        self.beta = nn.Parameter(torch.zeros(2))
        self._outer = [self.alpha, self.beta] if self.has_generated else [self.alpha]
        self.optimizer = torch.optim.Adam(self._outer, lr=self.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.model: nn.Module | None = None
        self._final_layer: nn.Linear | None = None  # the head's final layer, for hessian="last_layer"
        self.steps_per_epoch = -(-int(pool.real.sum()) // batch_size)
        self._objective: list[float] = []

    # ------------------------------------------------------------------ loader protocol
    def bind(self, model: nn.Module) -> None:
        """Use ``model`` (a :class:`~fairbinn.core.model.FairModel`) for the hypergradients."""
        self._final_layer = _final_linear(model.head) if self.hessian == "last_layer" else None  # fails now
        self.model = model

    def __len__(self) -> int:
        return self.steps_per_epoch

    def targets(self) -> tuple[Tensor, Tensor]:
        """Labels and groups of the real training examples, for the trainer's checks."""
        return self.pool.y[self.pool.real], self.pool.s[self.pool.real]

    def __iter__(self) -> Iterator[Batch]:
        if self.model is None:
            raise RuntimeError("bind(model) the Dr-Fairness sampler before iterating (Trainer.fit does it)")
        for _ in range(self.steps_per_epoch):
            self.update()
            yield self.pool.batch(self.draw())

    # ------------------------------------------------------------------ ratios
    def cell_weights(self) -> Tensor:
        """Sampling weight of every cell ``(2, G, 2)`` (label, group, source); sums to 1, differentiable."""
        groups = torch.softmax(self.alpha, dim=1)  # (2, G)
        real = torch.sigmoid(self.beta) if self.has_generated else torch.ones(2)
        source = torch.stack([real, 1 - real], dim=1)  # (2, 2)
        weights = groups[:, :, None] * source[:, None, :] * self.available
        weights = weights / weights.sum((1, 2), keepdim=True).clamp_min(1e-12)  # renormalise missing cells
        share = self.label_counts.to(weights.dtype) / self.label_counts.sum()
        return weights * share[:, None, None]

    def ratios(self) -> dict[str, float]:
        """Current ratios by name: ``ratio_y{label}_g{group}`` and, with generated data, ``real_fraction_y{label}``."""
        with torch.no_grad():
            groups = torch.softmax(self.alpha, dim=1)
            record = {f"ratio_y{y}_g{g}": float(groups[y, g]) for y in range(2) for g in range(self.num_groups)}
            if self.has_generated:
                record.update({f"real_fraction_y{y}": float(torch.sigmoid(self.beta[y])) for y in range(2)})
        return record

    def epoch_record(self) -> dict[str, float]:
        """What the trainer adds to an epoch's history: the ratios and the mean outer objective."""
        objective = sum(self._objective) / len(self._objective) if self._objective else math.nan
        self._objective = []
        return {**self.ratios(), "outer_objective": objective}

    def draw(self) -> Tensor:
        """Pool positions of one minibatch drawn to the current ratios."""
        with torch.no_grad():
            weights = self.cell_weights().view(2, -1)
        picks = []
        for label in range(2):
            total = int(self.label_counts[label])
            if total == 0:
                continue
            cells = torch.multinomial(weights[label], total, replacement=True, generator=self.generator)
            for cell, count in zip(*torch.unique(cells, return_counts=True)):
                members = self.members[label * weights.shape[1] + int(cell)]
                picks.append(members[torch.randint(len(members), (int(count),), generator=self.generator)])
        return torch.cat(picks)

    def _probe(self) -> Tensor:
        """Up to ``probe_per_cell`` random members of every non-empty cell."""
        picks = []
        for members in self.members:
            if len(members) > self.probe_per_cell:
                members = members[torch.randperm(len(members), generator=self.generator)[: self.probe_per_cell]]
            picks.append(members)
        return torch.cat(picks)

    def update(self) -> float:
        """One Adam step of the ratio logits on the outer objective; returns the objective's value."""
        model = self.model
        device = next(model.parameters()).device
        probe_rows = self._probe()
        val_rows = torch.randint(len(self.val_pool), (self.val_batch_size,), generator=self.generator)
        was_training = model.training
        model.eval()
        try:
            with _batch_statistics(model):  # the probe's gradients are the ones a training step would take
                probe = self._head_inputs(self.pool.batch(probe_rows), device)
            val = self._head_inputs(self.val_pool.batch(val_rows), device)
            cells = self.cell[probe_rows].to(device)
            if self.hessian == "identity":
                alignment, objective = self._identity_alignment(probe, val, cells)
            else:
                alignment, objective = self._last_layer_alignment(probe, val, cells)
        finally:
            model.train(was_training)
        hypergradient = -alignment.detach().cpu()  # dF/dw_c
        self.optimizer.zero_grad(set_to_none=True)
        weights = self.cell_weights().reshape(-1)
        torch.autograd.backward((weights * hypergradient).sum(), inputs=self._outer)
        for param in self._outer:  # -inf logits (empty groups) have no gradient
            param.grad = torch.nan_to_num(param.grad, nan=0.0, posinf=0.0, neginf=0.0)
        self.optimizer.step()
        value = float(objective.detach())
        self._objective.append(value)
        return value

    def _outer_objective(self, logits: Tensor, y: Tensor, s: Tensor) -> Tensor:
        """``F``: the largest within-label gap between groups' losses plus ``k`` times the mean loss."""
        losses = _bce(logits, y)
        with distributed.exact_statistics(False):  # every process has the same validation batch: no all-reduce
            return _group_gap(losses, y, s, self.num_groups) + self.k * losses.mean()

    def _identity_alignment(self, probe, val, cells: Tensor) -> tuple[Tensor, Tensor]:
        """``<grad F, grad loss_c>`` over all head parameters, for every cell ``c``; and ``F``."""
        probe_h, probe_y, _ = probe
        val_h, val_y, val_s = val
        params = {name: p.detach() for name, p in self.model.head.named_parameters()}
        with torch.enable_grad():
            live = {name: p.clone().requires_grad_() for name, p in params.items()}
            objective = self._outer_objective(self._logits(live, val_h), val_y, val_s)
            direction = torch.autograd.grad(objective, list(live.values()), allow_unused=True)
        tangents = {name: torch.zeros_like(p) if g is None else g for (name, p), g in zip(params.items(), direction)}

        def cell_losses(head_params: dict[str, Tensor]) -> Tensor:
            per_example = _bce(self._logits(head_params, probe_h), probe_y)
            return _cell_means(per_example, cells, self.num_cells)

        _, alignment = jvp(cell_losses, (params,), (tangents,))
        return alignment, objective

    def _last_layer_alignment(self, probe, val, cells: Tensor) -> tuple[Tensor, Tensor]:
        """``<H^-1 grad F, grad loss_c>`` over the head's final linear layer, for every cell ``c``; and ``F``."""
        probe_a, probe_logits = self._last_layer_inputs(probe[0])
        val_a, val_logits = self._last_layer_inputs(val[0])
        with torch.enable_grad():
            val_logits = val_logits.requires_grad_()
            objective = self._outer_objective(val_logits, val[1], val[2])
            (d_logits,) = torch.autograd.grad(objective, val_logits)
        grad_f = val_a.T @ d_logits  # (d + 1,): dF / d(weight, bias)
        p = torch.sigmoid(probe_logits)
        cell_grads = _cell_means((p - probe[1])[:, None] * probe_a, cells, self.num_cells)  # (cells, d + 1)
        with torch.no_grad():
            weights = self.cell_weights().reshape(-1).to(p.device)
        counts = torch.bincount(cells, minlength=self.num_cells).clamp_min(1)
        curvature = (weights / counts)[cells] * p * (1 - p)
        hessian = (probe_a * curvature[:, None]).T @ probe_a
        ridge = self.damping * hessian.diagonal().mean().clamp_min(1e-8)
        hessian.diagonal().add_(ridge)
        return cell_grads @ torch.linalg.solve(hessian, grad_f), objective

    def _last_layer_inputs(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Inputs of the head's final ``nn.Linear`` (a column of ones appended for its bias) and the logits."""
        layer = self._final_layer
        seen: list[Tensor] = []
        handle = layer.register_forward_hook(lambda module, args, out: seen.append(args[0]))
        try:
            logits = _squeeze(self.model.head(features)).detach()
        finally:
            handle.remove()
        if len(seen) != 1 or seen[0].shape[0] != logits.shape[0] or seen[0].dim() != 2:
            raise ValueError("hessian='last_layer' needs a head whose final nn.Linear runs once on (n, d) "
                             "features and gives the logits")
        inputs = seen[0].detach()
        if not torch.allclose(F.linear(inputs, layer.weight, layer.bias).squeeze(1), logits, atol=1e-5, rtol=1e-4):
            raise ValueError("hessian='last_layer' needs the head's final nn.Linear to give the logits "
                             "(nothing may follow it)")
        if layer.bias is not None:
            inputs = torch.cat([inputs, inputs.new_ones(len(inputs), 1)], dim=1)
        return inputs, logits

    def _logits(self, head_params: dict[str, Tensor], features: Tensor) -> Tensor:
        return _squeeze(functional_call(self.model.head, head_params, (features,)))

    @torch.no_grad()
    def _head_inputs(self, batch: Batch, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """The head's inputs (encoder, then fairness block), labels and groups of a batch's selected examples."""
        batch = move_to(batch, device)
        features, y, s = batch.selected(self.model.fairness(self.model.encoder(batch.inputs)))
        return features, y.float(), s

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Ratio logits, their optimizer and the draw generator: all a resumed run needs."""
        return {"alpha": self.alpha.detach().clone(), "beta": self.beta.detach().clone(),
                "optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
            self.beta.copy_(state["beta"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

    def settings(self) -> dict[str, Any]:
        """The sampler's settings, as plain values (recorded with a run's results)."""
        return {"sampler": "drfairness", "k": self.k, "ratio_lr": self.lr, "val_batch_size": self.val_batch_size,
                "probe_per_cell": self.probe_per_cell, "hessian": self.hessian, "damping": self.damping,
                "generated": self.has_generated, "generated_examples": int((~self.pool.real).sum())}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bce(logits: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, y, reduction="none")


@contextmanager
def _batch_statistics(model: nn.Module):
    """Batch-norm layers normalise with the batch's own statistics, as in training; their running
    statistics are left as they were. Every other layer stays in evaluation mode (no dropout)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{name: b.clone() for name, b in m.named_buffers(recurse=False)} for m in norms]
    modes = [m.training for m in norms]
    for m in norms:
        m.train()
    try:
        yield
    finally:
        for m, buffers, mode in zip(norms, saved, modes):
            for name, value in buffers.items():
                getattr(m, name).copy_(value)
            m.train(mode)


def _squeeze(logits: Tensor) -> Tensor:
    return logits.squeeze(1) if logits.dim() == 2 and logits.shape[1] == 1 else logits


def _cell_means(values: Tensor, cells: Tensor, num_cells: int) -> Tensor:
    """Mean of ``values`` (rows) per cell; zero for a cell with no row."""
    sums = values.new_zeros((num_cells, *values.shape[1:])).index_add(0, cells, values)
    counts = torch.bincount(cells, minlength=num_cells).clamp_min(1)
    return sums / counts.view(-1, *([1] * (values.dim() - 1)))


def _final_linear(head: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` registered in ``head``; it must have one output."""
    layers = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not layers or layers[-1].out_features != 1:
        raise ValueError("hessian='last_layer' needs a head that ends in an nn.Linear with one output; "
                         f"got {type(head).__name__}")
    return layers[-1]


def _group_gap(losses: Tensor, y: Tensor, s: Tensor, num_groups: int) -> Tensor:
    """Largest within-label difference between groups' mean losses (groups present in the batch only)."""
    return group_gaps(losses, y.long() * num_groups + s, 2, num_groups).max()


def _largest_remainder(shares: Tensor) -> Tensor:
    """Integers summing to ``round(shares.sum())``, each within one of its share."""
    floor = shares.floor()
    left = int(round(float(shares.sum()))) - int(floor.sum())
    order = torch.argsort(shares - floor, descending=True)
    floor[order[:left]] += 1
    return floor.long()
