"""A scikit-learn estimator for tabular data: ``FairBiNNClassifier`` (needs scikit-learn)."""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..core.config import TrainConfig
from ..core.data import Split, check_weights
from ..core.runtime import seed_everything
from ..core.trainer import Trainer, TrainResult
from ..sweeps import choose_under_budget
from .mlp import build_mlp
from .preprocess import TabularDataset, TabularEncoder

__all__ = ["FairBiNNClassifier"]

PAPER_ETA = 100.0
"""The eta of a run without a budget when none is given (the paper's tabular setting)."""


class FairBiNNClassifier(ClassifierMixin, BaseEstimator):
    """FairBiNN (or ERM / Lagrangian) MLP classifier with the scikit-learn API.

    ``fit(X, y, *, sensitive_features=A, sample_weight=None)``, ``predict``, ``predict_proba``,
    ``decision_function``, ``score`` (accuracy), ``get_params`` /
    ``set_params``; works in ``Pipeline``, ``GridSearchCV`` and ``clone``.

    Parameters
    ----------
    strategy : {"bilevel", "lagrangian", "erm"}, default "bilevel"
    eta : float, optional
        Weight of the fairness loss (BCE + eta * fairness). None (the
        default): searched automatically when a ``fairness_budget`` is given
        (see below), else the paper's 100. A number trains with that eta
        only. The fairness loss of ``constraint`` is the squared largest
        gap, within a minibatch, between the groups' mean predicted
        probabilities (``"dp"``: over all rows; ``"eopp"``: over the
        positive rows; ``"eo"``: the larger of the gaps over the positive
        and over the negative rows), so it lies in ``[0, 1]``. On Adult
        (batch 100) an unconstrained model's is about 0.04 for each of the
        three, against a BCE of about 0.3, so eta near 10 weighs the two
        alike, eta below 1 changes little, and the gap falls from the
        unconstrained level to about 0 between eta about 1 and 100. The
        automatic search covers 0 and 0.01 to 10000.
    constraint : {"dp", "eo", "eopp"}, default "dp"
    epochs, batch_size, lr, fairness_lr : default 50, 100, 1e-3, 1e-5
        The paper's tabular settings.
    hidden_dims : sequence of int, optional
        Hidden widths; default two layers as wide as the encoded input.
    num_fairness_layers : int, default 1
    fairness_layer : str, default "linear"
    leader_penalty : bool, default True
        See :class:`~fairbinn.core.config.TrainConfig` (True: the game of the
        authors' released code; False: the paper's Algorithm 1).
    sensitive : str or list of str, optional
        Column name(s) of a DataFrame ``X`` holding the sensitive attribute;
        several columns are combined into intersectional groups (every
        observed combination is a group). Instead, pass
        ``sensitive_features`` to :meth:`fit`.
    keep_sensitive : bool, default True
        Whether the ``sensitive`` columns also stay features (the paper keeps
        sex as a feature on Adult).
    validation_fraction : float, default 0.0
        Fraction of the training rows held out (stratified by label, seeded)
        to choose the epoch with the best validation accuracy; 0 keeps the
        last epoch.
    fairness_budget : float, optional
        Keep the most accurate checkpoint (on the held-out validation rows)
        whose ``budget_metric`` gap is within this budget; needs
        ``validation_fraction > 0``. With ``eta=None`` the candidates are
        every epoch of every eta of an automatic search, as
        :func:`fairbinn.choose_under_budget` does it on the estimator's own
        training / validation split (a coarse pass of eta 0, 0.01, 0.1, ...,
        10000 for a fifth of the epochs, then 8 etas inside the interval
        where the gap falls from the unconstrained level to ~0, for all the
        epochs: 16 models, each pass trained as one stack); with a number
        ``eta``, every epoch of that one model. ``certificate_`` (or
        ``result_.budget_met``) says whether one met it; if none did, a
        model is still kept (the least unfair candidate) and a warning says
        so.
    budget_metric : str, default "dp"
        "dp", "soft_dp", "eo", "eopp" or "soft_eo".
    confidence : float, optional
        How a budget is met. None (the default) means 0.95 with a budget:
        the chosen model's population gap is at most the budget with
        probability at least ``confidence`` over the draw of the validation
        rows, the choice among all candidates accounted for (a certified
        budget, see :class:`~fairbinn.core.selection.CertifiedSelector`).
        ``0``: the point-estimate rule (the validation gap itself at most the
        budget; no certificate). A number in ``[0, 1)``; other than None
        only with a budget.
    handle_unknown : {"error", "ignore"}, default "error"
        A category of a DataFrame column unseen in ``fit``: an error naming the
        column and value, or (``"ignore"``) all-zero indicators, as
        scikit-learn's ``OneHotEncoder`` does.
    random_state : int, default 0
        Seeds initialisation, shuffling and the validation split.
    device : str, default "cpu"

    Inputs: ``X`` of shape ``(n, d)``, a numeric array or a DataFrame,
    encoded as :func:`~fairbinn.from_dataframe` does, by a
    :class:`~fairbinn.tabular.TabularEncoder` fitted on the ``fit`` rows
    (bool and non-numeric columns one-hot, other columns not 0/1 z-scored).
    ``y`` holds two classes of any type; ``predict`` returns them. Fairness
    strategies need the sensitive attribute; ERM does not (and, having no
    eta, is never searched). Without it every row is in one group, and the
    fairness gaps of ``result_`` are NaN (undefined), not 0.

    Sample weights: ``fit(X, y, sample_weight=w)`` with ``w`` of shape
    ``(n,)``, finite, ``>= 0`` and not all zero, weighs the accuracy
    player's BCE: each minibatch's loss is ``sum(w_i * bce_i) / sum(w_i)``
    over its rows (0 for a minibatch whose weights are all zero). The
    fairness loss, the encoding of ``X`` (its z-scoring) and the epoch
    selection on ``validation_fraction``'s held-out rows stay unweighted;
    held-out rows' weights are not used. So the estimator serves as the
    inner estimator of fairlearn's ``ExponentiatedGradient`` /
    ``GridSearch`` (with ``strategy="erm"``, which needs no
    ``sensitive_features``), and, fitted, under ``ThresholdOptimizer(...,
    prefit=True, predict_method="predict_proba")``. Weights are not
    supported with the automatic eta search (``eta=None`` with a
    ``fairness_budget``): give ``eta``.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    groups_ : ndarray
        The sensitive groups seen in ``fit`` (tuples for several columns), in
        the order of :meth:`TabularEncoder.groups` (by name, ``"a & b"``).
    encoder_ : TabularEncoder
        The fitted encoding of ``X`` (``encoder_.feature_names_``); with
        ``sensitive`` columns it also maps them to the ``groups_`` indices
        (``encoder_.transform_groups(X)``). ``encoder_.to_dict()`` stores it
        as plain data.
    model_ : FairModel
        The chosen model (``predict`` uses it).
    eta_ : float
        The eta of ``model_``: the given ``eta``, the searched one, or 100.
    certificate_ : dict or None
        With a certified budget: ``{"confidence", "metric", "budget",
        "upper_bound", "certified", "method"}`` of the chosen checkpoint
        (``"rows_needed"`` too when nothing was certified); None without a
        budget or with ``confidence=0``.
    search_table_ : DataFrame or None
        With a searched eta: every candidate checkpoint (``eta``, ``epoch``,
        ``search``: "coarse" or "refined", validation metrics), as
        :func:`fairbinn.choose_under_budget` returns it; None otherwise.
    result_ : TrainResult
        Training history and validation metrics of the chosen model.
    n_features_in_, feature_names_in_ :
        As in scikit-learn (names only for a DataFrame).
    """

    def __init__(
        self,
        strategy: str = "bilevel",
        eta: float | None = None,
        constraint: str = "dp",
        epochs: int = 50,
        batch_size: int = 100,
        lr: float = 1e-3,
        fairness_lr: float = 1e-5,
        hidden_dims: Sequence[int] | None = None,
        num_fairness_layers: int = 1,
        fairness_layer: str = "linear",
        leader_penalty: bool = True,
        sensitive: str | Sequence[str] | None = None,
        keep_sensitive: bool = True,
        validation_fraction: float = 0.0,
        fairness_budget: float | None = None,
        budget_metric: str = "dp",
        confidence: float | None = None,
        handle_unknown: str = "error",
        random_state: int = 0,
        device: str = "cpu",
    ) -> None:
        self.strategy = strategy
        self.eta = eta
        self.constraint = constraint
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.fairness_lr = fairness_lr
        self.hidden_dims = hidden_dims
        self.num_fairness_layers = num_fairness_layers
        self.fairness_layer = fairness_layer
        self.leader_penalty = leader_penalty
        self.sensitive = sensitive
        self.keep_sensitive = keep_sensitive
        self.validation_fraction = validation_fraction
        self.fairness_budget = fairness_budget
        self.budget_metric = budget_metric
        self.confidence = confidence
        self.handle_unknown = handle_unknown
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags

    # -- inputs ---------------------------------------------------------------

    def _sensitive_columns(self) -> list[str]:
        if self.sensitive is None:
            return []
        return [self.sensitive] if isinstance(self.sensitive, str) else list(self.sensitive)

    def _split_sensitive(self, X: Any, sensitive_features: Any) -> tuple[Any, Any]:
        columns = self._sensitive_columns()
        if not columns:
            return X, sensitive_features
        if not isinstance(X, pd.DataFrame):
            raise ValueError(f"sensitive={self.sensitive!r} names columns, so X must be a pandas DataFrame")
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"sensitive column(s) {missing} not in X; it has {list(X.columns)}")
        if sensitive_features is not None:
            raise ValueError("give the sensitive attribute once: either sensitive= columns or sensitive_features=")
        features = X if self.keep_sensitive else X.drop(columns=columns)
        return features, X[columns]

    def _encode(self, X: Any, fit: bool) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            names = [str(c) for c in X.columns]
            if fit:
                self.feature_names_in_ = np.asarray(names, dtype=object)
                self.n_features_in_ = len(names)
            elif names != list(getattr(self, "feature_names_in_", [])):
                raise ValueError(
                    f"X has columns {names}; {type(self).__name__} was fitted with "
                    f"{list(getattr(self, 'feature_names_in_', []))}"
                )
        else:
            array = validate_data(self, X, reset=fit, dtype=np.float64)
            X = pd.DataFrame(array, columns=None if fit else self.encoder_.columns_)
        if fit:
            self.encoder_ = TabularEncoder(self.handle_unknown).fit(X)
        return self.encoder_.transform(X)

    def _groups(self, sensitive_features: Any, n: int, fit: bool) -> np.ndarray:
        if sensitive_features is None:
            if fit and str(self.strategy).lower() != "erm":
                raise ValueError(
                    f"the {self.strategy} strategy needs the sensitive attribute: pass sensitive_features= to "
                    "fit, or sensitive=<column name(s)> for a DataFrame X"
                )
            return np.zeros(n, dtype=np.int64)
        frame = pd.DataFrame(sensitive_features)
        what = f"sensitive column(s) {self._sensitive_columns()}" if self._sensitive_columns() else "sensitive_features"
        if len(frame) != n:
            raise ValueError(f"{what} has {len(frame)} rows but X has {n}")
        missing = frame.isna().any(axis=1).to_numpy()
        if missing.any():
            raise ValueError(f"missing values (NaN) in {int(missing.sum())} of {n} rows of {what}; "
                             "drop those rows or fill them in")
        codes, names, values = TabularEncoder.groups(frame)
        if self._sensitive_columns():
            self.encoder_.set_groups(self._sensitive_columns(), names)
        self.groups_ = np.empty(len(values), dtype=object)
        self.groups_[:] = values
        return codes

    # -- API --------------------------------------------------------------------

    def fit(self, X: Any, y: Any, *, sensitive_features: Any = None, sample_weight: Any = None
            ) -> "FairBiNNClassifier":
        """Train on ``X`` ``(n, d)`` and ``y`` ``(n,)`` (two classes); returns ``self``.

        ``sensitive_features``: the sensitive attribute ``(n,)`` or ``(n, c)``
        (needed unless ``strategy="erm"`` or ``sensitive`` names columns of
        ``X``). ``sample_weight``: optional weights ``(n,)``, finite, ``>= 0``,
        not all zero, of the training BCE only (the fairness loss, the
        encoding and the validation rows' epoch selection are unweighted; see
        the class docstring). None: every row weighs the same.
        """
        X, sensitive_features = self._split_sensitive(X, sensitive_features)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        features = self._encode(X, fit=True)
        y = column_or_1d(y, warn=True)
        if len(y) != len(features):
            raise ValueError(f"y has {len(y)} labels but X has {len(features)} rows")
        weights = _sample_weight(sample_weight, len(features))
        missing = pd.isna(y)
        if missing.any():
            raise ValueError(f"Input y contains NaN (missing labels) in {int(missing.sum())} of {len(y)} rows; "
                             "drop those rows or fill in their labels")
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(
                f"Only binary classification is supported by {type(self).__name__}; y has "
                f"{len(self.classes_)} class(es) ({type_of_target(y)})"
            )
        labels = (y == self.classes_[1]).astype(np.float32)
        groups = self._groups(sensitive_features, len(features), fit=True)
        if sensitive_features is None:
            self.groups_ = np.asarray([None], dtype=object)
        if self.fairness_budget is not None and not self.validation_fraction:
            raise ValueError("fairness_budget chooses the epoch on held-out validation rows; "
                             "set validation_fraction > 0")
        train, val = self._splits(features, labels, groups, weights)
        config = TrainConfig(
            strategy=self.strategy, eta=self._fixed_eta(), constraint=self.constraint, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, fairness_lr=self.fairness_lr,
            leader_penalty=self.leader_penalty, seed=self.random_state, device=self.device, progress=False,
            selection_metric="accuracy" if val is not None else None,
            fairness_budget=self.fairness_budget, budget_metric=self.budget_metric, confidence=self.confidence,
        )
        width = features.shape[1]
        if width == 0:
            raise ValueError("X has no feature columns")
        architecture = {"hidden_dims": (width, width) if self.hidden_dims is None else tuple(self.hidden_dims),
                        "num_fairness_layers": self.num_fairness_layers, "fairness_layer": self.fairness_layer}
        names = None if self.groups_[0] is None else [str(value) for value in self.groups_]
        self.search_table_ = None
        if self.eta is None and self.fairness_budget is not None and config.strategy != "erm":
            if weights is not None:
                raise ValueError("sample_weight is not supported with the automatic eta search (eta=None with a "
                                 "fairness_budget); give eta=...")
            self.result_ = self._search(config, train, val, names, architecture)
        else:
            seed_everything(self.random_state)
            model = build_mlp(width, architecture.pop("hidden_dims"), **architecture)
            self.result_ = Trainer(config).fit(model, train, val, group_names=names)
        self.model_ = self.result_.model
        self.model_.eval()
        self.eta_ = float(self.result_.config["eta"])
        self.certificate_ = self.result_.certificate
        return self

    def _fixed_eta(self) -> Any:
        """The eta of a run without a search: ``eta``, or the paper's 100 for None."""
        if self.eta is None:
            return PAPER_ETA
        if isinstance(self.eta, numbers.Real) and not isinstance(self.eta, bool):
            return float(self.eta)
        return self.eta  # TrainConfig names the problem

    def _search(self, config: TrainConfig, train: Split, val: Split, names: list[str],
                architecture: dict[str, Any]) -> TrainResult:
        """Search eta and choose the model under the budget, as :func:`fairbinn.choose_under_budget` does, on
        this estimator's own training / validation rows (no test split)."""
        columns = self._sensitive_columns()
        dataset = TabularDataset(
            name=type(self).__name__, train=train, val=val, test=None,
            feature_names=list(self.encoder_.feature_names_), group_names=names,
            sensitive_attribute=" & ".join(map(str, columns)) if columns else "sensitive_features", label="y",
            encoder=self.encoder_,
        )
        choice = choose_under_budget(dataset, config.strategy, self.fairness_budget,
                                     budget_metric=self.budget_metric, seed=self.random_state, config=config,
                                     model_kwargs=architecture)
        self.search_table_ = choice.table
        return choice.result

    def _splits(self, x: np.ndarray, y: np.ndarray, s: np.ndarray,
                w: np.ndarray | None = None) -> tuple[Split, Split | None]:
        """The training split (with the weights ``w`` of its rows) and the held-out validation split
        (unweighted), or None without ``validation_fraction``."""
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if self.validation_fraction == 0:
            return Split.from_arrays(x, y, s, name="training data", w=w), None
        rng = np.random.default_rng(self.random_state)
        val = np.zeros(len(y), dtype=bool)
        for label in (0, 1):
            rows = rng.permutation(np.flatnonzero(y == label))
            val[rows[: int(round(len(rows) * self.validation_fraction))]] = True
        return (Split.from_arrays(x[~val], y[~val], s[~val], name="training data",
                                  w=None if w is None else w[~val]),
                Split.from_arrays(x[val], y[val], s[val], name="validation data"))

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits, shape ``(n,)``: positive means ``classes_[1]``."""
        check_is_fitted(self, "model_")
        X, _ = self._split_sensitive(X, None)
        features = torch.from_numpy(self._encode(X, fit=False))
        device = next(self.model_.parameters()).device
        with torch.inference_mode():
            return self.model_(features.to(device)).float().cpu().numpy().astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(n, 2)``, columns in the order of ``classes_``."""
        positive = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes, shape ``(n,)``: ``classes_[1]`` where the probability is >= 0.5."""
        positive = self.decision_function(X) >= 0
        return self.classes_[positive.astype(int)]


def _sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` as float64 weights ``(n,)``, checked (finite, ``>= 0``, not all zero); None for None."""
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"sample_weight must be numeric: {error}") from None
    check_weights(torch.tensor(weights), n, name="sample_weight", rows="rows in X")
    return weights
