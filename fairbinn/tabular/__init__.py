"""Tabular data: UCI Adult, Heritage Health, your own CSV or DataFrame, and the MLP backbone."""

from .adult import load_adult
from .csv import from_dataframe, load_csv
from .experiment import PAPER_FAIRNESS_LAYERS, TABULAR_DATASETS, load_tabular, paper_mlp, run_tabular
from .health import load_health
from .mlp import build_mlp
from .preprocess import TabularDataset, TabularEncoder
from .scoring import score_frame

__all__ = [
    "load_adult",
    "load_health",
    "load_tabular",
    "load_csv",
    "from_dataframe",
    "TABULAR_DATASETS",
    "PAPER_FAIRNESS_LAYERS",
    "TabularDataset",
    "TabularEncoder",
    "build_mlp",
    "paper_mlp",
    "run_tabular",
    "score_frame",
]
