"""One call for a whole accuracy-fairness trade-off: strategies x etas x seeds, every checkpoint a candidate.

``sweep`` trains every (strategy, eta, seed) model of one dataset and returns
a table with one row per checkpoint (epoch) of every model, with its
validation metrics and the test metrics of that checkpoint. Which
checkpoints answer a question (a front, a budget) is then chosen on the
validation columns alone (:func:`~fairbinn.core.pareto.pareto_front`,
:func:`~fairbinn.core.pareto.accuracy_at_budgets`); the test columns only
report what validation chose. ``etas="auto"`` finds the etas where the
trade-off lives (:mod:`fairbinn.search`).

On tabular data the models of one strategy are trained together as a stack
(see :mod:`fairbinn.core.stacked`): one pass over each minibatch updates all
of them, and each model's results equal those of training it alone with the
same seed (up to floating-point rounding). Graphs, images and networks that
cannot be stacked (dropout > 0, unknown layers) are trained one at a time.

:func:`choose_under_budget` trains one strategy (etas searched
automatically by default) and returns the most accurate checkpoint on
validation whose validation gap meets a budget, with its model.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import pandas as pd

from .core.checkpoint import CHECKPOINT_NAME
from .core.config import TrainConfig
from .core.postprocess import THRESHOLD_METRICS, deciding_with, threshold_candidates
from .core.runtime import seed_everything
from .core.selection import ORDER_KEY, TRAIN_GAP_KEY, CertifiedSelector, EpochSelector
from .core.stacked import NotStackableError, stack_models
from .core.strategies import list_strategies, resolve_strategy
from .core.trainer import (TrainResult, Trainer, _all_groups, _metrics_of, certificate_of, constant_class,
                           interval_columns,
                           one_class_budget, test_intervals, uncertifiable)
from .search import EtaSearch, search_etas
from .benchmark import get_benchmark, load_benchmark, run
from .tabular.preprocess import TabularDataset

if TYPE_CHECKING:  # the graph and vision modalities are imported only when their data is used
    from .graph.dataset import GraphDataset
    from .vision.celeba import CelebASplits

__all__ = ["sweep", "choose_under_budget", "BudgetChoice", "PAPER_ETAS", "SWEEP_COLUMNS", "ROWS", "BEST_CANDIDATES"]

PAPER_ETAS = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
"""The eta grid of the reproduction report."""

SWEEP_COLUMNS = ("strategy", "eta", "seed", "epoch")
"""The columns that identify a point; then (epoch rows) ``selected`` and, with
``etas="auto"``, ``search``, or (model rows) ``selection`` and, with a budget,
``budget_met``; then ``val_<metric>``, ``test_<metric>``, ``train_time_s`` and
``stack_size``."""

ROWS = ("epochs", "models")
"""What a row of :func:`sweep` is: a checkpoint (every epoch of every model) or a model (its selected epoch)."""


def _load(data: Any, data_dir: str | os.PathLike | None) -> Any:
    """A benchmark's dataset by name, or ``data`` if a registered benchmark trains it (else an error naming them)."""
    return load_benchmark(data, data_dir) if isinstance(data, str) else get_benchmark(data) and data


def _metrics(result: TrainResult, record: dict[str, float] | None = None) -> dict[str, float]:
    """``val_*`` and ``test_*`` of the selected epoch (``record`` None), or those and the epoch's mean
    training losses (``train_bce``, ``train_fairness``, ...) of one history record."""
    if record is None:
        return {**{f"val_{k}": v for k, v in (result.val or {}).items()},
                **{f"test_{k}": v for k, v in (result.test or {}).items()}}
    return {**{k: v for k, v in record.items() if k.startswith(("val_", "test_")) or k in (ORDER_KEY, TRAIN_GAP_KEY)},
            **{k: v for k, v in record.items() if k.startswith("train_") and k != "train_time_s"}}


def _intervals(result: TrainResult) -> dict[str, float]:
    """``test_<gap>_lo`` / ``test_<gap>_hi``: the 95% intervals on the selected epoch's test gaps."""
    return interval_columns(result.test_intervals)


def _epoch_rows(result: TrainResult, strategy: str, stack_size: int) -> list[dict[str, Any]]:
    config = result.config
    return [{"strategy": strategy, "eta": config["eta"], "seed": config["seed"], "epoch": record["epoch"],
             "selected": record["epoch"] == result.selected_epoch, **_metrics(result, record),
             "train_time_s": record["train_time_s"] / stack_size, "stack_size": stack_size}
            for record in result.history]


