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

import importlib

from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all
from .tabular import *  # noqa: F401,F403
from .tabular import __all__ as _tabular_all
from .plotting import plot_fronts, plot_history, read_reference_points, save_figure  # noqa: E402
from .benchmark import (  # noqa: E402
    Benchmark, FairDataset, get_benchmark, list_benchmarks, load_benchmark, register_benchmark, run,
)
from .search import EtaSearch, search_etas  # noqa: E402
from .sweeps import PAPER_ETAS, BudgetChoice, choose_under_budget, sweep  # noqa: E402
from . import core, metrics, tabular  # noqa: E402

__version__ = "0.1.0"

# The graph and vision modalities (torch_geometric; torchvision and timm) are
# imported on first use of one of their names, so tabular use does not pay
# for them. tests/test_package.py checks these lists against each package's __all__.
_LAZY: dict[str, tuple[str, ...]] = {
    "graph": (
        "GraphDataset", "FullGraph", "check_graph", "fairgnn_split", "nifty_split", "FairGNNGraph", "NiftyGraph",
        "GRAPH_DATASETS", "load_fairgnn_graph", "load_nba", "load_pokec", "load_nifty_graph", "load_bail",
        "load_graph", "GraphEncoder", "residual_gat", "register_gnn_body", "create_gnn_body", "list_gnn_bodies",
        "build_gnn",
        "PAPER_GRAPH_SETTINGS", "BAIL_SETTINGS", "paper_gnn", "run_graph", "NeighborBatches", "neighbor_batches",
        "neighbor_sampling_backend", "POKEC_Z_STATS", "pokec_like_graph",
    ),
    "vision": (
        "CelebA", "CelebAIndex", "CelebALoader", "CelebASplits", "read_celeba_index", "load_celeba",
        "default_transform", "IMAGENET_MEAN", "IMAGENET_STD", "ImageStore", "default_cache_dir", "read_image",
        "create_vision_model", "list_vision_fairness", "ConvResidualStack", "BLOCK_FAIRNESS",
        "PAPER_CELEBA_SETTINGS", "PAPER_CELEBA_COMMON", "paper_config", "run_vision",
    ),
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "core", "graph", "metrics", "tabular", "vision", "__version__",
    *_core_all, *_tabular_all, *_LAZY["graph"], *_LAZY["vision"],
    "Benchmark", "FairDataset", "register_benchmark", "get_benchmark", "list_benchmarks", "load_benchmark", "run",
    "sweep", "PAPER_ETAS", "choose_under_budget", "BudgetChoice", "EtaSearch", "search_etas",
    "plot_fronts", "plot_history", "read_reference_points", "save_figure",
]


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f".{_LAZY_NAMES[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    # the scikit-learn estimator is imported on first use, so scikit-learn stays optional
    if name == "FairBiNNClassifier":
        from .tabular.estimator import FairBiNNClassifier

        return FairBiNNClassifier
    raise AttributeError(f"module 'fairbinn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
