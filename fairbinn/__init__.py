"""fairbinn: fairness-aware deep learning with FairBiNN's Stackelberg (bilevel) training.

Quick start::

    import fairbinn
    data = fairbinn.load_adult()                      # reads $FAIRBINN_DATA/adult/
    model = fairbinn.paper_mlp(data)                  # 2 FC -> 1 fairness layer -> output
    result = fairbinn.Trainer(strategy="bilevel", eta=5, fairness_budget=0.05).fit(
        model, data.train, data.val, data.test)       # the most accurate epoch with validation DP <= 0.05
    print(result.test, result.budget_met)             # accuracy, auc, ap, dp, eo, ...

    choice = fairbinn.choose_under_budget(data, "bilevel", 0.05)   # eta searched, every epoch a candidate
    fairbinn.save_model(choice.result.model, "model_dir")          # fairbinn.load_model("model_dir")

    nba = fairbinn.load_nba()                         # a PyG graph with FairGNN's split
    result = fairbinn.run_graph(nba, backbone="gat", strategy="bilevel", selection_metric=None)

    celeba = fairbinn.load_celeba("Smiling", "Male", image_size=64)   # pre-resized, memory-mapped images
    result = fairbinn.run_vision(celeba, strategy="bilevel")          # ResNet-18 | Linear+ReLU | fc

    result = fairbinn.run("health", strategy="lagrangian", eta=5)   # any registered benchmark by name
    table = fairbinn.sweep("adult", etas="auto", seeds=[0, 1])  # one row per (strategy, eta, seed, epoch)
    fairbinn.accuracy_at_budgets(table)                         # chosen on validation, read on test
"""

import ast as _ast
import importlib as _importlib
import importlib.util as _importlib_util
import sys as _sys
from functools import cache as _cache

from . import core, metrics, tabular
from .benchmark import list_benchmarks, load_benchmark, run
from .core import (
    FairModel, Trainer, TrainConfig, TrainResult, accuracy_at_budgets, load_model, read_saved, save_model, thresholds,
)
from .plotting import plot_fronts
from .sweeps import BudgetChoice, choose_under_budget, sweep
from .tabular import build_mlp, from_dataframe, load_adult, load_csv, load_health, paper_mlp, run_tabular, score_frame

__version__ = "0.1.0"

# The graph and vision modalities (torch_geometric; torchvision and timm) are
# imported on first use of one of their names, so tabular use does not pay
# for them; the scikit-learn estimator likewise, so scikit-learn stays optional.
_LAZY_MODULES = ("graph", "vision")
_LAZY: dict[str, str] = {
    "load_nba": "graph", "load_bail": "graph", "build_gnn": "graph", "run_graph": "graph",
    "load_celeba": "vision", "create_vision_model": "vision", "run_vision": "vision",
    "FairBiNNClassifier": "tabular.estimator",
}

__all__ = [
    "__version__", "core", "tabular", "graph", "vision", "metrics",
    # data
    "load_adult", "load_health", "load_csv", "from_dataframe", "load_nba", "load_bail", "load_celeba",
    "list_benchmarks", "load_benchmark",
    # models
    "FairModel", "paper_mlp", "build_mlp", "build_gnn", "create_vision_model",
    # training
    "TrainConfig", "Trainer", "TrainResult", "run", "run_tabular", "run_graph", "run_vision",
    # sweeps, budgets and plots
    "sweep", "choose_under_budget", "BudgetChoice", "accuracy_at_budgets", "plot_fronts",
    # deployment
    "save_model", "load_model", "read_saved", "thresholds", "score_frame", "FairBiNNClassifier",
]

# Every other public name lives in one of these (first listed wins); `fairbinn.<name>`
# for one of them raises an ImportError that says where to import it from.
_SUBPACKAGES = ("core", "tabular", "graph", "vision", "benchmark", "sweeps", "search", "plotting")


def _public_names(module: str) -> list[str]:
    """``fairbinn.<module>.__all__``; read from the source when the module is not imported yet, so importing nothing."""
    loaded = _sys.modules.get(f"{__name__}.{module}")
    if loaded is not None:
        return list(loaded.__all__)
    origin = _importlib_util.find_spec(f"{__name__}.{module}").origin
    with open(origin, encoding="utf-8") as file:
        tree = _ast.parse(file.read(), origin)
    for node in tree.body:
        if isinstance(node, _ast.Assign) and any(getattr(target, "id", None) == "__all__" for target in node.targets):
            return list(_ast.literal_eval(node.value))
    raise RuntimeError(f"{origin} defines no literal __all__")


@_cache
def _homes() -> dict[str, str]:
    """Each public name of a subpackage that is not at the top level -> the module to import it from."""
    homes: dict[str, str] = {}
    for module in _SUBPACKAGES:
        for name in _public_names(module):
            if name not in __all__:
                homes.setdefault(name, f"{__name__}.{module}")
    return homes


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    home = _homes().get(name)
    if home is not None:
        # an ImportError (not AttributeError) so that `from fairbinn import <name>` shows this message too
        raise ImportError(f"fairbinn.{name} moved: import it from {home} (from {home} import {name})", name=__name__)
    raise AttributeError(f"module 'fairbinn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