def _model_row(result: TrainResult, strategy: str, seconds: float, stack_size: int) -> dict[str, Any]:
    config = result.config
    budget = {} if result.budget_met is None else {"budget_met": result.budget_met}
    if result.certificate is not None:
        budget["val_bound"] = result.certificate["upper_bound"]
    return {"strategy": strategy, "eta": config["eta"], "seed": config["seed"], "epoch": result.selected_epoch,
            "selection": config["selection_metric"] or "last", **budget, **_metrics(result), **_intervals(result),
            "train_time_s": seconds, "stack_size": stack_size}


@dataclass
class _Fitter:
    """Trains (eta, seed) pairs of one configuration on one dataset: stacked where it can, else one at a time.

    Each trained model's result (with ``.model``) is shown to ``keep`` and
    reduced to rows at once, so models are not held longer than needed.
    """

    dataset: Any
    model_kwargs: dict[str, Any] | None
    stack: bool
    max_stack: int | None
    fused_adam: bool
    keep: Callable[[TrainResult], None] | None = None
    checkpoint_dir: str | os.PathLike | None = None
    undefined: dict[str, dict[str, str]] = field(default_factory=dict)
    """The gaps some split cannot measure, with why (``{"val" | "test": {metric: reason}}``)."""

    def fit(self, config: TrainConfig, pairs: list[tuple[float, int]], label: str) -> tuple[list[dict], list[dict]]:
        """Epoch rows and model rows of the models of ``pairs`` trained with ``config``."""
        epoch_rows: list[dict] = []
        model_rows: list[dict] = []
        size = len(pairs) if self.max_stack is None else self.max_stack
        for begin in range(0, len(pairs), size):
            chunk, directory = pairs[begin:begin + size], self._directory(config, pairs[begin:begin + size], label)
            done = None if directory is None else directory / "rows.json"
            if done is not None and done.is_file():  # trained before: its rows
                rows = _read_rows(done, directory.name, label, chunk)
            else:
                rows = {"epochs": [], "models": [], "undefined": {}}
                for result, seconds, stack_size in self._chunk(config, chunk, directory):
                    for split, reasons in result.undefined.items():
                        rows["undefined"].setdefault(split, {}).update(reasons)
                    if self.keep is not None:
                        self.keep(result)
                    rows["epochs"] += _epoch_rows(result, label, stack_size)
                    rows["models"].append(_model_row(result, label, seconds, stack_size))
                    result.model = None
                if done is not None:
                    _write_rows(done, {"key": directory.name, **rows})
            for split, reasons in rows["undefined"].items():
                self.undefined.setdefault(split, {}).update(reasons)
            epoch_rows, model_rows = epoch_rows + rows["epochs"], model_rows + rows["models"]
        return epoch_rows, model_rows

    def _directory(self, config: TrainConfig, pairs: list[tuple[float, int]], label: str) -> Path | None:
        """Where one chunk of models keeps its checkpoints and, once trained, its rows: keyed by what decides them."""
        if self.checkpoint_dir is None:
            return None
        decided = {**config.to_dict(), "progress": None, "device": None, "pairs": pairs, "fused": self.fused_adam,
                   "model_kwargs": self.model_kwargs, "dataset": self.dataset.summary()}
        decided.pop("overwrite")  # not a setting of the models (and keys stay those of earlier sweeps)
        key = hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return Path(self.checkpoint_dir) / label / key

    def _chunk(self, config: TrainConfig, pairs: list[tuple[float, int]], directory: Path | None):
        if self.stack and get_benchmark(self.dataset).stackable:
            try:
                yield from self._stacked(_checkpointed(config, directory), pairs)
                return
            except NotStackableError as reason:
                warnings.warn(f"training {len(pairs)} models one at a time: {reason}", stacklevel=5)
        for index, (eta, seed) in enumerate(pairs):
            start = time.perf_counter()
            model_dir = None if directory is None else directory / str(index)
            result = self._one(_checkpointed(config, model_dir).replace(eta=float(eta), seed=int(seed)))
            yield result, time.perf_counter() - start, 1

    def _stacked(self, config: TrainConfig, pairs: list[tuple[float, int]]):
        models = []
        for _, seed in pairs:
            seed_everything(seed)
            models.append(get_benchmark(self.dataset).build_model(self.dataset, **(self.model_kwargs or {})))
        stacked = stack_models(models)
        start = time.perf_counter()
        results = Trainer(config).fit(stacked, self.dataset.train, self.dataset.val, self.dataset.test,
                                      etas=[eta for eta, _ in pairs], seeds=[seed for _, seed in pairs],
                                      adam_kwargs={"fused": True} if self.fused_adam else None,
                                      group_names=getattr(self.dataset, "group_names", None))
        share = (time.perf_counter() - start) / len(pairs)
        for index, (result, model) in enumerate(zip(results, models)):
            model.load_state_dict(stacked.model_state_dict(index))
            result.model = model
            yield result, share, len(pairs)

    def _one(self, config: TrainConfig) -> TrainResult:
        return run(self.dataset, config, model_kwargs=self.model_kwargs)


