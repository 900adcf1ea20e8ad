"""Training configuration shared by the trainer and the strategies."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from .constraints import NORMS, SURROGATES, FairnessConstraint, create_constraint
from .data import UniformConfig
from .drfairness import DrFairnessConfig
from .metrics import GAP_METRICS, REPORT_KEYS
from .registry import Registry
from .strategies import is_bilevel, is_stackelberg, resolve_strategy

__all__ = ["TrainConfig", "STRATEGY_NAMES", "ORDERS", "SAMPLERS", "FOLLOWER_OPTIMIZERS", "HYPERGRADIENTS"]

STRATEGY_NAMES = ("erm", "lagrangian", "bilevel", "stackelberg")
"""The built-in strategies; ``register_strategy`` adds more, so validation asks
:func:`~fairbinn.core.strategies.list_strategies`, never this tuple."""
ORDERS = ("follower_first", "leader_first", "simultaneous")
FOLLOWER_OPTIMIZERS = ("sgd", "adam")
"""How the follower steps (``TrainConfig.follower_optimizer``): plain SGD (the default), whose step is
``fairness_lr`` times the gradient and so scales with eta, or Adam, whose step is about ``fairness_lr``
whatever eta is."""
HYPERGRADIENTS = ("unrolled", "implicit")
"""How the ``stackelberg`` leader differentiates the follower's response (``TrainConfig.hypergradient``)."""
SAMPLERS: Registry[type] = Registry("sampler", {"uniform": UniformConfig, "drfairness": DrFairnessConfig})
"""Ways of drawing training batches (``TrainConfig.sampler``): each name's settings class.

A settings class is a frozen dataclass with a ``name``, ``adaptive`` (whether
its draws depend on the model), ``settings()`` (plain values for
``to_dict``) and ``build(train, val, generated, batch_size=, seed=)``, which
returns the run's :class:`~fairbinn.core.data.TrainingSampler`."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides how a model is trained.

    Attributes
    ----------
    strategy : {"erm", "lagrangian", "bilevel", "stackelberg"} or a registered name, default "bilevel"
        ``erm``: all parameters minimise BCE. ``lagrangian``: all parameters
        minimise BCE + eta * fairness loss. ``bilevel`` (FairBiNN): the
        follower (fairness layers) steps on eta * fairness loss with its own
        optimizer, the leader (everything else) on BCE + eta * fairness loss
        (the game of the authors' released code; ``leader_penalty=False``
        gives the leader BCE alone, as the paper's Algorithm 1 writes it).
        ``stackelberg``: the same game, with an anticipating leader whose
        gradient includes the follower's response to it (see ``hypergradient``
        and :class:`~fairbinn.core.strategies.Stackelberg`).
        ``register_strategy`` adds names; names are case-insensitive and the
        field holds the registered (lower-case) name.
    eta : float, default 100.0
        Weight of the fairness loss (>= 0). Ignored by ``erm``.
    constraint : str or FairnessConstraint, default "dp"
        Fairness constraint: a name ("dp", "eo", "eopp"; see
        ``list_constraints()``, ``register_constraint``) or a constraint object.
    constraint_norm : {"squared", "absolute"}, default "squared"
        Squared or absolute group gap as the fairness loss.
    surrogate : {"score", "rate"}, default "score"
        What the constraint compares between groups: the predicted
        probabilities themselves (``"score"``, soft DP / EO / EOpp), or
        ``"rate"``, a differentiable surrogate of the thresholded decision
        ``sigmoid((p - threshold) / temperature)`` (``threshold`` is the
        metrics' threshold below), whose gap approaches the thresholded gap
        (DP, EO, EOpp) as ``temperature`` goes to 0. Works for every
        constraint and strategy (see :class:`~fairbinn.core.constraints.RateSurrogate`).
    temperature : float, default 0.1
        Width of the rate surrogate's step, in probability units (> 0). Used
        with ``surrogate="rate"`` only.
    epochs : int, default 50
    batch_size : int, default 100
        Used when the trainer builds loaders from :class:`~fairbinn.core.data.Split` objects.
    lr : float, default 1e-3
        Adam learning rate of the leader (of all parameters for erm / lagrangian).
    fairness_lr : float, default 1e-5
        Learning rate of the follower (bilevel and stackelberg only), and the
        step size of the follower's anticipated gradient steps (stackelberg).
    lr_decay, fairness_lr_decay : float, default 1.0
        Per-epoch exponential decay factors (``ExponentialLR`` gamma); 1.0 is none.
    order : {"follower_first", "leader_first", "simultaneous"}, default "follower_first"
        Bilevel update order in a step: follower first as the authors' released
        code does, leader first as the paper's Algorithm 1 writes it, or
        ``"simultaneous"``: one forward pass, the follower's gradient of
        eta * fairness (through the head and its block) and the leader's of its
        loss taken at the same parameters, then both optimizers step (bilevel
        strategies only, on one shared batch).
    leader_penalty : bool, default True
        Bilevel only: the leader minimises BCE + eta * fairness loss instead of
        BCE alone. This is the game the authors' released code runs and the
        paper's numbers come from: it does not clear the gradients of the
        follower's fairness loss before the leader's backward pass, so they
        add up (there the penalty's gradient is taken before the follower's
        step, here after it). ``False`` is the paper's Algorithm 1 as written
        (the leader on BCE alone), which leaves DP at ERM's level: the leader,
        100x faster than the follower, undoes the fairness block.
    follower_optimizer : {"sgd", "adam"}, default "sgd"
        Bilevel and stackelberg: the follower's optimizer. ``"sgd"`` steps
        ``fairness_lr * gradient``, which scales with eta (and is the step
        the ``stackelberg`` leader differentiates); Adam normalises its
        step, so the follower moves about ``fairness_lr`` per step whatever
        eta is (the authors' released code's follower, and the one the
        benchmark scripts' FairBiNN figures use; SGD gives the better
        fronts on Adult and Health, see ``docs/results.md``).
    follower_bce : bool, default False
        Bilevel and stackelberg: the follower minimises BCE + eta * fairness
        instead of eta * fairness alone, so that as eta goes to 0 the fairness
        block becomes an ordinary accuracy layer.
    hypergradient : {"unrolled", "implicit"}, default "unrolled"
        Stackelberg only: how the leader's gradient accounts for the
        follower's response. ``"unrolled"``: ``unroll_steps`` gradient steps
        of the follower, ``phi <- phi - fairness_lr * grad_phi f``, taken
        differentiably, and the leader's loss evaluated after them.
        ``"implicit"``: the implicit-function-theorem hypergradient
        ``dL/dtheta = d_theta L - d2_{theta phi} f [d2_{phi phi} f + cg_damping I]^-1 d_phi L``,
        the inverse applied by ``cg_iters`` conjugate-gradient iterations on
        Hessian-vector products.
    unroll_steps : int, default 1
        Stackelberg, unrolled: differentiable follower steps (>= 1).
    cg_iters : int, default 10
        Stackelberg, implicit: conjugate-gradient iterations (>= 1).
    cg_damping : float, default 1.0
        Stackelberg, implicit: ``lambda`` added to the follower's Hessian
        (>= 0; it should make ``H + lambda I`` positive definite). Large
        damping makes the correction ``-d2_{theta phi} f d_phi L / lambda``,
        one unrolled step of size ``1 / lambda``.
    separate_batches : bool, default False
        Bilevel only: the follower draws its own minibatches from an
        independent shuffle of the training data instead of sharing the
        leader's.
    selection_metric : str or None, default "accuracy"
        Validation metric that picks the reported epoch, in its direction in
        :data:`~fairbinn.core.metrics.METRIC_DIRECTIONS` (accuracy, AUC, AP
        maximised; the gaps minimised). ``None`` keeps the last epoch.
        Without a validation split the last epoch is kept.
    fairness_budget : float, optional
        Budget selection: the reported epoch is the best validation
        ``selection_metric`` among the epochs whose validation
        ``budget_metric`` is at most this (> 0). If no epoch meets it, the
        epoch with the smallest validation gap is kept, the result's
        ``budget_met`` is False and a warning names the smallest gap reached.
        Needs validation data and a ``selection_metric``.
    budget_metric : {"dp", "soft_dp", "eo", "eopp", "soft_eo"}, default "dp"
        The validation gap the budget bounds.
    confidence : float, optional
        Certified budget selection (with ``fairness_budget``; default None,
        which means 0.95 when a budget is given): the chosen epoch's
        population ``budget_metric`` gap is at most the budget with
        probability at least ``confidence`` over the draw of the validation
        rows, the choice among all candidates accounted for (see
        :class:`~fairbinn.core.selection.CertifiedSelector`). ``0`` keeps the
        point-estimate rule above (the validation gap itself at most the
        budget). In ``[0, 1)``; a value other than None needs a budget.
    record_test : bool, default False
        Also evaluate the test split after every epoch (the history gains
        ``test_<metric>`` columns), so that every checkpoint can be reported
        as a candidate (:func:`fairbinn.sweep`). Selection never reads them:
        test metrics only report what validation chose.
    threshold : float, default 0.5
        Probability threshold for hard predictions in the metrics.
    seed : int, default 0
    device : str, default "cpu"
        "cpu", "cuda", "cuda:N", "mps" or "auto" (cuda, then mps, then cpu).
    progress : bool, default True
        Show a progress bar over epochs.
    checkpoint_dir : str, optional
        Directory where :class:`~fairbinn.core.trainer.Trainer` writes
        ``checkpoint.pt`` (model, optimizers, schedulers, random generators,
        history, best epoch so far) every ``checkpoint_every`` epochs,
        atomically.
    checkpoint_every : int, default 1
    resume : bool, default False
        Continue from ``checkpoint_dir/checkpoint.pt``; the run then ends with
        the same parameters as an uninterrupted one (for ``Split`` /
        ``TensorLoader`` data, whose shuffling state is saved too). Resuming a
        finished run (its checkpoint at the last epoch) returns its result
        without training.
    overwrite : bool, default False
        Train a new run in a ``checkpoint_dir`` that already holds a
        checkpoint, replacing it. Without ``resume`` or ``overwrite`` such a
        directory is an error before the first epoch.
    compile : bool or str, default False
        Run the strategy's forward passes and losses through ``torch.compile``:
        ``True`` with its default backend (inductor), or a backend's name
        (``torch._dynamo.list_backends()``, e.g. "aot_eager"). The parameters
        and optimizers stay as they are, so results match an uncompiled run
        to float rounding (1e-5 on CPU in the tests). Where compilation is
        unavailable (no C++ compiler for inductor, a Python torch.compile does
        not support) the first training step falls back to eager execution
        with one warning, from the same state.
    sampler : {"uniform", "drfairness"} or a sampler's settings, default "uniform"
        How training batches are drawn: shuffled passes over the data, or
        Dr-Fairness's adaptive per-label group (and real / generated) ratios
        (:class:`~fairbinn.core.drfairness.DrFairnessSampler`; needs
        validation data), with its settings given as
        :class:`~fairbinn.core.drfairness.DrFairnessConfig` (``"drfairness"``
        takes the defaults). A name becomes its settings object (see
        :data:`SAMPLERS`). Combines with every strategy.
    """

    strategy: str = "bilevel"
    eta: float = 100.0
    constraint: str | FairnessConstraint = "dp"
    constraint_norm: str = "squared"
    surrogate: str = "score"
    temperature: float = 0.1
    epochs: int = 50
    batch_size: int = 100
    lr: float = 1e-3
    fairness_lr: float = 1e-5
    lr_decay: float = 1.0
    fairness_lr_decay: float = 1.0
    order: str = "follower_first"
    leader_penalty: bool = True
    follower_optimizer: str = "sgd"
    follower_bce: bool = False
    hypergradient: str = "unrolled"
    unroll_steps: int = 1
    cg_iters: int = 10
    cg_damping: float = 1.0
    separate_batches: bool = False
    selection_metric: str | None = "accuracy"
    fairness_budget: float | None = None
    budget_metric: str = "dp"
    confidence: float | None = None
    record_test: bool = False
    threshold: float = 0.5
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    checkpoint_dir: str | None = None
    checkpoint_every: int = 1
    resume: bool = False
    overwrite: bool = False
    sampler: str | UniformConfig | DrFairnessConfig = "uniform"
    compile: bool | str = False

    def __post_init__(self) -> None:
        problems = []
        try:
            object.__setattr__(self, "strategy", resolve_strategy(self.strategy))
            if self.order == "simultaneous" and not is_bilevel(self.strategy):
                problems.append(f"order='simultaneous' updates a bilevel game's two players at once; the "
                                f"{self.strategy} strategy has one player (use strategy='bilevel')")
            if self.order == "simultaneous" and is_stackelberg(self.strategy):
                problems.append("order='simultaneous' takes both players' gradients at one point; a stackelberg "
                                "leader anticipates the follower's response, so the players step in turn "
                                "(order 'follower_first' or 'leader_first')")
        except ValueError as error:
            problems.append(f"strategy must be one of the registered strategies: {error}")
        for name, choices in (("surrogate", SURROGATES), ("follower_optimizer", FOLLOWER_OPTIMIZERS),
                              ("hypergradient", HYPERGRADIENTS)):
            if getattr(self, name) not in choices:
                problems.append(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("unroll_steps", "cg_iters"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be an integer >= 1, got {value!r}")
        if not _is_number(self.cg_damping) or not math.isfinite(self.cg_damping) or self.cg_damping < 0:
            problems.append(f"cg_damping must be a finite number >= 0, got {self.cg_damping!r}")
        if not _is_number(self.temperature) or not math.isfinite(self.temperature) or self.temperature <= 0:
            problems.append(f"temperature must be a finite number > 0, got {self.temperature!r}")
        if self.order == "simultaneous" and self.separate_batches:
            problems.append("order='simultaneous' takes both players' gradients from one forward pass on one batch; "
                            "it cannot be combined with separate_batches=True")
        if self.constraint_norm not in NORMS:
            problems.append(f"constraint_norm must be one of {NORMS}, got {self.constraint_norm!r}")
        elif self.surrogate in SURROGATES and _is_number(self.temperature) and self.temperature > 0 \
                and _is_number(self.threshold) and 0 < self.threshold < 1:
            try:
                self.build_constraint()
            except ValueError as error:
                problems.append(str(error))
        if not _is_number(self.eta) or not math.isfinite(self.eta) or self.eta < 0:
            problems.append(f"eta must be a finite number >= 0, got {self.eta!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "fairness_lr"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                problems.append(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("lr_decay", "fairness_lr_decay"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 < value <= 1:
                problems.append(f"{name} must be in (0, 1], got {value!r}")
        if not isinstance(self.checkpoint_every, int) or isinstance(self.checkpoint_every, bool) \
                or self.checkpoint_every < 1:
            problems.append(f"checkpoint_every must be a positive integer, got {self.checkpoint_every!r}")
        if self.resume and not self.checkpoint_dir:
            problems.append("resume=True needs checkpoint_dir")
        if self.overwrite and self.resume:
            problems.append("resume=True continues the run in checkpoint_dir and overwrite=True replaces it; "
                            "pass one of them")
        if isinstance(self.sampler, str) and self.sampler in SAMPLERS:
            object.__setattr__(self, "sampler", SAMPLERS.create(self.sampler))
        if not isinstance(self.sampler, tuple(SAMPLERS.values())):
            problems.append(f"sampler must be one of {tuple(c.name for c in SAMPLERS.values())} or their settings "
                            f"({', '.join(c.__name__ for c in SAMPLERS.values())}), got {self.sampler!r}")
        if self.order not in ORDERS:
            problems.append(f"order must be one of {ORDERS}, got {self.order!r}")
        if not isinstance(self.compile, (bool, str)):
            problems.append(f"compile must be True, False or a torch.compile backend's name, got {self.compile!r}")
        elif isinstance(self.compile, str) and self.compile not in compile_backends():
            problems.append(f"compile must be True, False or a torch.compile backend's name "
                            f"(one of {', '.join(compile_backends())}), got {self.compile!r}")
        if self.selection_metric is not None and self.selection_metric not in REPORT_KEYS:
            problems.append(
                f"selection_metric must be None or one of {', '.join(REPORT_KEYS)}, got {self.selection_metric!r}"
            )
        if self.fairness_budget is not None:
            if not _is_number(self.fairness_budget) or not math.isfinite(self.fairness_budget) \
                    or self.fairness_budget <= 0:
                problems.append(f"fairness_budget must be a finite number > 0, got {self.fairness_budget!r}")
            if self.selection_metric is None:
                problems.append("fairness_budget chooses the best epoch under the budget by selection_metric, "
                                "which cannot be None")
        if self.budget_metric not in GAP_METRICS:
            problems.append(f"budget_metric must be one of {', '.join(GAP_METRICS)}, got {self.budget_metric!r}")
        if self.confidence is not None:
            if not _is_number(self.confidence) or not 0 <= self.confidence < 1:
                problems.append(f"confidence must be a number in [0, 1) (0: the point-estimate rule), "
                                f"got {self.confidence!r}")
            elif self.fairness_budget is None:
                problems.append(f"confidence={self.confidence!r} certifies a fairness budget; give fairness_budget "
                                "too (or leave confidence None)")
        if self.fairness_budget is not None and self.confidence != 0 \
                and getattr(self.sampler, "name", self.sampler) == "drfairness":
            problems.append("the drfairness sampler learns its ratios from the validation rows, which then cannot "
                            "certify a fairness budget; set confidence=0 (the point-estimate rule) or use the "
                            "uniform sampler")
        if not _is_number(self.threshold) or not 0 < self.threshold < 1:
            problems.append(f"threshold must be in (0, 1), got {self.threshold!r}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    @property
    def budget_confidence(self) -> float:
        """The confidence a budget is certified at: 0 without a budget or with ``confidence=0`` (the
        point-estimate rule), 0.95 for ``confidence=None`` with a budget, else ``confidence``."""
        if self.fairness_budget is None:
            return 0.0
        return 0.95 if self.confidence is None else float(self.confidence)

    @property
    def certifies(self) -> bool:
        """Whether the budget is certified (a budget with a confidence above 0)."""
        return self.budget_confidence > 0

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)

    def for_strategy(self, strategy: str, **changes: Any) -> "TrainConfig":
        """A copy for ``strategy``, then ``changes``: the settings of a game (the update order, the follower's
        options, the stackelberg leader's hypergradient) are kept for the strategies that play it; the others
        get the defaults (so one configuration serves erm, lagrangian, bilevel and stackelberg)."""
        defaults = {f.name: f.default for f in fields(self)}
        reset = [] if is_bilevel(strategy) else list(_BILEVEL_FIELDS)
        reset += [] if is_stackelberg(strategy) else list(_STACKELBERG_FIELDS)
        return replace(self, strategy=strategy, **{name: defaults[name] for name in reset}, **changes)

    def build_constraint(self) -> FairnessConstraint:
        """The configured constraint object (wrapped in the rate surrogate with ``surrogate="rate"``)."""
        return create_constraint(self.constraint, self.constraint_norm, surrogate=self.surrogate,
                                 temperature=self.temperature, threshold=self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, ready for JSON: a constraint object becomes its repr, the sampler its name and settings."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(self.constraint, FairnessConstraint):
            values["constraint"] = repr(self.constraint)
        return {**values, "sampler": self.sampler.name, **self.sampler.settings()}


def compile_backends() -> list[str]:
    """The backend names ``TrainConfig(compile=...)`` accepts: ``torch._dynamo.list_backends()``,
    including the debugging ones ("eager", "aot_eager")."""
    import torch._dynamo  # here: importing dynamo costs about a second, and only compile needs it

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


_BILEVEL_FIELDS = ("order", "follower_optimizer", "follower_bce")
"""Settings that only two-player (bilevel) strategies read; :meth:`TrainConfig.for_strategy` resets them."""
_STACKELBERG_FIELDS = ("hypergradient", "unroll_steps", "cg_iters", "cg_damping")
"""Settings that only stackelberg strategies read."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
