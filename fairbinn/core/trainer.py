"""The training loop shared by every strategy and modality."""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import distributed
from .config import TrainConfig
from .checkpoint import RunCheckpoints, divergence
from .data import Split, TrainingSampler, UniformSampler, as_batch, check_targets, move_to, rows_of
from .certify import equal_rate_counts, gap_counts, gap_interval, gap_upper_bound, rows_needed
from .metrics import GAP_METRICS, REPORT_KEYS, binary_fairness_report, undefined_gaps
from .model import FairModel
from .runtime import resolve_device, seed_everything
from .selection import CertifiedSelector, EpochSelector, certification_record
from .strategies import create_strategy

__all__ = ["Trainer", "TrainResult"]

Loader = Iterable[Any]
"""Anything iterable yielding batches: a Split (wrapped by the trainer), a
:class:`~fairbinn.core.data.TensorLoader`, a ``DataLoader`` of
``(inputs, y, s[, mask])`` tuples, or a list of batches (a full graph).
The configured sampler turns the training data into a
:class:`~fairbinn.core.data.TrainingSampler`."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes
    ----------
    config : dict
        The training configuration, as plain values.
    history : list of dict
        One record per epoch: ``epoch``, ``train_time_s``, ``train_<loss>``
        for each loss the strategy reports (``bce``, and ``fairness`` for
        lagrangian / bilevel) and ``val_<metric>`` for each metric of
        :func:`~fairbinn.core.metrics.binary_fairness_report`.
        With ``config.record_test`` also ``test_<metric>`` (for reporting only).
    selected_epoch : int
        The epoch whose parameters the model holds after training (1-based).
    val, test : dict or None
        Metrics of the selected model on the validation and test splits. A gap
        the split cannot measure is NaN (see ``undefined``).
    budget_met : bool or None
        With ``config.fairness_budget``: whether some epoch's validation gap
        met it (if not, the selected epoch is the one with the smallest gap).
        None without a budget.
    undefined : dict
        ``{"val" | "test": {metric: reason}}`` for the gaps a split cannot
        measure, the reason naming the group (e.g. ``"group 'Female' has no
        positive labels"``; see :func:`~fairbinn.core.metrics.undefined_gaps`).
    constant_prediction : int or None
        With a budget that was met: the class the selected model predicts for
        every validation row when it predicts a single class (a warning says
        so), else None.
    certificate : dict or None
        With a certified budget (``config.confidence``, 0.95 by default with a
        budget): ``{"confidence", "metric", "budget", "upper_bound",
        "certified", "method"}`` of the chosen epoch, and ``"rows_needed"``
        (roughly, per group) when nothing was certified; None otherwise.
    test_intervals : dict or None
        95% intervals on the selected model's test gaps, ``{metric: [lo,
        hi]}`` (exact: Clopper-Pearson per group, Hoeffding for the soft gaps,
        joined by a union bound; NaN where the gap is undefined). None
        without a test split.
    model : FairModel or None
        The trained model, holding the selected epoch's parameters (None for
        the models of a stack, whose parameters are the stack's); not part of
        :meth:`to_dict`.
    """

    config: dict[str, Any]
    history: list[dict[str, float]]
    selected_epoch: int
    val: dict[str, float] | None = None
    test: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    budget_met: bool | None = None
    undefined: dict[str, dict[str, str]] = field(default_factory=dict)
    constant_prediction: int | None = None
    certificate: dict[str, Any] | None = None
    test_intervals: dict[str, list[float]] | None = None
    model: Any = field(default=None, repr=False, compare=False)
    selection: Any = field(default=None, repr=False, compare=False)

    def history_frame(self) -> pd.DataFrame:
        """The history as a DataFrame indexed by epoch."""
        return pd.DataFrame(self.history).set_index("epoch")

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "selected_epoch": self.selected_epoch,
            "budget_met": self.budget_met,
            "val": self.val,
            "test": self.test,
            "undefined": self.undefined,
            "certificate": self.certificate,
            "test_intervals": self.test_intervals,
            "history": self.history,
            **self.extra,
        }