def _checkpointed(config: TrainConfig, directory: Path | None) -> TrainConfig:
    """``config`` writing checkpoints into ``directory`` and resuming from one found there."""
    if directory is not None and config.overwrite:
        raise ValueError("a sweep resumes the checkpoints in its checkpoint_dir; overwrite=True is for one run "
                         f"(delete {directory.parent} to train these models again)")
    return config if directory is None else config.replace(
        checkpoint_dir=str(directory), resume=(directory / CHECKPOINT_NAME).is_file())


_ROW_COLUMNS = {"epochs": (*SWEEP_COLUMNS, "selected", "train_time_s", "stack_size"),
                "models": (*SWEEP_COLUMNS, "selection", "train_time_s", "stack_size")}


def _write_rows(path: Path, rows: dict[str, Any]) -> None:
    """Write a trained chunk's rows (with its configuration key) atomically: a crash never leaves half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(rows))
    os.replace(temporary, path)


def _read_rows(path: Path, key: str, label: str, pairs: list[tuple[float, int]]) -> dict[str, Any]:
    """The rows ``_write_rows`` left in ``path`` for the configuration ``key`` and (eta, seed) ``pairs``, checked:
    anything else (another configuration's rows, a hand-edited or damaged file) is a ``ValueError`` naming it."""
    retrain = f"; delete {path} to train these models again"
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}){retrain}") from None
    if not isinstance(saved, dict) or saved.get("key") != key:
        found = saved.get("key") if isinstance(saved, dict) else None
        raise ValueError(f"{path}: not the rows of this configuration (its key {found!r} is not {key!r}, "
                         f"the key of the settings that train them){retrain}")
    if set(saved) != {"key", "epochs", "models", "undefined"}:
        raise ValueError(f"{path}: expected the entries key, epochs, models and undefined, got "
                         f"{', '.join(sorted(map(str, saved)))}{retrain}")
    plain = (str, int, float, bool, type(None))
    for part, columns in _ROW_COLUMNS.items():
        rows = saved[part]
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"{path}: {part} must be a list of rows (objects){retrain}")
        for i, row in enumerate(rows):
            missing = [c for c in columns if c not in row]
            odd = [str(k) for k, v in row.items() if not isinstance(v, plain)]
            if missing or odd:
                raise ValueError(f"{path}: {part} row {i} " + (f"lacks {', '.join(missing)}" if missing else
                                 f"holds other than plain values in {', '.join(odd)}") + retrain)
            if row["strategy"] != label or not isinstance(row["eta"], (int, float)) \
                    or (float(row["eta"]), row["seed"]) not in {(float(e), s) for e, s in pairs}:
                raise ValueError(f"{path}: {part} row {i} is of {row['strategy']} eta={row['eta']} "
                                 f"seed={row['seed']}, not of these models{retrain}")
    undefined = saved["undefined"]
    if not isinstance(undefined, dict) or not all(
            isinstance(reasons, dict) and all(isinstance(v, str) for v in reasons.values())
            for reasons in undefined.values()):
        raise ValueError(f"{path}: undefined must map each split to {{metric: reason}}{retrain}")
    return {"epochs": saved["epochs"], "models": saved["models"], "undefined": undefined}


def _with_backbone(model_kwargs: dict[str, Any] | None, backbone: str | None) -> dict[str, Any] | None:
    return model_kwargs if backbone is None else {"backbone": backbone, **(model_kwargs or {})}


def _check_etas(etas: Sequence[float] | str, strategies: Sequence[str]) -> None:
    if isinstance(etas, str):
        if etas != "auto":
            raise ValueError(f"etas must be a list of numbers or 'auto', got {etas!r}")
        if all(s == "erm" for s in strategies):
            raise ValueError("etas='auto' searches eta, and ERM has none; add lagrangian or bilevel")
    elif any(s != "erm" for s in strategies) and not etas:
        raise ValueError("etas must not be empty")


