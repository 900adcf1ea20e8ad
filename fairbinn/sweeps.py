"""One call for a whole accuracy-fairness trade-off: strategies x etas x seeds.

``sweep`` trains every (strategy, eta, seed) model of one dataset and returns
a table with one row per model and its selected epoch. On tabular data the
models of one strategy are trained together as a stack (see
:mod:`fairbinn.core.stacked`): one pass over each minibatch updates all of
them, and each model's results equal those of training it alone with the
same seed (up to floating-point rounding). Graphs, images and networks that
cannot be stacked (dropout > 0, unknown layers) are trained one at a time.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Sequence

import pandas as pd

from .core.config import STRATEGY_NAMES, TrainConfig
from .core.runtime import seed_everything
from .core.stacked import NotStackableError, StackedTrainer, stack_models
from .core.trainer import TrainResult
from .graph.dataset import GraphDataset
from .graph.datasets import GRAPH_DATASETS, load_graph
from .graph.experiment import PAPER_GRAPH_SETTINGS, run_graph
from .tabular.experiment import TABULAR_DATASETS, load_tabular, paper_mlp, run_tabular
from .tabular.preprocess import TabularDataset
from .vision.celeba import CelebASplits
from .vision.experiment import paper_config, run_vision

__all__ = ["sweep", "PAPER_ETAS", "SWEEP_COLUMNS"]

PAPER_ETAS = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
"""The eta grid of the reproduction report."""

SWEEP_COLUMNS = ("strategy", "eta", "seed", "epoch", "selection")
"""The columns that identify a point; then ``val_<metric>``, ``test_<metric>``,
``train_time_s`` and ``stack_size``."""


def _load(data: Any, data_dir: str | os.PathLike | None) -> TabularDataset | GraphDataset | CelebASplits:
    if isinstance(data, (TabularDataset, GraphDataset, CelebASplits)):
        return data
    if not isinstance(data, str):
        raise TypeError(f"data must be a dataset name or a loaded dataset, got {type(data).__name__}")
    name = data.lower().replace("-", "_")
    if name in TABULAR_DATASETS:
        return load_tabular(name, data_dir)
    if name in GRAPH_DATASETS:
        return load_graph(name, data_dir)
    raise ValueError(
        f"unknown dataset {data!r} for a sweep; use {sorted(TABULAR_DATASETS) + sorted(GRAPH_DATASETS)}, "
        "or pass loaded CelebA splits (fairbinn.load_celeba)"
    )


def _default_config(dataset: Any) -> TrainConfig:
    if isinstance(dataset, GraphDataset):
        return TrainConfig(**PAPER_GRAPH_SETTINGS)
    if isinstance(dataset, CelebASplits):
        return paper_config(dataset.target)
    return TrainConfig()


def _row(result: TrainResult, strategy: str, seconds: float, stack_size: int) -> dict[str, Any]:
    config = result.config
    return {
        "strategy": strategy,
        "eta": config["eta"],
        "seed": config["seed"],
        "epoch": result.selected_epoch,
        "selection": config["selection_metric"] or "last",
        **{f"val_{k}": v for k, v in (result.val or {}).items()},
        **{f"test_{k}": v for k, v in (result.test or {}).items()},
        "train_time_s": seconds,
        "stack_size": stack_size,
    }


def sweep(
    data: str | TabularDataset | GraphDataset | CelebASplits,
    strategies: Sequence[str] = ("bilevel", "lagrangian", "erm"),
    etas: Sequence[float] = PAPER_ETAS,
    seeds: Sequence[int] = (0,),
    *,
    config: TrainConfig | None = None,
    data_dir: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backbone: str = "gcn",
    stack: bool = True,
    max_stack: int | None = None,
    fused_adam: bool = False,
    **config_overrides: Any,
) -> pd.DataFrame:
    """Train every (strategy, eta, seed) model on one dataset; one row per model.

    Parameters
    ----------
    data : str or loaded dataset
        "adult", "health", "nba", "pokec_z", "pokec_n", or a loaded
        ``TabularDataset``, ``GraphDataset`` or ``CelebASplits``.
    strategies : sequence of str, default ("bilevel", "lagrangian", "erm")
        ERM ignores eta and is trained once per seed (its rows have eta 0).
    etas : sequence of float, default :data:`PAPER_ETAS`
    seeds : sequence of int, default (0,)
        Each seed fixes a model's initialisation and shuffling, as in
        :func:`fairbinn.run_tabular` / :func:`fairbinn.run_graph`.
    config : TrainConfig, optional
        Shared settings; default the paper's for the dataset (tabular:
        ``TrainConfig()``, graphs: ``PAPER_GRAPH_SETTINGS``, CelebA:
        ``paper_config(target)``), then ``config_overrides``. Its
        ``selection_metric`` picks each model's epoch on validation (default
        validation accuracy; ``None``: the last epoch).
    model_kwargs : dict, optional
        Passed to ``paper_mlp`` / ``paper_gnn`` / ``create_vision_model``.
    backbone : str, default "gcn"
        GNN body for graph data.
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

    Returns
    -------
    DataFrame, one row per model: ``strategy``, ``eta``, ``seed``, ``epoch``
    (the selected one), ``selection`` (the metric that chose it), then
    ``val_<metric>`` and ``test_<metric>`` for each metric of
    :func:`~fairbinn.core.metrics.binary_fairness_report` (accuracy, auc, ap,
    dp, eo, eopp, soft_dp, soft_eo), ``train_time_s`` (wall time of training
    and per-epoch validation; for a stack, the stack's time divided by its
    size) and ``stack_size`` (1 for a model trained alone). Test metrics are
    those of the selected epoch only.
    """
    unknown = [s for s in strategies if s not in STRATEGY_NAMES]
    if unknown or not strategies:
        raise ValueError(f"strategies must be a non-empty list of {STRATEGY_NAMES}; got {list(strategies)}")
    if not seeds:
        raise ValueError("seeds must not be empty")
    if max_stack is not None and (not isinstance(max_stack, int) or max_stack < 1):
        raise ValueError(f"max_stack must be a positive integer, got {max_stack!r}")
    if any(s != "erm" for s in strategies) and not etas:
        raise ValueError("etas must not be empty")
    dataset = _load(data, data_dir)
    if (config and config.checkpoint_dir) or config_overrides.get("checkpoint_dir"):
        raise ValueError("sweep does not write checkpoints: every model would share checkpoint_dir")
    base = config or _default_config(dataset)
    if config_overrides:
        base = base.replace(**config_overrides)
    rows: list[dict[str, Any]] = []
    for strategy in dict.fromkeys(strategies):
        pairs = [(eta, seed) for seed in seeds for eta in ((0.0,) if strategy == "erm" else etas)]
        strategy_config = base.replace(strategy=strategy)
        size = len(pairs) if max_stack is None else max_stack
        for begin in range(0, len(pairs), size):
            chunk = pairs[begin : begin + size]
            rows += _train_chunk(dataset, strategy_config, chunk, stack, fused_adam, model_kwargs, backbone)
    return pd.DataFrame(rows)


def _train_chunk(dataset, config, pairs, stack, fused_adam, model_kwargs, backbone) -> list[dict[str, Any]]:
    if stack and isinstance(dataset, TabularDataset):
        try:
            return _train_stacked(dataset, config, pairs, fused_adam, model_kwargs)
        except NotStackableError as reason:
            warnings.warn(f"training {len(pairs)} models one at a time: {reason}", stacklevel=3)
    rows = []
    for eta, seed in pairs:
        start = time.perf_counter()
        result = _train_one(dataset, config.replace(eta=float(eta), seed=int(seed)), model_kwargs, backbone)
        rows.append(_row(result, config.strategy, time.perf_counter() - start, 1))
    return rows


def _tabular_model(dataset: TabularDataset, seed: int, model_kwargs):
    seed_everything(seed)
    return paper_mlp(dataset, **(model_kwargs or {}))


def _train_stacked(dataset, config, pairs, fused_adam, model_kwargs) -> list[dict[str, Any]]:
    models = [_tabular_model(dataset, seed, model_kwargs) for _, seed in pairs]
    stacked = stack_models(models)
    trainer = StackedTrainer(
        config, [eta for eta, _ in pairs], [seed for _, seed in pairs],
        adam_kwargs={"fused": True} if fused_adam else None,
    )
    start = time.perf_counter()
    results = trainer.fit(stacked, dataset.train, dataset.val, dataset.test)
    share = (time.perf_counter() - start) / len(pairs)
    return [_row(result, config.strategy, share, len(pairs)) for result in results]


def _train_one(dataset, config: TrainConfig, model_kwargs, backbone) -> TrainResult:
    if isinstance(dataset, TabularDataset):
        return run_tabular(dataset, config, model_kwargs=model_kwargs)
    if isinstance(dataset, GraphDataset):
        return run_graph(dataset, config, backbone=backbone, model_kwargs=model_kwargs)
    return run_vision(dataset, config, model_kwargs=model_kwargs)