class Trainer:
    """Trains a :class:`FairModel` with the strategy a :class:`TrainConfig` names.

    Parameters
    ----------
    config : TrainConfig, optional
        Defaults to ``TrainConfig()`` (bilevel, eta 100, 50 epochs).
    **overrides
        Fields of :class:`TrainConfig` to change, e.g. ``Trainer(strategy="erm", epochs=5)``.

    Example
    -------
    >>> trainer = Trainer(strategy="bilevel", eta=100, epochs=50)
    >>> result = trainer.fit(model, data.train, data.val, data.test)
    >>> result.test["accuracy"], result.test["dp"]
    """

    def __init__(self, config: TrainConfig | None = None, **overrides: Any) -> None:
        config = config or TrainConfig()
        self.config = config.replace(**overrides) if overrides else config

    def _loader(self, data: Split | Loader | None, shuffle: bool) -> Loader | None:
        if isinstance(data, Split):
            return data.loader(self.config.batch_size, shuffle=shuffle, seed=self.config.seed)
        return data

    def _num_groups(self, train: TrainingSampler) -> int | None:
        """Check the training targets (when the sampler knows them) and count the groups.

        Fairness training needs two groups or more; ERM accepts one.
        """
        targets = train.targets()
        if targets is None:
            return None
        y, s = targets
        check_targets(y, s, name="training data", min_groups=1 if self.config.strategy == "erm" else 2)
        return int(s.max()) + 1

    def fit(
        self,
        model: FairModel,
        train: Split | Loader,
        val: Split | Loader | None = None,
        test: Split | Loader | None = None,
        *,
        generated: Any = None,
        group_names: Sequence[str] | None = None,
    ) -> TrainResult:
        """Train ``model`` in place and evaluate the selected epoch.

        ``train``, ``val`` and ``test`` are :class:`Split` objects (batched with
        ``config.batch_size``; training batches shuffled with ``config.seed``)
        or any iterables of batches. The training targets are checked before
        the first step (binary labels, at least two groups) when the loader
        exposes ``targets()``, as :class:`Split` and :class:`TensorLoader` do.
        After training, the model holds the parameters of the epoch chosen by
        ``config.selection_metric`` on ``val`` (the last epoch without ``val``).

        The training batches come from ``config.sampler``. With
        ``"drfairness"`` (or a :class:`~fairbinn.core.drfairness.DrFairnessConfig`)
        they come from a :class:`~fairbinn.core.drfairness.DrFairnessSampler` over ``train``
        (a Split, a full graph, or a loader's dataset), ``val`` and
        ``generated`` (optional examples of the same kind as ``train``, marked
        as generated); its ratios join the history as ``ratio_y<label>_g<group>``
        (and ``real_fraction_y<label>``) columns.

        ``group_names`` (the dataset's, indexed by the group values) name the
        groups in the reasons of ``result.undefined`` and make a group without
        a row in a split leave that split's gaps undefined (NaN); without
        them the groups are those of the training data, named by index. A
        ``config.fairness_budget`` whose gap the validation data cannot
        measure is an error before training. A budget met by predicting one
        class for every validation row is met, with a warning.

        Under ``torchrun`` (an initialised process group with several
        processes, see :mod:`fairbinn.core.distributed`) each process trains
        on its share of every global batch of ``config.batch_size`` rows, the
        losses use statistics of the whole global batch and gradients are
        averaged, so the parameters equal a single-process run's. Every
        process evaluates the whole ``val`` / ``test`` data (same results
        everywhere); only rank 0 writes checkpoints.
        """
        cfg = self.config
        device = distributed.local_device(resolve_device(cfg.device))
        parallel = distributed.is_distributed()
        sampler = cfg.sampler.build(train, val, generated, batch_size=cfg.batch_size, seed=cfg.seed)
        if cfg.separate_batches and not isinstance(sampler, UniformSampler):  # e.g. a DrFairnessSampler
            raise ValueError(f"separate_batches cannot be combined with {type(sampler).__name__}: "
                             "a second stream of batches would step its ratios twice")
        if parallel:
            sampler = distributed.ShardedLoader(sampler, distributed.rank(), distributed.world_size())
        val_loader, test_loader = self._loader(val, False), self._loader(test, False)
        num_groups = self._num_groups(sampler)
        groups = _all_groups(group_names, num_groups)
        seed_everything(cfg.seed)
        model.to(device)
        sampler.bind(model)
        strategy = create_strategy(model, cfg, cfg.build_constraint(), num_groups)
        selector = epoch_selector(cfg, val_loader, groups)
        history: list[dict[str, float]] = []
        checkpoints, first_epoch = RunCheckpoints(cfg), 1
        if cfg.resume:
            state = checkpoints.resume(model, strategy)
            if state["loader"] is not None:
                sampler.load_state_dict(state["loader"])
            selector.load_state_dict(state["selector"])
            history, first_epoch = state["history"], state["epoch"] + 1
        if parallel:
            strategy.data_parallel(**({"device_ids": [device.index]} if device.type == "cuda" else {}))

        bar = tqdm(
            range(first_epoch, cfg.epochs + 1),
            desc=cfg.strategy if cfg.strategy == "erm" else f"{cfg.strategy} eta={cfg.eta:g}",
            disable=not cfg.progress or not distributed.is_main_process(),
            leave=False,
        )
        undefined: dict[str, dict[str, str]] = {}
        order_loader = self._loader(train, False) if cfg.certifies else None  # the training rows, in order
        for epoch in bar:
            with checkpoints.diverging(), distributed.exact_statistics():
                losses = self._train_epoch(strategy, sampler, device, epoch)
            record = {"epoch": epoch, **losses, **sampler.epoch_record()}
            predicted = {}
            for prefix, loader in (("val", val_loader), ("test", test_loader if cfg.record_test else None)):
                if loader is not None:
                    predicted[prefix] = self.predict(model, loader)
                    metrics, undefined[prefix] = self._report(predicted[prefix], groups)
                    record.update({f"{prefix}_{k}": v for k, v in metrics.items()})
                    if prefix == "test":
                        record.update(interval_columns(test_intervals(predicted[prefix], groups, cfg.threshold)))
            if order_loader is not None:
                record.update(certification_record(cfg.budget_metric, cfg.budget_confidence, cfg.threshold,
                                                   predicted.get("val"), self.predict(model, order_loader),
                                                   _count(groups)))
            history.append(record)
            selector.update(epoch, record, lambda: copy.deepcopy(model.state_dict()))
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k in _SHOWN})
            checkpoints.save(epoch, model, strategy, loader=sampler.state_dict(), history=history,
                             selector=selector.state_dict())
        bar.close()
        if checkpoints.finished:  # a finished run, resumed: no epoch ran to find the gaps the splits cannot measure
            for prefix, loader in (("val", val_loader), ("test", test_loader if cfg.record_test else None)):
                if loader is not None:
                    undefined[prefix] = self._assess(model, loader, groups)[1]

        selected_epoch = selector.selected_epoch
        if selector.best_state is not None and selected_epoch != cfg.epochs:
            model.load_state_dict(selector.best_state)
        selected = history[selected_epoch - 1]
        val_metrics = _metrics_of(selected, "val_") if val_loader is not None else None
        constant, certificate = None, None
        chosen_val = self.predict(model, val_loader) if selector.budget_met or cfg.certifies else None
        if selector.budget_met:
            constant = constant_class(chosen_val[1], cfg.threshold)
        note = budget_note(selector, cfg, constant, val_metrics)
        if cfg.certifies:
            certificate, needed = certificate_of(selector, cfg, chosen_val, groups)
            note = note and note + needed
        if note:
            warnings.warn(note, UserWarning, stacklevel=2)
        test_metrics, intervals = None, None
        if test_loader is not None:
            chosen_test = self.predict(model, test_loader)
            if cfg.record_test:
                test_metrics = _metrics_of(selected, "test_")
            else:
                test_metrics, undefined["test"] = self._report(chosen_test, groups)
            intervals = test_intervals(chosen_test, groups, cfg.threshold)
        return TrainResult(
            config=cfg.to_dict(),
            history=history,
            selected_epoch=selected_epoch,
            val=val_metrics,
            test=test_metrics,
            budget_met=selector.budget_met,
            undefined={split: reasons for split, reasons in undefined.items() if reasons},
            constant_prediction=constant,
            certificate=certificate,
            test_intervals=intervals,
            model=model,
            selection=selector,
        )

    def _train_epoch(self, strategy, loader: Loader, device: torch.device, epoch: int) -> dict[str, float]:
        strategy.model.train()
        start = time.perf_counter()
        follower_batches = iter(loader) if strategy.uses_follower_batches else None
        per_step: dict[str, list[torch.Tensor]] = {}
        steps = 0
        for item in loader:
            batch = move_to(as_batch(item), device)
            follower_batch = None
            if follower_batches is not None:
                follower_batch = move_to(as_batch(next(follower_batches)), device)
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
        return {"train_time_s": elapsed, **losses}

    @torch.inference_mode()
    def predict(self, model: FairModel, loader: Split | Loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels, predicted probabilities and groups of the (masked) examples, as numpy arrays."""
        loader = self._loader(loader, shuffle=False)
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

    def evaluate(self, model: FairModel, loader: Split | Loader,
                 group_names: Sequence[str] | None = None) -> dict[str, float]:
        """:func:`~fairbinn.core.metrics.binary_fairness_report` of ``model`` on ``loader``.

        With ``group_names`` (the dataset's), a group without a row in
        ``loader`` leaves the gaps NaN; without them the groups are those present.
        """
        return self._assess(model, loader, None if group_names is None else list(group_names))[0]

    def _assess(self, model: FairModel, loader: Split | Loader,
                groups: list[str] | int | None = None) -> tuple[dict[str, float], dict[str, str]]:
        """The report of ``model`` on ``loader`` and the gaps it cannot measure, with why."""
        return self._report(self.predict(model, loader), groups)

    def _report(self, predicted: tuple[np.ndarray, np.ndarray, np.ndarray],
                groups: list[str] | int | None = None) -> tuple[dict[str, float], dict[str, str]]:
        """The report of predictions ``(y, scores, s)`` and the gaps they cannot measure, with why."""
        y, scores, s = predicted
        groups = _groups_of(groups, s)
        report = binary_fairness_report(y, scores, sensitive_features=s, threshold=self.config.threshold,
                                        groups=groups)
        return report, undefined_gaps(y, sensitive_features=s, groups=groups)


_SHOWN = ("train_bce", "train_fairness", "val_accuracy", "val_dp")


def _all_groups(group_names: Sequence[str] | None, num_groups: int | None) -> list[str] | int | None:
    """Every group of a run: the dataset's names, else the number of groups in the training data (or None)."""
    if group_names is None:
        return num_groups
    names = [str(name) for name in group_names]
    if num_groups is not None and num_groups > len(names):
        raise ValueError(f"the training data holds group index {num_groups - 1}, but group_names names "
                         f"{len(names)} groups: {names}")
    return names


def _groups_of(groups: list[str] | int | None, s: np.ndarray) -> list[str] | int | None:
    """``groups`` for the metrics of data with group indices ``s``: a count grows to cover every index in ``s``."""
    if isinstance(groups, int) and s.size and np.issubdtype(s.dtype, np.integer):
        return max(groups, int(s.max()) + 1)
    return groups


def epoch_selector(config: TrainConfig, val: Any, groups: list[str] | int | None = None) -> EpochSelector:
    """The :class:`EpochSelector` of a run with ``config`` and validation data ``val`` (None: the last epoch).

    A budget the validation data cannot measure (a group without the rows its
    gap conditions on, a group of ``groups`` without any row, a single group)
    is an error here, before training, naming the group.
    """
    if val is None:
        if config.fairness_budget is not None:
            raise ValueError("fairness_budget chooses epochs on validation data; pass a validation split")
        return EpochSelector(None)
    if config.fairness_budget is not None:
        targets = _targets_of(val)
        if targets is not None:
            y, s = (t.detach().cpu().numpy() for t in targets)
            reason = undefined_gaps(y, sensitive_features=s, groups=_groups_of(groups, s)).get(config.budget_metric)
            if reason:
                raise ValueError(f"the validation data cannot measure the budget metric "
                                 f"{config.budget_metric!r}: {reason}")
            if config.certifies:
                warning = uncertifiable(config, y, s, _groups_of(groups, s))
                if warning:
                    warnings.warn(warning, UserWarning, stacklevel=3)
    if config.certifies:
        return CertifiedSelector(config.selection_metric, budget=config.fairness_budget,
                                 budget_metric=config.budget_metric, confidence=config.budget_confidence,
                                 tiebreak=(config.eta, config.seed))
    return EpochSelector(config.selection_metric, budget=config.fairness_budget, budget_metric=config.budget_metric)


def _count(groups: list[str] | int | None) -> int | None:
    """The number of groups of :func:`_all_groups`' answer."""
    return len(groups) if isinstance(groups, list) else groups


def _group_name(groups: list[str] | int | None, index: int) -> str:
    return repr(groups[index]) if isinstance(groups, list) and index < len(groups) else str(index)


def uncertifiable(config: TrainConfig, y: np.ndarray, s: np.ndarray, groups: list[str] | int | None) -> str | None:
    """A warning when validation rows this few could not certify ``config``'s budget even for a model whose
    rates are the same in every group, at the share of positive labels (a model predicting one class may still
    be certified): names the smallest group, its rows and roughly the rows per group needed. None when such a
    model could be certified."""
    metric, budget, confidence = config.budget_metric, config.fairness_budget, config.budget_confidence
    every = range(max(_count(groups) or 0, int(s.max()) + 1))
    equal = equal_rate_counts(metric, y, s, all_groups=every)
    share = float(np.mean(y))
    bound = gap_upper_bound(metric, equal, confidence).upper
    if not bound > budget:
        return None
    smallest = np.unravel_index(np.argmin(equal.rows), equal.rows.shape)
    rows = int(equal.rows[smallest])
    kind = {"dp": "rows", "soft_dp": "rows", "eopp": "positive rows", "eo": "rows of that label",
            "soft_eo": "rows of that label"}[metric]
    needed = rows_needed(metric, equal, budget, confidence)
    return (f"the validation rows cannot certify the {metric} budget {budget:g} at {confidence:.0%} confidence "
            f"for a model that predicts both classes: even one with the same rate in every group (the validation "
            f"share of positive labels, {share:.2f}) would have an upper bound of {bound:.4f}; group "
            f"{_group_name(groups, int(equal.groups[smallest[1]]))} has {rows} {kind}, and roughly "
            f"{needed:.0f} per group would be needed (or set confidence=0 for the point-estimate rule)")


def certificate_of(selector: CertifiedSelector, config: TrainConfig,
                   val: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
                   groups: list[str] | int | None) -> tuple[dict[str, Any], str]:
    """The chosen model's certificate (with ``rows_needed`` when it is not certified, from its validation
    predictions ``val``) and the words to add to the warning that nothing was certified."""
    certificate = selector.certificate()
    if certificate["certified"] or val is None:
        return certificate, ""
    y, scores, s = val
    metric = config.budget_metric
    values = scores if metric.startswith("soft_") else (scores >= config.threshold).astype(np.int64)
    every = range(max(_count(groups) or 0, int(s.max()) + 1))
    needed = rows_needed(metric, gap_counts(y, values, s, metric, all_groups=every), config.fairness_budget,
                         config.budget_confidence)
    certificate["rows_needed"] = needed
    if math.isinf(needed):
        return certificate, (f"; its validation {metric} already reaches the budget, so more validation rows "
                             "would not certify it")
    return certificate, f"; roughly {needed:.0f} validation rows per group would certify a model like it"


def interval_columns(intervals: dict[str, list[float]] | None, prefix: str = "test") -> dict[str, float]:
    """``{"<prefix>_<gap>_lo": lo, "<prefix>_<gap>_hi": hi}`` of :func:`test_intervals`' answer."""
    return {f"{prefix}_{metric}_{end}": value for metric, ends in (intervals or {}).items()
            for end, value in zip(("lo", "hi"), ends)}


def test_intervals(predicted: tuple[np.ndarray, np.ndarray, np.ndarray], groups: list[str] | int | None,
                   threshold: float, confidence: float = 0.95) -> dict[str, list[float]]:
    """Exact ``confidence`` intervals ``{metric: [lo, hi]}`` on every gap of predictions ``(y, scores, s)``
    (NaN where the gap is undefined)."""
    y, scores, s = predicted
    every = range(max(_count(groups) or 0, int(s.max()) + 1))
    hard = (scores >= threshold).astype(np.int64)
    intervals = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an undefined gap: NaN, its reason is in `undefined`
        for metric in GAP_METRICS:
            values = scores if metric.startswith("soft_") else hard
            intervals[metric] = list(gap_interval(metric, y, np.clip(values, 0, 1), sensitive_features=s,
                                                  confidence=confidence, all_groups=every))
    return intervals


def _targets_of(loader: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Labels and groups of the examples a loader evaluates, when known without running a model."""
    source = rows_of(loader)
    if hasattr(source, "targets"):
        return source.targets()
    if isinstance(source, (list, tuple)):  # batches given as a list, e.g. a full graph
        batches = [as_batch(item) for item in source]
        pairs = [batch.selected(batch.y)[1:] for batch in batches]
        return torch.cat([y for y, _ in pairs]), torch.cat([s for _, s in pairs])
    return None


def _run_label(config: TrainConfig) -> str:
    return f"erm seed={config.seed}" if config.strategy == "erm" else \
        f"{config.strategy} eta={config.eta:g} seed={config.seed}"


def budget_shortfall(selector: EpochSelector, config: TrainConfig) -> str | None:
    """Why no epoch met ``config``'s fairness budget (the gap reached) and what may help; None if one did."""
    shortfall = selector.shortfall()
    if shortfall is None:
        return None
    if config.strategy == "erm":
        return (f"{_run_label(config)}: {shortfall}; ERM has no fairness term; "
                "train lagrangian or bilevel to meet a budget")
    return f"{_run_label(config)}: {shortfall}; a larger eta than {config.eta:g} may meet it"


def constant_class(scores: np.ndarray, threshold: float) -> int | None:
    """The class predicted (``scores >= threshold``) for every row, or None when both classes are."""
    predicted = np.unique(np.asarray(scores) >= threshold)
    return int(predicted[0]) if predicted.size == 1 else None


def one_class_budget(label: str, metric: str, budget: float, predicted: int, accuracy: float) -> str:
    """The warning for a budget met by a model that predicts class ``predicted`` for every validation row."""
    how = "while predicting" if metric.startswith("soft_") else "by predicting"  # a hard gap of one class is 0
    return (f"{label}: the chosen checkpoint meets the {metric} budget {budget:g} {how} one class ({predicted}) "
            f"for every validation row (validation accuracy {accuracy:.3f})")


def budget_note(selector: EpochSelector, config: TrainConfig, predicted: int | None,
                val: dict[str, float] | None) -> str | None:
    """The warning a run's budget result deserves: why no epoch met it (:func:`budget_shortfall`), or that the
    selected model met it predicting class ``predicted`` for every validation row; None otherwise."""
    shortfall = budget_shortfall(selector, config)
    if shortfall is not None or predicted is None or not selector.budget_met:
        return shortfall
    return one_class_budget(_run_label(config), config.budget_metric, config.fairness_budget, predicted,
                            val["accuracy"])


def _metrics_of(record: dict[str, float], prefix: str) -> dict[str, float]:
    """The report metrics (:data:`~fairbinn.core.metrics.REPORT_KEYS`) of one history record's split ``prefix``."""
    return {k[len(prefix):]: v for k, v in record.items() if k.startswith(prefix) and k[len(prefix):] in REPORT_KEYS}