def sweep(
    data: str | TabularDataset | GraphDataset | CelebASplits,
    strategies: Sequence[str] = ("bilevel", "lagrangian", "erm"),
    etas: Sequence[float] | str = PAPER_ETAS,
    seeds: Sequence[int] = (0,),
    *,
    config: TrainConfig | None = None,
    data_dir: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backbone: str | None = None,
    stack: bool = True,
    max_stack: int | None = None,
    fused_adam: bool = False,
    rows: str = "epochs",
    search: EtaSearch | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    **config_overrides: Any,
) -> pd.DataFrame:
    """Train every (strategy, eta, seed) model on one dataset; one row per checkpoint (or per model).

    Parameters
    ----------
    data : str or loaded dataset
        A registered benchmark's name ("adult", "health", "nba", "pokec_z",
        "pokec_n", "celeba", yours: :func:`fairbinn.list_benchmarks`) or a
        loaded ``TabularDataset``, ``GraphDataset`` or ``CelebASplits``.
    strategies : sequence of str, default ("bilevel", "lagrangian", "erm")
        ERM ignores eta and is trained once per seed (its rows have eta 0).
    etas : sequence of float or "auto", default :data:`PAPER_ETAS`
        ``"auto"``: per strategy, a coarse pass finds where the validation
        gap (``config.budget_metric``, default DP) moves from ERM's level to
        ~0 and a refined pass fills that interval (:func:`fairbinn.search.search_etas`;
        16 etas in all by default, the seeds sharing them).
    seeds : sequence of int, default (0,)
        Each seed fixes a model's initialisation and shuffling, as in
        :func:`fairbinn.run_tabular` / :func:`fairbinn.run_graph`.
    config : TrainConfig, optional
        Shared settings; default the paper's for the dataset (tabular:
        ``TrainConfig()``, graphs: ``PAPER_GRAPH_SETTINGS``, CelebA:
        ``paper_config(target)``), then ``config_overrides``. Its
        ``selection_metric`` (and ``fairness_budget``) mark each model's
        selected epoch.
    model_kwargs : dict, optional
        Passed to ``paper_mlp`` / ``paper_gnn`` / ``create_vision_model``.
    backbone : str, optional
        GNN body for graph data (default the paper's GCN); same as
        ``model_kwargs={"backbone": ...}``.
    stack : bool, default True
        Train the models of one strategy as one stack where the network
        allows it (tabular data); otherwise, or when it does not (a warning
        says why), one at a time.
    max_stack : int, optional
        Most models in one stack (default: all of a strategy's).
    fused_adam : bool, default False
        Stacks use ``torch.optim.Adam(fused=True)``: faster for large stacks,
        but it rounds differently from the per-model default, so results
        then differ from separate runs beyond the last few bits.
    rows : {"epochs", "models"}, default "epochs"
        ``"epochs"``: one row per checkpoint (every epoch of every model) with
        ``selected`` marking each model's selected epoch. ``"models"``: one
        row per model, its selected epoch only, with ``selection`` (the
        metric that chose it) and, with a budget, ``budget_met``.
    search : EtaSearch, optional
        Settings of ``etas="auto"``.
    checkpoint_dir : path, optional
        Resumable: each stack (or lone model) checkpoints into
        ``checkpoint_dir/<strategy>/<hash of what decides its models>/`` and
        keeps its rows there when done; called again, the sweep reads those,
        resumes an interrupted stack and ends with the uninterrupted table.

    Returns
    -------
    DataFrame: ``strategy``, ``eta``, ``seed``, ``epoch``, then the row kind's
    columns (see :data:`SWEEP_COLUMNS`; ``search`` says which pass trained
    an automatic eta), ``val_<metric>`` and ``test_<metric>`` for each metric
    of :func:`~fairbinn.core.metrics.binary_fairness_report` (accuracy, auc,
    ap, dp, eo, eopp, soft_dp, soft_eo; NaN where the split cannot measure a
    gap), epoch rows only: the epoch's mean training losses as the strategy
    reports them (``train_bce``, ``train_fairness``, the eta-free fairness
    loss, and any others, e.g. ``train_hypergradient_norm``), ``train_time_s`` (model rows: wall time of training and per-epoch
    evaluation; epoch rows: that epoch's training; a stack's time is shared
    by its models) and ``stack_size``. The test columns are those of each
    row's own checkpoint; they only report what the validation columns
    choose and must never be used to choose. ``table.attrs["undefined"]``
    says why a gap is NaN (``{"val" | "test": {metric: reason}}``).
    """
    if not strategies:
        raise ValueError(f"strategies must be a non-empty list of {', '.join(list_strategies())}; got []")
    try:  # the registry at call time: register_strategy may have added names
        strategies = [resolve_strategy(s) for s in strategies]
    except ValueError as error:
        raise ValueError(f"strategies must be a non-empty list of registered strategies: {error}") from None
    if not seeds:
        raise ValueError("seeds must not be empty")
    if max_stack is not None and (not isinstance(max_stack, int) or max_stack < 1):
        raise ValueError(f"max_stack must be a positive integer, got {max_stack!r}")
    if rows not in ROWS:
        raise ValueError(f"rows must be one of {', '.join(ROWS)}, got {rows!r}")
    _check_etas(etas, strategies)
    if (config and config.checkpoint_dir) or config_overrides.get("checkpoint_dir"):
        raise ValueError("sweep does not write checkpoints into config.checkpoint_dir: every model would share it; "
                         "pass sweep(checkpoint_dir=...), which gives each stack its own")
    dataset = _load(data, data_dir)
    base = config or get_benchmark(dataset).paper_config(dataset)
    base = base.replace(**{**config_overrides, "record_test": True})
    fitter = _Fitter(dataset, _with_backbone(model_kwargs, backbone), stack, max_stack, fused_adam,
                     checkpoint_dir=checkpoint_dir)
    tables = [_sweep_strategy(fitter, base.for_strategy(strategy), etas, seeds, search, rows)
              for strategy in dict.fromkeys(strategies)]
    table = pd.concat(tables, ignore_index=True)
    last = [c for c in ("train_time_s", "stack_size") if c in table.columns]  # after losses only some strategies have
    table = table[[c for c in table.columns if c not in last] + last]
    table.attrs["undefined"] = fitter.undefined
    return table


