"""The modality-independent core: model, fairness layers, constraints, strategies, samplers, trainer, metrics."""

from . import certify, metrics
from .config import (
    CheckpointConfig,
    FairnessConfig,
    FollowerConfig,
    GameConfig,
    OptimConfig,
    RuntimeConfig,
    SelectionConfig,
    StackelbergConfig,
    TrainConfig,
)
from .constraints import (
    DemographicParity,
    EqualizedOdds,
    EqualOpportunity,
    FairnessConstraint,
    RateSurrogate,
    ReleasedDemographicParity,
    create_constraint,
    list_constraints,
    register_constraint,
)
from .data import Batch, Split, TensorLoader
from .datadir import DataFilesNotFoundError, resolve_data_dir
from .drfairness import DrFairnessConfig, DrFairnessSampler
from .fairness_layers import (
    LinearStack,
    ResidualStack,
    create_fairness_layer,
    list_fairness_layers,
    register_fairness_layer,
)
from .model import FairModel
from .postprocess import GroupThresholds, ThresholdedModel, thresholds_from_scores, thresholds
from .pareto import DP_BUDGETS, accuracy_at_budgets, area_over_curve, pareto_front
from .runtime import resolve_device, seed_everything
from .saving import load_model, read_saved, records_build, save_model
from .selection import EpochSelector
from .stacked import NotStackableError, register_stacker, stack_models
from .strategies import (
    ERM,
    Bilevel,
    Lagrangian,
    Stackelberg,
    Strategy,
    create_strategy,
    is_bilevel,
    is_stackelberg,
    list_strategies,
    register_strategy,
)
from .trainer import Trainer, TrainResult

__all__ = [
    "TrainConfig",
    "OptimConfig",
    "GameConfig",
    "FollowerConfig",
    "StackelbergConfig",
    "FairnessConfig",
    "SelectionConfig",
    "CheckpointConfig",
    "RuntimeConfig",
    "FairnessConstraint",
    "DemographicParity",
    "EqualizedOdds",
    "EqualOpportunity",
    "ReleasedDemographicParity",
    "RateSurrogate",
    "create_constraint",
    "list_constraints",
    "register_constraint",
    "Batch",
    "Split",
    "TensorLoader",
    "DataFilesNotFoundError",
    "resolve_data_dir",
    "DrFairnessConfig",
    "DrFairnessSampler",
    "LinearStack",
    "ResidualStack",
    "create_fairness_layer",
    "list_fairness_layers",
    "register_fairness_layer",
    "FairModel",
    "DP_BUDGETS",
    "accuracy_at_budgets",
    "area_over_curve",
    "pareto_front",
    "NotStackableError",
    "register_stacker",
    "stack_models",
    "resolve_device",
    "seed_everything",
    "save_model",
    "load_model",
    "read_saved",
    "records_build",
    "EpochSelector",
    "Strategy",
    "ERM",
    "Lagrangian",
    "Bilevel",
    "Stackelberg",
    "is_bilevel",
    "is_stackelberg",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "Trainer",
    "TrainResult",
    "thresholds",
    "thresholds_from_scores",
    "GroupThresholds",
    "ThresholdedModel",
]
