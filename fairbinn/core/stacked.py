"""Many models of one architecture trained at once, with stacked weights.

A sweep trains the same network for several (eta, seed) pairs. Small
networks leave the hardware idle: a step of one Adult MLP is bound by
per-operator overhead, not by arithmetic. :func:`stack_models` turns ``k``
models of identical structure into one :class:`StackedFairModel` whose
parameters carry a leading model axis (a ``Linear`` becomes a batched matrix
product over ``(k, n, width)`` activations), and :class:`StackedTrainer`
updates all of them in one pass per minibatch with the ordinary strategies
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
import math
import time
import warnings
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checkpoint import RunCheckpoints, divergence
from .config import TrainConfig
from .data import Batch, Split, check_targets
from .fairness_layers import LinearStack, ResidualStack, _ResidualLayer
from .metrics import binary_fairness_report, undefined_gaps
from .model import FairModel
from .registry import Registry
from .runtime import resolve_device
from .strategies import create_strategy
from .selection import certification_record
from .trainer import (TrainResult, _all_groups, _count, _groups_of, _metrics_of, budget_note, certificate_of,
                      constant_class, epoch_selector, interval_columns, test_intervals)

__all__ = [
    "NotStackableError",
    "StackedLinear",
    "StackedFairModel",
    "StackedTrainer",
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


class StackedTrainer:
    """Trains ``k`` models that differ only in eta and seed, in one pass per minibatch.

    Parameters
    ----------
    config : TrainConfig
        Shared settings (strategy, learning rates, epochs, batch size, selection).
        Its ``eta`` and ``seed`` are replaced by each model's.
    etas, seeds : sequence of float / int, length k
        Model ``i`` is trained with ``config.replace(eta=etas[i], seed=seeds[i])``
        and shuffles the training rows with ``seeds[i]`` exactly as
        :class:`~fairbinn.core.trainer.Trainer` does, so its results equal a
        separate run's up to floating-point rounding (initialise model ``i``
        after ``seed_everything(seeds[i])``, as the separate run does).
    adam_kwargs : dict, optional
        Extra ``torch.optim.Adam`` arguments (``fused=True`` is faster on a
        large stack, and rounds differently from the default implementation).

    Data are :class:`~fairbinn.core.data.Split` objects (tabular-style
    in-memory tensors). ``config.separate_batches`` is not supported.
    ``config.checkpoint_dir`` / ``resume`` work as for
    :class:`~fairbinn.core.trainer.Trainer`: one checkpoint holds the whole
    stack, and a resumed stack ends as an uninterrupted one.
    """

    def __init__(
        self,
        config: TrainConfig,
        etas: Sequence[float],
        seeds: Sequence[int],
        adam_kwargs: dict | None = None,
        eval_batch_size: int = 8192,
    ) -> None:
        if len(etas) != len(seeds) or not etas:
            raise ValueError(f"etas and seeds must be non-empty and of equal length, got {len(etas)} and {len(seeds)}")
        if config.separate_batches:
            raise NotStackableError("separate_batches=True cannot be stacked")
        if config.sampler.adaptive:
            raise NotStackableError(f"sampler={config.sampler.name!r} draws each model's batches from its own "
                                    "ratios, so the models cannot share batches")
        self.configs = [config.replace(eta=float(eta), seed=int(seed)) for eta, seed in zip(etas, seeds)]
        self.config = config
        self.adam_kwargs = adam_kwargs
        self.eval_batch_size = eval_batch_size

    def fit(
        self, model: StackedFairModel, train: Split, val: Split | None = None, test: Split | None = None,
        *, group_names: Sequence[str] | None = None,
    ) -> list[TrainResult]:
        """Train the stack in place; one :class:`TrainResult` per model, in order.

        Afterwards model ``i`` of the stack holds the parameters of its
        selected epoch (``model.model_state_dict(i)``). ``group_names`` as
        for :meth:`~fairbinn.core.trainer.Trainer.fit`.
        """
        cfg, k = self.config, len(self.configs)
        if model.num_models != k:
            raise ValueError(f"the stack holds {model.num_models} models but {k} (eta, seed) pairs were given")
        for split in (train, val, test):
            if split is not None and not isinstance(split, Split):
                raise NotStackableError(f"stacked training reads Split objects, got {type(split).__name__}")
        if train.w is not None:
            raise ValueError("stacked training does not use sample weights; train a weighted Split with Trainer.fit")
        check_targets(train.y, train.s, name="training data", min_groups=1 if cfg.strategy == "erm" else 2)
        num_groups = int(train.s.max()) + 1
        groups = _all_groups(group_names, num_groups)
        device = resolve_device(cfg.device)
        model.to(device)
        etas = torch.tensor([c.eta for c in self.configs], device=device)
        strategy = create_strategy(
            model, cfg, cfg.build_constraint(), num_groups, eta=etas, adam_kwargs=self.adam_kwargs
        )
        generators = [torch.Generator().manual_seed(c.seed) for c in self.configs]
        selectors = [epoch_selector(c, val, groups) for c in self.configs]
        histories: list[list[dict[str, float]]] = [[] for _ in range(k)]
        checkpoints = RunCheckpoints(cfg, eta=[c.eta for c in self.configs], seed=[c.seed for c in self.configs],
                                     adam_kwargs=self.adam_kwargs)
        first_epoch = 1
        if cfg.resume:
            state = checkpoints.resume(model, strategy)
            for generator, saved in zip(generators, state["loader"]):
                generator.set_state(saved)
            for selector, saved in zip(selectors, state["selector"]):
                selector.load_state_dict(saved)
            histories, first_epoch = state["history"], state["epoch"] + 1
        x, y, s = (t.to(device) for t in (train.x, train.y, train.s))
        evaluated = {"val": val, "test": test if cfg.record_test else None}

        bar = tqdm(range(first_epoch, cfg.epochs + 1), desc=f"{cfg.strategy} x{k}", disable=not cfg.progress,
                   leave=False)
        for epoch in bar:
            with checkpoints.diverging():
                losses, elapsed = self._train_epoch(strategy, x, y, s, generators, epoch)
            probs = {name: self._probabilities(model, split) for name, split in evaluated.items() if split is not None}
            reports = {name: self._reports(p, evaluated[name], groups) for name, p in probs.items()}
            ordered = self._probabilities(model, train) if cfg.certifies else None
            for i in range(k):
                record = {"epoch": epoch, "train_time_s": elapsed, **{n: float(v[i]) for n, v in losses.items()}}
                for name, per_model in reports.items():
                    record.update({f"{name}_{n}": v for n, v in per_model[i].items()})
                if "test" in probs:
                    record.update(interval_columns(test_intervals(
                        (evaluated["test"].y.numpy(), probs["test"][i], evaluated["test"].s.numpy()), groups,
                        cfg.threshold)))
                if ordered is not None:
                    record.update(certification_record(
                        cfg.budget_metric, cfg.budget_confidence, cfg.threshold,
                        (val.y.numpy(), probs["val"][i], val.s.numpy()) if "val" in probs else None,
                        (train.y.numpy(), ordered[i], train.s.numpy()), _count(groups)))
                histories[i].append(record)
                selectors[i].update(epoch, record, lambda: model.model_state_dict(i))
            checkpoints.save(epoch, model, strategy, loader=[g.get_state() for g in generators], history=histories,
                             selector=[selector.state_dict() for selector in selectors])
        bar.close()

        current = model.state_dict()  # shares storage with the stack's parameters
        for i, selector in enumerate(selectors):
            if selector.best_state is not None and selector.selected_epoch != cfg.epochs:
                for name, value in selector.best_state.items():
                    current[name][i].copy_(value)
        vals = [_metrics_of(h[selector.selected_epoch - 1], "val_") if val is not None else None
                for h, selector in zip(histories, selectors)]
        constants: list[int | None] = [None] * k
        certificates: list[dict | None] = [None] * k
        notes = [None] * k
        if any(selector.budget_met for selector in selectors) or cfg.certifies:
            probs = self._probabilities(model, val)
            constants = [constant_class(p, cfg.threshold) if selector.budget_met else None
                         for p, selector in zip(probs, selectors)]
            notes = [budget_note(*args) for args in zip(selectors, self.configs, constants, vals)]
            if cfg.certifies:
                for i, (selector, config) in enumerate(zip(selectors, self.configs)):
                    certificates[i], needed = certificate_of(selector, config, (val.y.numpy(), probs[i],
                                                                                val.s.numpy()), groups)
                    notes[i] = notes[i] and notes[i] + needed
        else:
            notes = [budget_note(*args) for args in zip(selectors, self.configs, constants, vals)]
        shortfalls = [note for note, selector in zip(notes, selectors) if note and not selector.budget_met]
        if shortfalls:
            warnings.warn(f"{len(shortfalls)} of {k} models met no epoch under the budget:\n" + "\n".join(shortfalls),
                          UserWarning, stacklevel=2)
        one_class = [note for note, selector in zip(notes, selectors) if note and selector.budget_met]
        if one_class:
            warnings.warn(f"{len(one_class)} of {k} models predict one class for every validation row:\n"
                          + "\n".join(one_class), UserWarning, stacklevel=2)
        intervals: list[dict | None] = [None] * k
        if test is None:
            test_reports: list[dict[str, float] | None] = [None] * k
        else:
            test_probs = self._probabilities(model, test)
            intervals = [test_intervals((test.y.numpy(), p, test.s.numpy()), groups, cfg.threshold)
                         for p in test_probs]
            if cfg.record_test:
                test_reports = [_metrics_of(h[selector.selected_epoch - 1], "test_") for h, selector in
                                zip(histories, selectors)]
            else:
                test_reports = self._reports(test_probs, test, groups)
        undefined = {name: undefined_gaps(split.y.numpy(), sensitive_features=split.s.numpy(),
                                          groups=_groups_of(groups, split.s.numpy()))
                     for name, split in (("val", val), ("test", test)) if split is not None}
        return [
            TrainResult(
                config=self.configs[i].to_dict(),
                history=histories[i],
                selected_epoch=selectors[i].selected_epoch,
                val=vals[i],
                test=test_reports[i],
                extra={"stack_size": k},
                budget_met=selectors[i].budget_met,
                undefined={name: reasons for name, reasons in undefined.items() if reasons},
                constant_prediction=constants[i],
                certificate=certificates[i],
                test_intervals=intervals[i],
                selection=selectors[i],
            )
            for i in range(k)
        ]

    def _train_epoch(self, strategy, x, y, s, generators, epoch) -> tuple[dict[str, Tensor], float]:
        strategy.model.train()
        start = time.perf_counter()
        n, batch_size = len(y), self.config.batch_size
        order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(x.device)
        totals: dict[str, Tensor] = {}
        steps = 0
        for begin in range(0, n, batch_size):
            rows = order[:, begin : begin + batch_size]
            for name, value in strategy.step(Batch(x[rows], y[rows], s[rows])).items():
                totals[name] = totals[name] + value if name in totals else value
            steps += 1
        strategy.end_epoch()
        losses = {f"train_{name}": (total / steps).cpu() for name, total in totals.items()}
        for name, values in losses.items():
            bad = [i for i, v in enumerate(values.tolist()) if not math.isfinite(v)]
            if bad:
                models = ", ".join(f"eta={self.configs[i].eta:g} seed={self.configs[i].seed}" for i in bad)
                raise divergence(epoch, f": non-finite {name} for {models}")
        return losses, time.perf_counter() - start

    def _evaluate(self, model: StackedFairModel, split: Split, groups: list[str] | int | None = None
                  ) -> list[dict[str, float]]:
        return self._reports(self._probabilities(model, split), split, groups)

    def _reports(self, probs: np.ndarray, split: Split, groups: list[str] | int | None = None
                 ) -> list[dict[str, float]]:
        """One report per model of probabilities ``probs`` ``(k, n)`` on ``split``."""
        y, s = split.y.numpy(), split.s.numpy()
        groups = _groups_of(groups, s)
        return [
            binary_fairness_report(y, np.ascontiguousarray(p), sensitive_features=s, threshold=self.config.threshold,
                                   groups=groups)
            for p in probs
        ]

    @torch.inference_mode()
    def _probabilities(self, model: StackedFairModel, split: Split) -> np.ndarray:
        """Predicted probabilities of every model of the stack on ``split``, shape ``(k, n)``."""
        model.eval()
        device = next(model.parameters()).device
        scores = []
        for begin in range(0, len(split), self.eval_batch_size):
            chunk = split.x[begin : begin + self.eval_batch_size].to(device)
            logits = model(chunk.unsqueeze(0).expand(model.num_models, -1, -1))
            scores.append(torch.sigmoid(logits.float()).cpu())
        return torch.cat(scores, dim=1).numpy()