def _sweep_strategy(fitter: _Fitter, config: TrainConfig, etas, seeds, search, rows: str,
                    label: str | None = None) -> pd.DataFrame:
    """One strategy's table (epoch or model rows)."""
    label = label or config.strategy
    model_rows: list[dict] = []

    def train(etas_: Sequence[float], epochs: int) -> pd.DataFrame:
        pairs = [(float(eta), int(seed)) for seed in seeds for eta in etas_]
        epoch_rows, models = fitter.fit(config.replace(epochs=epochs), pairs, label)
        model_rows.extend(models)
        return pd.DataFrame(epoch_rows)

    if config.strategy == "erm":
        table = train([0.0], config.epochs)
    elif isinstance(etas, str):
        table = search_etas(train, config.epochs, metric=config.budget_metric, budget=config.fairness_budget,
                            search=search, column=TRAIN_GAP_KEY if config.certifies else None)
    else:
        table = train(etas, config.epochs)
    if rows == "models":
        models = pd.DataFrame(model_rows)
        if "search" in table.columns:  # which pass trained each model
            passes = table.drop_duplicates(["eta", "seed"]).set_index(["eta", "seed"])["search"]
            models.insert(5, "search", [passes[(e, s)] for e, s in zip(models["eta"], models["seed"])])
        return models
    if "search" in table.columns:
        table.insert(5, "search", table.pop("search"))
    return table


@dataclass
class BudgetChoice:
    """What :func:`choose_under_budget` chose.

    Attributes
    ----------
    strategy : str
        The strategy chosen; with ``strategy="best"`` the winning candidate, e.g. ``"erm + thresholds"``.
    result : TrainResult
        The chosen model's run: ``config`` (its eta), ``selected_epoch``,
        ``val`` and ``test`` metrics of that epoch, ``budget_met`` and
        ``model`` (holding that epoch's parameters).
    table : DataFrame
        Every checkpoint that was a candidate, as :func:`sweep` gives them.
    candidates : dict of str to TrainResult
        With ``strategy="best"``: each candidate's own certified choice (its
        checkpoints, or its thresholds' rungs, tested alone), by candidate
        name, from the same training; empty otherwise.
    """

    strategy: str
    result: TrainResult
    table: pd.DataFrame
    candidates: dict[str, TrainResult] = field(default_factory=dict)

    @property
    def eta(self) -> float:
        return self.result.config["eta"]

    @property
    def epoch(self) -> int:
        return self.result.selected_epoch

    @property
    def budget_met(self) -> bool:
        """Whether the choice meets the budget: certified, with a certified budget; else on validation."""
        return bool(self.result.budget_met)

    @property
    def certificate(self) -> dict[str, Any] | None:
        """The chosen checkpoint's certificate (``{"confidence", "metric", "budget", "upper_bound",
        "certified", ...}``), None with ``confidence=0``."""
        return self.result.certificate


