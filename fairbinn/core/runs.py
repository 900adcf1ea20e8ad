"""What the training loop trains: one model, or a stack of models that differ only in eta and seed.

:meth:`fairbinn.core.trainer.Trainer.fit` runs one loop (epochs, evaluation,
certification records, selection, checkpoints, resume, divergence checks)
over the *members* of a run: a :class:`SingleRun` has one, a model trained
on its sampler's batches; a :class:`StackRun` has ``k``, the models of a
:class:`~fairbinn.core.stacked.StackedFairModel` stepped together on
minibatches of a :class:`~fairbinn.core.data.Split`, each with its own eta,
seed (its own shuffling order) and selection. A run knows how to train one
epoch, predict on a split, copy and restore one member's parameters, and
what of it goes into a checkpoint.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from . import distributed
from .checkpoint import RunCheckpoints, divergence
from .config import TrainConfig
from .data import Batch, Split, UniformSampler, as_batch, check_targets, move_to
from .runtime import seed_everything
from .stacked import NotStackableError, StackedFairModel
from .strategies import create_strategy

__all__ = ["SingleRun", "StackRun"]

Predicted = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Labels, predicted probabilities and groups of the examples a loader evaluates, each ``(n,)``."""


@torch.inference_mode()
def predict(model: Any, loader: Iterable[Any]) -> Predicted:
    """``(y, probabilities, s)`` of one model on the (masked) examples of ``loader``'s batches."""
    device = next(model.parameters()).device
    model.eval()
    ys, scores, groups = [], [], []
    for item in loader:
        batch = move_to(as_batch(item), device)
        logits, y, s = batch.selected(model(batch.inputs))
        scores.append(torch.sigmoid(logits.float()).cpu())
        ys.append(y.cpu())
        groups.append(s.cpu())
    return torch.cat(ys).numpy(), torch.cat(scores).numpy(), torch.cat(groups).numpy()


