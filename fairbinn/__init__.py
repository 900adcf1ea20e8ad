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

    table = fairbinn.sweep("adult", etas="auto", seeds=[0, 1])  # one row per (strategy, eta, seed, epoch)
    fairbinn.accuracy_at_budgets(table)                         # chosen on validation, read on test
"""

from .core import *  # noqa: F401,F403
from .core import __all__ as _core_all
from .graph import *  # noqa: F401,F403
from .graph import __all__ as _graph_all
from .tabular import *  # noqa: F401,F403
from .tabular import __all__ as _tabular_all
from .vision import *  # noqa: F401,F403
from .vision import __all__ as _vision_all
from .plotting import plot_fronts, plot_history, read_reference_points, save_figure  # noqa: E402
from .search import EtaSearch, search_etas  # noqa: E402
from .sweeps import PAPER_ETAS, BudgetChoice, choose_under_budget, sweep  # noqa: E402
from . import core, graph, metrics, tabular, vision  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "core", "graph", "metrics", "tabular", "vision", "__version__",
    *_core_all, *_tabular_all, *_graph_all, *_vision_all,
    "sweep", "PAPER_ETAS", "choose_under_budget", "BudgetChoice", "EtaSearch", "search_etas",
    "plot_fronts", "plot_history", "read_reference_points", "save_figure",
]


def __getattr__(name: str):
    # the scikit-learn estimator is imported on first use, so scikit-learn stays optional
    if name == "FairBiNNClassifier":
        from .tabular.estimator import FairBiNNClassifier

        return FairBiNNClassifier
    raise AttributeError(f"module 'fairbinn' has no attribute {name!r}")