def choose_under_budget(
    data: str | TabularDataset | GraphDataset | CelebASplits,
    strategy: str,
    budget: float,
    *,
    budget_metric: str = "dp",
    confidence: float | None = None,
    etas: Sequence[float] | str = "auto",
    seed: int = 0,
    config: TrainConfig | None = None,
    data_dir: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backbone: str | None = None,
    stack: bool = True,
    fused_adam: bool = False,
    search: EtaSearch | None = None,
    **config_overrides: Any,
) -> BudgetChoice:
    """Train ``strategy`` (over ``etas``, searched by default) and choose, on validation, a model under a budget.

    Every epoch of every eta is a candidate. With ``confidence`` above 0
    (the default: 0.95; or ``config.confidence``) the budget is certified:
    the candidates are tested in one fixed sequence, in the order of the
    bound predicted from their training rows, and the chosen one has the
    best validation ``selection_metric`` (accuracy by default) among the
    certified (see :class:`~fairbinn.core.selection.CertifiedSelector`): with
    probability at least ``confidence`` over the draw of the validation rows
    its population ``budget_metric`` is at most ``budget``. The eta search
    then reads the gap on the training rows, not the validation rows. If
    nothing is certified, the candidate with the smallest bound is returned
    with ``budget_met`` False, ``result.certificate["certified"]`` False and
    a warning giving that bound and roughly how many validation rows per
    group would certify it. With ``confidence=0`` the chosen one has the
    best validation ``selection_metric`` among those whose validation
    ``budget_metric`` is at most ``budget``; if none is, the one with the
    smallest validation gap (``budget_met`` False, with a warning).
    A validation split that cannot measure ``budget_metric`` (a group without
    rows, or without the positive / negative labels the gap conditions on) is
    an error naming the group, raised before any training; a chosen
    checkpoint that meets the budget by predicting one class for every
    validation row comes with a warning saying so.
    ERM has no eta and is trained once. The candidates' table has no test
    columns: test metrics are reported for the chosen checkpoint only.

    ``strategy="best"`` (certified budgets only, chosen by validation
    accuracy) trains each of :data:`BEST_CANDIDATES` alone (its eta searched)
    and, for a ``dp``, ``eo`` or ``eopp`` budget, also with group thresholds
    (:mod:`fairbinn.core.postprocess`: the model of the configured eta at its
    last epoch, thresholds fitted on the training rows at each rung of the
    ladder). Every checkpoint and every rung joins one fixed-sequence test
    in the order of the bound predicted from the training rows, so the
    guarantee covers the choice among all of them. ``BudgetChoice.strategy``
    names the winner (e.g. ``"lagrangian + thresholds"``), the table has a
    ``candidate`` column, and a thresholded winner's ``result.model`` is a
    :class:`~fairbinn.core.postprocess.ThresholdedModel`. The models train
    in the loop and with the optimiser of a single run
    (:meth:`~fairbinn.core.trainer.Trainer.fit`), so a run with the chosen
    eta alone reproduces the chosen row up to floating-point rounding;
    ``fused_adam=True`` is about a quarter faster per step of a stack on a
    CPU and rounds differently. Other arguments as for :func:`sweep`.
    """
    best = strategy == "best"
    strategy = "bilevel" if best else resolve_strategy(strategy)  # ValueError "unknown strategy 'x'; choose ..."
    dataset = _load(data, data_dir)
    base = (config or get_benchmark(dataset).paper_config(dataset)).replace(**config_overrides)
    base = base.for_strategy(strategy, seed=seed, fairness_budget=budget, budget_metric=budget_metric,
                             confidence=base.confidence if confidence is None else confidence, record_test=False)
    if strategy != "erm":
        _check_etas(etas, [strategy])
    model_kwargs = _with_backbone(model_kwargs, backbone)
    if best:
        return _choose_best(dataset, base, etas, search, model_kwargs, stack, fused_adam)
    if base.certifies:
        return _choose_certified(dataset, strategy, base, etas, search, model_kwargs, stack, fused_adam)
    chooser = EpochSelector(base.selection_metric, budget=budget, budget_metric=budget_metric)

    def keep(result: TrainResult) -> None:  # each model's choice joins the choice across models, with its model
        result.selection.owner = (result, result.model)
        chooser.merge(result.selection)
        result.selection = None

    fitter = _Fitter(dataset, model_kwargs, stack, None, fused_adam, keep=keep)
    with warnings.catch_warnings():  # models missing the budget are expected while eta is searched
        warnings.filterwarnings("ignore", message=_PER_MODEL_WARNINGS)  # said below of the chosen checkpoint only
        table = _sweep_strategy(fitter, base, etas, [seed], search, "epochs")
    chosen, model = chooser.chosen["owner"]
    chosen.model = model
    if not chooser.budget_met:
        gap = chosen.val[budget_metric]
        warnings.warn(f"{strategy}: no checkpoint met the validation {budget_metric} budget {budget:g}; the smallest "
                      f"validation {budget_metric} was {gap:.4f} (eta {chosen.config['eta']:g}, epoch "
                      f"{chosen.selected_epoch}), the checkpoint kept; "
                      + ("ERM has no fairness term" if strategy == "erm" else "try larger etas"),
                      UserWarning, stacklevel=2)
    elif chosen.constant_prediction is not None:
        label = strategy if strategy == "erm" else f"{strategy} eta={chosen.config['eta']:g}"
        warnings.warn(one_class_budget(f"{label} epoch {chosen.selected_epoch}", budget_metric, budget,
                                       chosen.constant_prediction, chosen.val["accuracy"]), UserWarning, stacklevel=2)
    return BudgetChoice(strategy, chosen, table)


_PER_MODEL_WARNINGS = (".*met no epoch under the budget|.*no epoch met the validation|.*for every validation row"
                       "|.*no checkpoint was certified|.*cannot certify")
"""Warnings of the models of a budget choice, which it says once, of the chosen checkpoint."""