class SingleRun:
    """One model, trained on the batches of ``config.sampler`` (any modality, under ``torchrun`` too)."""

    def __init__(self, model: Any, config: TrainConfig, train: Any, val: Any, generated: Any,
                 loader: Any) -> None:
        self.model, self.config, self.configs = model, config, [config]
        sampler = config.sampler.build(train, val, generated, batch_size=config.batch_size, seed=config.seed)
        if config.separate_batches and not isinstance(sampler, UniformSampler):  # e.g. a DrFairnessSampler
            raise ValueError(f"separate_batches cannot be combined with {type(sampler).__name__}: "
                             "a second stream of batches would step its ratios twice")
        self.parallel = distributed.is_distributed()
        if self.parallel:
            sampler = distributed.ShardedLoader(sampler, distributed.rank(), distributed.world_size())
        self.sampler = sampler
        self.order_rows = loader(train, False) if config.certifies else None  # the training rows, in order
        self.label = config.strategy if config.strategy == "erm" else f"{config.strategy} eta={config.eta:g}"
        self.shows_progress = distributed.is_main_process()

    def targets(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.sampler.targets()

    def start(self, device: torch.device, num_groups: int | None) -> RunCheckpoints:
        seed_everything(self.config.seed)
        self.model.to(device)
        self.sampler.bind(self.model)
        self.strategy = create_strategy(self.model, self.config, self.config.build_constraint(), num_groups)
        self.device = device
        return RunCheckpoints(self.config)

    def after_resume(self, device: torch.device) -> None:
        if self.parallel:
            self.strategy.data_parallel(**({"device_ids": [device.index]} if device.type == "cuda" else {}))

    def loader_state(self) -> Any:
        return self.sampler.state_dict()

    def load_loader_state(self, state: Any) -> None:
        if state is not None:
            self.sampler.load_state_dict(state)

    @staticmethod
    def pack(per_member: list) -> Any:
        """One member's entry of a checkpoint, as single-model checkpoints hold it."""
        return per_member[0]

    @staticmethod
    def unpack(saved: Any) -> list:
        return [saved]

    def train_epoch(self, epoch: int) -> list[dict[str, float]]:
        strategy, loader = self.strategy, self.sampler
        strategy.model.train()
        start = time.perf_counter()
        follower_batches = iter(loader) if strategy.uses_follower_batches else None
        per_step: dict[str, list[torch.Tensor]] = {}
        steps = 0
        for item in loader:
            batch = move_to(as_batch(item), self.device)
            follower_batch = None
            if follower_batches is not None:
                follower_batch = move_to(as_batch(next(follower_batches)), self.device)
            for name, value in strategy.step(batch, follower_batch).items():
                per_step.setdefault(name, []).append(value)
            steps += 1
        strategy.end_epoch()
        if steps == 0:
            raise ValueError("the training loader yielded no batches")
        losses = {f"train_{name}": float(sum(values)) / steps for name, values in per_step.items()}
        elapsed = time.perf_counter() - start
        bad = [name for name, value in losses.items() if not math.isfinite(value)]
        if bad:  # the first step where any entry stopped being finite (a NaN update shows in the next step's loss)
            steps_bad = {k: (~torch.stack(per_step[k[len("train_"):]]).isfinite()).reshape(steps, -1).any(1)
                         for k in bad}
            first = min(int(flags.nonzero()[0, 0]) for flags in steps_bad.values())
            names = [k for k in bad if steps_bad[k][first]]
            raise divergence(epoch, f", step {first + 1} of {steps}: non-finite {', '.join(names)} "
                                    f"({', '.join(f'{k}={losses[k]}' for k in bad)})")
        return [{"train_time_s": elapsed, **losses, **self.sampler.epoch_record()}]

    def predict(self, loader: Any) -> list[Predicted]:
        return [predict(self.model, loader)]

    def state(self, index: int) -> Any:
        return copy.deepcopy(self.model.state_dict())

    def restore(self, index: int, state: Any) -> None:
        self.model.load_state_dict(state)

    def result_model(self, index: int) -> Any:
        return self.model

    def extra(self) -> dict[str, Any]:
        return {}


class StackRun:
    """``k`` models of a :class:`~fairbinn.core.stacked.StackedFairModel`, model ``i`` with ``etas[i]`` and
    ``seeds[i]`` (its own shuffling of the training rows, as a single run with that seed draws them), stepped
    together on in-memory :class:`~fairbinn.core.data.Split` data."""

    def __init__(self, model: StackedFairModel, config: TrainConfig, train: Any, val: Any, test: Any,
                 etas: Sequence[float], seeds: Sequence[int], adam_kwargs: dict | None,
                 eval_batch_size: int = 8192) -> None:
        if len(etas) != len(seeds) or not len(etas):
            raise ValueError(f"etas and seeds must be non-empty and of equal length, got {len(etas)} and {len(seeds)}")
        if config.separate_batches:
            raise NotStackableError("separate_batches=True cannot be stacked")
        if config.sampler.adaptive:
            raise NotStackableError(f"sampler={config.sampler.name!r} draws each model's batches from its own "
                                    "ratios, so the models cannot share batches")
        if model.num_models != len(etas):
            raise ValueError(f"the stack holds {model.num_models} models but {len(etas)} (eta, seed) pairs were given")
        for split in (train, val, test):
            if split is not None and not isinstance(split, Split):
                raise NotStackableError(f"stacked training reads Split objects, got {type(split).__name__}")
        if train.w is not None:
            raise ValueError("stacked training does not use sample weights; train a weighted Split with one model")
        self.model, self.config, self.train = model, config, train
        self.configs = [config.replace(eta=float(eta), seed=int(seed)) for eta, seed in zip(etas, seeds)]
        self.adam_kwargs, self.eval_batch_size = adam_kwargs, eval_batch_size
        self.order_rows = train if config.certifies else None
        self.label = f"{config.strategy} x{len(etas)}"
        self.shows_progress = True

    def targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.train.y, self.train.s

    def start(self, device: torch.device, num_groups: int | None) -> RunCheckpoints:
        self.model.to(device)
        etas = torch.tensor([c.eta for c in self.configs], device=device)
        self.strategy = create_strategy(self.model, self.config, self.config.build_constraint(), num_groups,
                                        eta=etas, adam_kwargs=self.adam_kwargs)
        self.generators = [torch.Generator().manual_seed(c.seed) for c in self.configs]
        self.rows = tuple(t.to(device) for t in (self.train.x, self.train.y, self.train.s))
        return RunCheckpoints(self.config, eta=[c.eta for c in self.configs], seed=[c.seed for c in self.configs],
                              adam_kwargs=self.adam_kwargs)

    def after_resume(self, device: torch.device) -> None:
        pass

    def loader_state(self) -> Any:
        return [g.get_state() for g in self.generators]

    def load_loader_state(self, state: Any) -> None:
        for generator, saved in zip(self.generators, state):
            generator.set_state(saved)

    @staticmethod
    def pack(per_member: list) -> Any:
        return per_member

    @staticmethod
    def unpack(saved: Any) -> list:
        return list(saved)

    def train_epoch(self, epoch: int) -> list[dict[str, float]]:
        strategy, (x, y, s) = self.strategy, self.rows
        strategy.model.train()
        start = time.perf_counter()
        n, batch_size = len(y), self.config.batch_size
        order = torch.stack([torch.randperm(n, generator=g) for g in self.generators]).to(x.device)
        totals: dict[str, torch.Tensor] = {}
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
        elapsed = time.perf_counter() - start
        return [{"train_time_s": elapsed, **{name: float(values[i]) for name, values in losses.items()}}
                for i in range(len(self.configs))]

    @torch.inference_mode()
    def predict(self, split: Split) -> list[Predicted]:
        """Every model's ``(y, probabilities, s)`` on ``split``."""
        model = self.model
        model.eval()
        device = next(model.parameters()).device
        scores = []
        for begin in range(0, len(split), self.eval_batch_size):
            chunk = split.x[begin : begin + self.eval_batch_size].to(device)
            logits = model(chunk.unsqueeze(0).expand(model.num_models, -1, -1))
            scores.append(torch.sigmoid(logits.float()).cpu())
        probabilities = torch.cat(scores, dim=1).numpy()
        y, s = split.y.numpy(), split.s.numpy()
        return [(y, np.ascontiguousarray(p), s) for p in probabilities]

    def state(self, index: int) -> Any:
        return self.model.model_state_dict(index)

    def restore(self, index: int, state: Any) -> None:
        current = self.model.state_dict()  # shares storage with the stack's parameters
        for name, value in state.items():
            current[name][index].copy_(value)

    def result_model(self, index: int) -> Any:
        return None  # the stack holds the parameters: model_state_dict(index)

    def extra(self) -> dict[str, Any]:
        return {"stack_size": len(self.configs)}


def check_run_targets(run: Any, strategy: str) -> int | None:
    """Check the training targets (when the run knows them) and count the groups: fairness training needs two
    groups or more, ERM accepts one."""
    targets = run.targets()
    if targets is None:
        return None
    y, s = targets
    check_targets(y, s, name="training data", min_groups=1 if strategy == "erm" else 2)
    return int(s.max()) + 1
