"""The tabular benchmarks (Adult, Health): loaders by name, the paper's MLP, their registration."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from ..benchmark import Benchmark, register_benchmark, run
from ..core.config import TrainConfig
from ..core.data import Split
from ..core.model import FairModel
from ..core.trainer import TrainResult
from .adult import ADULT_SOURCE, load_adult
from .health import HEALTH_SOURCE, load_health
from .mlp import build_mlp
from .preprocess import TabularDataset

__all__ = ["TABULAR_DATASETS", "PAPER_FAIRNESS_LAYERS", "load_tabular", "paper_mlp", "run_tabular"]

TABULAR_DATASETS: dict[str, Callable[..., TabularDataset]] = {"adult": load_adult, "health": load_health}
PAPER_FAIRNESS_LAYERS = {"adult": 1, "health": 3}
"""Fairness layers in the paper's configuration of each dataset."""


def load_tabular(name: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> TabularDataset:
    """Load a tabular benchmark by (case-insensitive) name: "adult" or "health"."""
    try:
        loader = TABULAR_DATASETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown tabular dataset {name!r}; choose one of {sorted(TABULAR_DATASETS)}") from None
    return loader(data_dir, **kwargs)


def paper_mlp(
    data: TabularDataset,
    hidden_dims: Sequence[int] | None = None,
    fairness_position: int | None = None,
    num_fairness_layers: int | None = None,
    **kwargs: Any,
) -> FairModel:
    """The paper's MLP for ``data`` unless overridden.

    Defaults: two hidden layers as wide as the input, the fairness block after
    both (``fairness_position=2``), 1 fairness layer for Adult and 3 for
    Health, then the output layer. ``kwargs`` go to :func:`build_mlp`.
    """
    width = data.num_features
    return build_mlp(
        width,
        (width, width) if hidden_dims is None else hidden_dims,
        fairness_position=fairness_position,
        num_fairness_layers=(
            PAPER_FAIRNESS_LAYERS.get(data.name, 1) if num_fairness_layers is None else num_fairness_layers
        ),
        **kwargs,
    )


def run_tabular(
    data: str | TabularDataset,
    config: TrainConfig | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    generated: Split | None = None,
    **config_overrides: Any,
) -> TrainResult:
    """Train and evaluate one model on a tabular benchmark: :func:`fairbinn.run` for tables.

    Parameters
    ----------
    data : str or TabularDataset
        "adult", "health", or an already loaded dataset.
    config : TrainConfig, optional
        Training settings (default ``TrainConfig()``); ``config_overrides`` change single fields.
    data_dir : path, optional
        Data directory when ``data`` is a name.
    model_kwargs : dict, optional
        Passed to :func:`paper_mlp` (``hidden_dims``, ``fairness_position``,
        ``num_fairness_layers``, ``fairness_layer``, ``dropout``...).
    generated : Split, optional
        Generated training rows (same features), drawn beside the real ones by
        ``config.sampler="drfairness"``.

    The model is initialised after seeding with ``config.seed``, so a seed
    fixes initialisation, shuffling and dropout. The result's ``extra`` holds
    the dataset summary, the model's parameter counts and the wall time.
    """
    dataset = load_tabular(data, data_dir) if isinstance(data, str) else data
    return run(dataset, config, model_kwargs=model_kwargs, generated=generated, **config_overrides)


for _name, _loader, _source in (("adult", load_adult, ADULT_SOURCE), ("health", load_health, HEALTH_SOURCE)):
    register_benchmark(Benchmark(
        _name, "tabular", load=_loader, build_model=paper_mlp, stackable=True, dataset_type=TabularDataset,
        headline=lambda data, _: f"{data.name}: test metrics, {len(data.test)} rows, groups {data.group_names}",
        source=_source,
    ))