def _check_certifiable(dataset: Any, label: str, base: TrainConfig) -> list[str] | int | None:
    """The dataset's groups; warns (once) when its validation rows cannot certify the budget."""
    groups = _all_groups(getattr(dataset, "group_names", None), None)
    targets = getattr(getattr(dataset, "val", None), "targets", None)
    if callable(targets):  # said once here, not by every model
        y, s = (t.numpy() for t in targets())
        warning = uncertifiable(base, y, s, groups if groups is not None else int(s.max()) + 1)
        if warning:
            warnings.warn(f"{label}: {warning}", UserWarning, stacklevel=4)
    return groups


def _certified_candidates(dataset: Any, strategy: str, base: TrainConfig, etas: Sequence[float] | str,
                          search: EtaSearch | None, model_kwargs: dict[str, Any] | None, stack: bool,
                          fused_adam: bool, chooser: CertifiedSelector) -> pd.DataFrame:
    """Train ``strategy`` (over ``etas``) and fold every checkpoint into ``chooser``; the candidates' table."""
    def keep(result: TrainResult) -> None:  # every model's candidates that may be chosen, with their parameters
        result.selection.owner = {"strategy": strategy, "config": result.config, "history": result.history}
        chooser.merge(result.selection)
        result.selection = None

    fitter = _Fitter(dataset, model_kwargs, stack, None, fused_adam, keep=keep)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PER_MODEL_WARNINGS)
        return _sweep_strategy(fitter, base, etas, [base.seed], search, "epochs")


def _choose_certified(dataset: Any, strategy: str, base: TrainConfig, etas: Sequence[float] | str,
                      search: EtaSearch | None, model_kwargs: dict[str, Any] | None, stack: bool,
                      fused_adam: bool) -> BudgetChoice:
    """:func:`choose_under_budget` with a certified budget: every epoch of every model is a candidate of one
    fixed-sequence test (:class:`~fairbinn.core.selection.CertifiedSelector`), in the order of the gap on the
    training rows, across all the models trained."""
    groups = _check_certifiable(dataset, strategy, base)
    chooser = CertifiedSelector(base.selection_metric, budget=base.fairness_budget, budget_metric=base.budget_metric,
                                confidence=base.budget_confidence)
    table = _certified_candidates(dataset, strategy, base, etas, search, model_kwargs, stack, fused_adam, chooser)
    return BudgetChoice(strategy, _certified_result(dataset, chooser, base, model_kwargs, groups), table)


def _certified_result(dataset: Any, chooser: CertifiedSelector, base: TrainConfig,
                      model_kwargs: dict[str, Any] | None, groups: list[str] | int | None) -> TrainResult:
    """The run of ``chooser``'s choice: its model rebuilt with the chosen parameters (and thresholds, for a
    thresholded candidate), evaluated on validation and test, with the certificate."""
    benchmark = get_benchmark(dataset)
    chosen = chooser.chosen
    if chosen is None:
        raise ValueError(f"the validation bound on {base.budget_metric} was undefined for every candidate; "
                         "nothing can be chosen under the budget")
    owner = chosen["owner"]
    strategy = owner["strategy"]
    config = base.for_strategy(owner["config"]["strategy"], eta=float(owner["config"]["eta"]),
                               seed=int(owner["config"]["seed"]))
    if "model" in owner:  # a thresholded candidate: its model, whose thresholds are the chosen state
        return _thresholded_result(dataset, chooser, owner, config, groups)
    seed_everything(config.seed)
    model = benchmark.build_model(dataset, **(model_kwargs or {}))
    model.load_state_dict(chosen["state"])
    _, val_loader, test_loader = benchmark.loaders(dataset, config)
    trainer = Trainer(config.replace(progress=False))
    val = trainer.predict(model, val_loader)
    certificate, needed = certificate_of(chooser, config, val, groups)
    record = owner["history"][chosen["epoch"] - 1]
    val_metrics = _metrics_of(record, "val_")
    test_metrics, undefined, intervals = None, {}, None
    if test_loader is not None:
        predicted = trainer.predict(model, test_loader)
        test_metrics, reasons = trainer._report(predicted, groups)
        undefined = {"test": reasons} if reasons else {}
        intervals = test_intervals(predicted, groups, config.threshold)
    val_reasons = trainer._report(val, groups)[1]
    if val_reasons:
        undefined["val"] = val_reasons
    constant = constant_class(val[1], config.threshold) if chooser.budget_met else None
    label = strategy if strategy == "erm" else f"{strategy} eta={config.eta:g}"
    if not chooser.budget_met:
        warnings.warn(f"{label}: {chooser.shortfall()}{needed}; "
                      + ("ERM has no fairness term" if strategy == "erm" else "try larger etas"),
                      UserWarning, stacklevel=4)
    elif constant is not None:
        warnings.warn(one_class_budget(f"{label} epoch {chosen['epoch']}", config.budget_metric,
                                       config.fairness_budget, constant, val_metrics["accuracy"]),
                      UserWarning, stacklevel=4)
    return TrainResult(config=owner["config"], history=owner["history"], selected_epoch=chosen["epoch"],
                       val=val_metrics, test=test_metrics, budget_met=chooser.budget_met, undefined=undefined,
                       constant_prediction=constant, certificate=certificate, test_intervals=intervals, model=model)


