"""Benchmarks: one registered record per dataset, and one ``run`` from a name (or a loaded dataset) to a result.

A :class:`Benchmark` says everything the command line, :func:`fairbinn.sweep`,
:func:`fairbinn.download` and :func:`run` need to know about a dataset: how
to load it, the paper's training settings for it, the model to build, how
its splits become loaders, and where its files come from. Each modality
registers its benchmarks beside its loaders (``fairbinn/tabular/experiment.py``:
adult, health; ``fairbinn/graph/experiment.py``: nba, pokec_z, pokec_n;
``fairbinn/vision/experiment.py``: celeba); the graph and vision ones are
registered when their modality is first imported, which a look-up does
itself. Adding a dataset is one :func:`register_benchmark` call, e.g. a CSV
file with the tabular model (see ``examples/csv_benchmark.py``)::

    from fairbinn import load_csv, paper_mlp
    from fairbinn.benchmark import Benchmark, register_benchmark

    register_benchmark(Benchmark(
        "loans", "tabular",
        load=lambda data_dir=None, seed=0: load_csv("loans.csv", "default", ["gender"], seed=seed),
        build_model=paper_mlp,
    ))
    fairbinn.run("loans", strategy="bilevel", eta=5)     # or: fairbinn train --data loans

A loaded dataset follows the :class:`FairDataset` protocol (``name``,
``num_features``, ``group_names``, ``train`` / ``val`` / ``test`` and
``summary()``); a dataset passed to :func:`run` or :func:`~fairbinn.sweep`
uses the benchmark registered under its name, else the first one
registered for its type (so any ``TabularDataset`` trains the paper's MLP).
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from .core.config import TrainConfig
from .core.datadir import DatasetSource
from .core.model import FairModel
from .core.registry import Registry
from .core.runtime import seed_everything
from .core.trainer import Trainer, TrainResult

__all__ = ["Benchmark", "FairDataset", "register_benchmark", "get_benchmark", "list_benchmarks",
           "load_benchmark", "run"]


@runtime_checkable
class FairDataset(Protocol):
    """What every loaded dataset offers, whatever its modality.

    ``summary()`` returns at least ``name``, ``label``, ``sensitive_attribute``,
    ``groups``, ``examples`` (``{"train": n, "val": n, "test": n}``: rows,
    labelled nodes or images) and, for each split name, a dict with
    ``positive_rate`` and ``group_shares``; each modality adds its own keys.
    """

    name: str

    @property
    def num_features(self) -> int: ...

    @property
    def group_names(self) -> list[str]: ...

    def summary(self) -> dict[str, Any]: ...


def _splits(dataset: Any, config: TrainConfig) -> tuple[Any, Any, Any]:
    return dataset.train, dataset.val, dataset.test


def _headline(dataset: Any, model_kwargs: dict[str, Any]) -> str:
    test = dataset.summary()["examples"]["test"]
    return f"{dataset.name}: test metrics, {test} test examples, groups {dataset.group_names}"


@dataclass(frozen=True)
class Benchmark:
    """One dataset and how to train on it.

    Attributes
    ----------
    name : str
        Registry key, lower case (``fairbinn train --data NAME``; ``-`` and
        upper case are accepted on look-up).
    modality : str
        "tabular", "graph", "vision" or your own; it decides which flags of
        the command line apply.
    load : callable
        ``load(data_dir=None, **data_kwargs) -> dataset`` (a :class:`FairDataset`).
    build_model : callable
        ``build_model(dataset, **model_kwargs) -> FairModel``.
    paper_settings : callable, default: none
        ``paper_settings(dataset) -> dict`` of :class:`TrainConfig` fields the
        paper uses for this dataset; the default configuration of a run is
        ``TrainConfig(**paper_settings(dataset))``.
    loaders : callable, default: the dataset's ``train``, ``val``, ``test``
        ``loaders(dataset, config, **loader_kwargs) -> (train, val, test)``,
        anything :class:`~fairbinn.core.trainer.Trainer.fit` takes.
    describe : callable, optional
        ``describe(result, dataset, loaders, model_kwargs) -> dict`` of extra
        entries for ``result.extra``.
    headline : callable, default: name, test examples and groups
        ``headline(dataset, model_kwargs) -> str``: the first words of the
        command line's results title.
    dataset_type : type, optional
        The loaded datasets this benchmark serves: a dataset of this type
        without a benchmark of its own name uses the first benchmark
        registered for its type.
    stackable : bool, default False
        :func:`fairbinn.sweep` may train this benchmark's models as one stack
        (:mod:`fairbinn.core.stacked`).
    source : DatasetSource, optional
        Files, URLs, sizes and sha256s for :func:`fairbinn.download` (or the
        manual steps where a licence forbids fetching).
    """

    name: str
    modality: str
    load: Callable[..., Any]
    build_model: Callable[..., FairModel]
    paper_settings: Callable[[Any], dict[str, Any]] = field(default=lambda dataset: {})
    loaders: Callable[..., tuple[Any, Any, Any]] = _splits
    describe: Callable[..., dict[str, Any]] | None = None
    headline: Callable[[Any, dict[str, Any]], str] = _headline
    dataset_type: type | None = None
    stackable: bool = False
    source: DatasetSource | None = None

    def paper_config(self, dataset: Any) -> TrainConfig:
        """``TrainConfig`` with the paper's settings for ``dataset``."""
        return TrainConfig(**self.paper_settings(dataset))


