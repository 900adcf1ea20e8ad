"""The training loop shared by every strategy and modality."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import distributed
from .config import TrainConfig
from .data import Split, as_batch, rows_of
from .certify import equal_rate_counts, gap_counts, gap_interval, gap_upper_bound, rows_needed
from .metrics import GAP_METRICS, REPORT_KEYS, binary_fairness_report, undefined_gaps
from .model import FairModel
from .runtime import resolve_device
from .selection import CertifiedSelector, EpochSelector, certification_record
from .runs import SingleRun, StackRun, check_run_targets, predict
from .stacked import StackedFairModel

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

    def fit(
        self,
        model: FairModel,
        train: Split | Loader,
        val: Split | Loader | None = None,
        test: Split | Loader | None = None,
        *,
        etas: Sequence[float] | None = None,
        seeds: Sequence[int] | None = None,
        adam_kwargs: dict | None = None,
        generated: Any = None,
        group_names: Sequence[str] | None = None,
    ) -> TrainResult | list[TrainResult]:
        """Train ``model`` in place and evaluate the selected epoch; a stack of models at once.

        ``train``, ``val`` and ``test`` are :class:`Split` objects (batched with
        ``config.batch_size``; training batches shuffled with ``config.seed``)
        or any iterables of batches. The training targets are checked before
        the first step (binary labels, at least two groups) when the loader
        exposes ``targets()``, as :class:`Split` and :class:`TensorLoader` do.
        After training, the model holds the parameters of the epoch chosen by
        ``config.selection_metric`` on ``val`` (the last epoch without ``val``).

        A :class:`~fairbinn.core.stacked.StackedFairModel` of ``k`` models
        (:func:`~fairbinn.core.stacked.stack_models`) is trained as ``k``
        models that differ only in eta and seed, in one pass per minibatch:
        model ``i`` with ``config.replace(eta=etas[i], seed=seeds[i])``
        (default: ``config``'s for every model), shuffling the training rows
        with its seed as a single run does, so its results equal a single
        run's up to floating-point rounding (initialise model ``i`` after
        ``seed_everything(seeds[i])``). The data must be :class:`Split`
        objects; ``adam_kwargs`` (e.g. ``{"fused": True}``, faster on a large
        stack and rounding differently) go to its Adam optimisers. It returns
        one :class:`TrainResult` per model, in order; model ``i`` of the stack
        then holds its selected epoch's parameters
        (``model.model_state_dict(i)``).

        The training batches of a single model come from ``config.sampler``. With
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
        stacked = isinstance(model, StackedFairModel)
        if stacked:
            k = model.num_models
            run = StackRun(model, cfg, train, val, test, [cfg.eta] * k if etas is None else etas,
                           [cfg.seed] * k if seeds is None else seeds, adam_kwargs)
            val_loader, test_loader = val, test
            device = resolve_device(cfg.device)
        else:
            if etas is not None or seeds is not None or adam_kwargs is not None:
                raise ValueError("etas, seeds and adam_kwargs are for a stack of models (stack_models); a single "
                                 "model takes its eta and seed from the configuration")
            device = distributed.local_device(resolve_device(cfg.device))
            run = SingleRun(model, cfg, train, val, generated, self._loader)
            val_loader, test_loader = self._loader(val, False), self._loader(test, False)
        results = self._loop(run, val_loader, test_loader, device, group_names)
        return results if stacked else results[0]

    def _loop(self, run: SingleRun | StackRun, val: Any, test: Any, device: torch.device,
              group_names: Sequence[str] | None) -> list[TrainResult]:
        """The training loop over a run's members: train, evaluate, record, select and checkpoint each epoch."""
        cfg, configs = self.config, run.configs
        num_groups = check_run_targets(run, cfg.strategy)
        groups = _all_groups(group_names, num_groups)
        checkpoints = run.start(device, num_groups)
        selectors = [epoch_selector(c, val, groups) for c in configs]
        histories: list[list[dict[str, float]]] = [[] for _ in configs]
        first_epoch = 1
        if cfg.resume:
            state = checkpoints.resume(run.model, run.strategy)
            run.load_loader_state(state["loader"])
            for selector, saved in zip(selectors, run.unpack(state["selector"])):
                selector.load_state_dict(saved)
            histories, first_epoch = run.unpack(state["history"]), state["epoch"] + 1
        run.after_resume(device)
        bar = tqdm(range(first_epoch, cfg.epochs + 1), desc=run.label,
                   disable=not cfg.progress or not run.shows_progress, leave=False)
        undefined: dict[str, dict[str, str]] = {}
        evaluated = (("val", val), ("test", test if cfg.record_test else None))
        for epoch in bar:
            with checkpoints.diverging(), distributed.exact_statistics():
                losses = run.train_epoch(epoch)
            predicted = {prefix: run.predict(loader) for prefix, loader in evaluated if loader is not None}
            ordered = run.predict(run.order_rows) if run.order_rows is not None else None
            for i, config in enumerate(configs):
                record = {"epoch": epoch, **losses[i]}
                for prefix, per_member in predicted.items():
                    metrics, undefined[prefix] = self._report(per_member[i], groups)
                    record.update({f"{prefix}_{k}": v for k, v in metrics.items()})
                    if prefix == "test":
                        record.update(interval_columns(test_intervals(per_member[i], groups, cfg.threshold)))
                if ordered is not None:
                    record.update(certification_record(cfg.budget_metric, cfg.budget_confidence, cfg.threshold,
                                                       predicted["val"][i] if "val" in predicted else None,
                                                       ordered[i], _count(groups)))
                histories[i].append(record)
                selectors[i].update(epoch, record, lambda i=i: run.state(i))
            if len(configs) == 1:
                bar.set_postfix({k: f"{v:.4f}" for k, v in histories[0][-1].items() if k in _SHOWN})
            checkpoints.save(epoch, run.model, run.strategy, loader=run.loader_state(), history=run.pack(histories),
                             selector=run.pack([selector.state_dict() for selector in selectors]))
        bar.close()
        if checkpoints.finished:  # a finished run, resumed: no epoch ran to find the gaps the splits cannot measure
            for prefix, loader in evaluated:
                if loader is not None:
                    undefined[prefix] = self._report(run.predict(loader)[0], groups)[1]

        for i, selector in enumerate(selectors):
            if selector.best_state is not None and selector.selected_epoch != cfg.epochs:
                run.restore(i, selector.best_state)
        vals = [_metrics_of(h[selector.selected_epoch - 1], "val_") if val is not None else None
                for h, selector in zip(histories, selectors)]
        constants: list[int | None] = [None] * len(configs)
        certificates: list[dict | None] = [None] * len(configs)
        chosen_val = run.predict(val) if any(s.budget_met for s in selectors) or cfg.certifies else None
        notes = []
        for i, (selector, config) in enumerate(zip(selectors, configs)):
            if selector.budget_met:
                constants[i] = constant_class(chosen_val[i][1], cfg.threshold)
            note = budget_note(selector, config, constants[i], vals[i])
            if cfg.certifies:
                certificates[i], needed = certificate_of(selector, config, chosen_val[i], groups)
                note = note and note + needed
            notes.append(note)
        _warn_notes(notes, selectors)
        test_metrics: list[dict | None] = [None] * len(configs)
        intervals: list[dict | None] = [None] * len(configs)
        if test is not None:
            chosen_test = run.predict(test)
            for i, (history, selector) in enumerate(zip(histories, selectors)):
                if cfg.record_test:
                    test_metrics[i] = _metrics_of(history[selector.selected_epoch - 1], "test_")
                else:
                    test_metrics[i], undefined["test"] = self._report(chosen_test[i], groups)
                intervals[i] = test_intervals(chosen_test[i], groups, cfg.threshold)
        return [
            TrainResult(
                config=config.to_dict(),
                history=histories[i],
                selected_epoch=selectors[i].selected_epoch,
                val=vals[i],
                test=test_metrics[i],
                extra=run.extra(),
                budget_met=selectors[i].budget_met,
                undefined={split: reasons for split, reasons in undefined.items() if reasons},
                constant_prediction=constants[i],
                certificate=certificates[i],
                test_intervals=intervals[i],
                model=run.result_model(i),
                selection=selectors[i],
            )
            for i, config in enumerate(configs)
        ]

    def predict(self, model: FairModel, loader: Split | Loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels, predicted probabilities and groups of the (masked) examples, as numpy arrays."""
        return predict(model, self._loader(loader, shuffle=False))

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


def _warn_notes(notes: list[str | None], selectors: list) -> None:
    """Warn of each model's budget note: a single model's as it is, a stack's gathered by kind."""
    if len(notes) == 1:
        if notes[0]:
            warnings.warn(notes[0], UserWarning, stacklevel=4)
        return
    k = len(notes)
    shortfalls = [note for note, selector in zip(notes, selectors) if note and not selector.budget_met]
    if shortfalls:
        warnings.warn(f"{len(shortfalls)} of {k} models met no epoch under the budget:\n" + "\n".join(shortfalls),
                      UserWarning, stacklevel=4)
    one_class = [note for note, selector in zip(notes, selectors) if note and selector.budget_met]
    if one_class:
        warnings.warn(f"{len(one_class)} of {k} models predict one class for every validation row:\n"
                      + "\n".join(one_class), UserWarning, stacklevel=4)


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
                   threshold: float = 0.5, confidence: float = 0.95, decisions: np.ndarray | None = None
                   ) -> dict[str, list[float]]:
    """Exact ``confidence`` intervals ``{metric: [lo, hi]}`` on every gap of predictions ``(y, scores, s)``
    (NaN where the gap is undefined). The rate gaps are those of ``scores >= threshold``, or of 0/1
    ``decisions`` ``(n,)`` when given (e.g. per-group thresholds); the soft gaps those of ``scores``."""
    y, scores, s = predicted
    every = range(max(_count(groups) or 0, int(s.max()) + 1))
    hard = (scores >= threshold).astype(np.int64) if decisions is None else decisions
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