def _thresholded_result(dataset: Any, chooser: CertifiedSelector, owner: dict[str, Any], config: TrainConfig,
                        groups: list[str] | int | None) -> TrainResult:
    """The run of a chosen thresholded candidate: ``owner["model"]`` deciding with the chosen thresholds."""
    fitted = replace(chooser.chosen["state"], certificate=chooser.certificate())
    model = owner["model"]
    _, val_loader, test_loader = get_benchmark(dataset).loaders(dataset, config)
    trainer = Trainer(config.replace(progress=False))
    if not chooser.budget_met:
        warnings.warn(f"{owner['strategy']}: {chooser.shortfall()}", UserWarning, stacklevel=4)
    base = TrainResult(config=owner["config"], history=owner["history"], selected_epoch=len(owner["history"]),
                       budget_met=chooser.budget_met, model=model)
    return deciding_with(base, fitted, trainer.predict(model, val_loader),
                         trainer.predict(model, test_loader) if test_loader is not None else None, groups,
                         config.seed)


BEST_CANDIDATES = ("erm", "lagrangian", "bilevel")
"""The strategies ``strategy="best"`` trains, each alone and with group thresholds."""


def _choose_best(dataset: Any, base: TrainConfig, etas: Sequence[float] | str, search: EtaSearch | None,
                 model_kwargs: dict[str, Any] | None, stack: bool, fused_adam: bool) -> BudgetChoice:
    """``choose_under_budget(strategy="best")``: every candidate of every strategy, alone (each checkpoint of its
    eta search) and with group thresholds (the thresholds' ladder on its last epoch at the configured eta), in
    one fixed-sequence test; the most accurate certified on validation wins."""
    if not base.certifies:
        raise ValueError("strategy='best' chooses among certified candidates; give a confidence above 0")
    if base.selection_metric != "accuracy":
        raise ValueError(f"strategy='best' chooses by validation accuracy (thresholds maximise it); got "
                         f"selection_metric={base.selection_metric!r}")
    groups = _check_certifiable(dataset, "best", base)
    benchmark = get_benchmark(dataset)
    tables, own = [], {}

    def selector() -> CertifiedSelector:
        return CertifiedSelector("accuracy", budget=base.fairness_budget, budget_metric=base.budget_metric,
                                 confidence=base.budget_confidence)

    chooser = selector()

    for index, strategy in enumerate(BEST_CANDIDATES):
        config = base.for_strategy(strategy)
        own[strategy] = selector()
        tables.append(_certified_candidates(dataset, strategy, config, etas, search, model_kwargs, stack,
                                            fused_adam, own[strategy]).assign(candidate=strategy))
        chooser.merge(own[strategy])
        if base.budget_metric not in THRESHOLD_METRICS:
            continue  # thresholds cannot move a gap of scores
        plain = config.replace(fairness_budget=None, confidence=None, selection_metric=None)
        result = run(dataset, plain, model_kwargs=model_kwargs)
        train, val, _ = benchmark.loaders(dataset, plain)
        trainer = Trainer(plain.replace(progress=False))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="group thresholds")  # said of the choice only
            rungs, rows = threshold_candidates(trainer.predict(result.model, train),
                                               trainer.predict(result.model, val),
                                               budget=base.fairness_budget, metric=base.budget_metric,
                                               confidence=base.budget_confidence, seed=base.seed,
                                               group_names=groups if isinstance(groups, list) else None,
                                               tiebreak=(-1.0, float(index)))
        rungs.owner = {"strategy": f"{strategy} + thresholds", "config": result.config, "history": result.history,
                       "model": result.model}
        own[rungs.owner["strategy"]] = selector()
        own[rungs.owner["strategy"]].merge(rungs)  # its entries now name their owner
        chooser.merge(rungs)
        tables.append(pd.DataFrame(rows).drop(columns="thresholds").assign(
            candidate=f"{strategy} + thresholds", strategy=strategy, eta=result.config["eta"], seed=base.seed))
    result = _certified_result(dataset, chooser, base, model_kwargs, groups)
    with warnings.catch_warnings():  # each candidate's own shortfall: its certificate says it
        warnings.simplefilter("ignore", UserWarning)
        alone = {label: _certified_result(dataset, selection, base, model_kwargs, groups)
                 for label, selection in own.items()}
    return BudgetChoice(chooser.chosen["owner"]["strategy"], result, pd.concat(tables, ignore_index=True), alone)