_BENCHMARKS: Registry[Benchmark] = Registry("dataset")
_PENDING = ["fairbinn.tabular.experiment", "fairbinn.graph.experiment", "fairbinn.vision.experiment"]
"""Modules registering benchmarks, imported on the first look-up that needs them (graph and vision are heavy)."""


def _key(name: str) -> str:
    return name.lower().replace("-", "_")


def register_benchmark(benchmark: Benchmark, *, overwrite: bool = False) -> Benchmark:
    """Add ``benchmark`` under its name; an existing name needs ``overwrite=True``."""
    return _BENCHMARKS.register(_key(benchmark.name), benchmark, overwrite=overwrite)


def _import_pending() -> bool:
    """Import the next module that registers benchmarks; False when none is left."""
    if not _PENDING:
        return False
    importlib.import_module(_PENDING.pop(0))
    return True


def list_benchmarks() -> list[str]:
    """Names of the registered benchmarks (the built-in ones first)."""
    while _import_pending():
        pass
    return [benchmark.name for benchmark in _BENCHMARKS.values()]


def get_benchmark(data: str | Any) -> Benchmark:
    """The benchmark of a name (case-insensitive) or of a loaded dataset."""
    if isinstance(data, str):
        while _key(data) not in _BENCHMARKS and _import_pending():
            pass
        return _BENCHMARKS.get(_key(data))
    while True:
        name = _key(str(getattr(data, "name", "")))
        own = _BENCHMARKS.get(name) if name in _BENCHMARKS else None
        if own is not None and own.dataset_type is not None and isinstance(data, own.dataset_type):
            return own
        for benchmark in _BENCHMARKS.values():
            if benchmark.dataset_type is not None and isinstance(data, benchmark.dataset_type):
                return benchmark
        if not _import_pending():
            raise TypeError(f"no benchmark trains a {type(data).__name__}; pass a dataset name or a loaded "
                            f"dataset of a registered benchmark ({', '.join(list_benchmarks())})")


def load_benchmark(name: str, data_dir: str | os.PathLike | None = None, **data_kwargs: Any) -> Any:
    """Load a registered benchmark's dataset by name."""
    return get_benchmark(name).load(data_dir, **data_kwargs)


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, list, tuple, type(None))) else str(value)


def run(
    data: str | Any,
    config: TrainConfig | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    data_kwargs: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    loader_kwargs: dict[str, Any] | None = None,
    generated: Any = None,
    **config_overrides: Any,
) -> TrainResult:
    """Train and evaluate one model on a benchmark.

    Parameters
    ----------
    data : str or dataset
        A registered benchmark's name (:func:`list_benchmarks`) or a loaded dataset.
    config : TrainConfig, optional
        Default: the benchmark's paper settings for the dataset;
        ``config_overrides`` change single fields.
    data_dir : path, optional
        Data directory when ``data`` is a name.
    data_kwargs, model_kwargs, loader_kwargs : dict, optional
        Passed to the benchmark's ``load`` (when ``data`` is a name),
        ``build_model`` and ``loaders``.
    generated : optional
        Generated training examples for ``config.sampler="drfairness"``.

    The model is initialised after seeding with ``config.seed``, so a seed
    fixes initialisation, shuffling and dropout. The result's ``extra`` holds
    the dataset summary, the model's arguments and parameter counts, the wall
    time, and what the benchmark's ``describe`` adds.
    """
    benchmark = get_benchmark(data)
    dataset = benchmark.load(data_dir, **(data_kwargs or {})) if isinstance(data, str) else data
    config = config or benchmark.paper_config(dataset)
    if config_overrides:
        config = config.replace(**config_overrides)
    model_kwargs = model_kwargs or {}
    loaders = benchmark.loaders(dataset, config, **(loader_kwargs or {}))
    seed_everything(config.seed)
    model = benchmark.build_model(dataset, **model_kwargs)
    start = time.perf_counter()
    result = Trainer(config).fit(model, *loaders, generated=generated,
                                 group_names=getattr(dataset, "group_names", None))
    if benchmark.describe is not None:
        result.extra.update(benchmark.describe(result, dataset, loaders, model_kwargs))
    result.extra.update(
        dataset=dataset.summary(),
        model={**{k: _plain(v) for k, v in model_kwargs.items()}, **model.parameter_counts(), "repr": repr(model)},
        wall_time_s=time.perf_counter() - start,
    )
    return result
