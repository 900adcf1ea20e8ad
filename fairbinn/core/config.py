"""Training configuration shared by the trainer and the strategies.

:class:`TrainConfig` holds every option of a training run, grouped in small
frozen sections by concern. Each option is declared once, with
:func:`~fairbinn.core.options.option`: its default, help text, allowed values,
check and command-line flag (see :mod:`fairbinn.core.options`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .constraints import NORMS, SURROGATES, FairnessConstraint, create_constraint, list_constraints
from .data import UniformConfig
from .drfairness import DrFairnessConfig
from .metrics import GAP_METRICS, REPORT_KEYS
from .options import (
    SettingsError, check_options, fraction, non_negative_number, number_in, option, options_of, positive_int,
    positive_number, raise_problems,
)
from .registry import Registry
from .strategies import is_bilevel, is_stackelberg, resolve_strategy

__all__ = [
    "TrainConfig", "OptimConfig", "GameConfig", "FollowerConfig", "StackelbergConfig", "FairnessConfig",
    "SelectionConfig", "CheckpointConfig", "RuntimeConfig", "SECTIONS", "STRATEGY_NAMES", "ORDERS", "SAMPLERS",
    "FOLLOWER_OPTIMIZERS", "HYPERGRADIENTS",
]

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

_FAIRNESS_MODES = ("lagrangian", "bilevel", "stackelberg")
_GAME_MODES = ("bilevel", "stackelberg")


def _underscored(value: str) -> str:
    return value.replace("-", "_")


def constraint_name(value: str) -> str:
    """A constraint's registered name (lower case), for the command line; an argparse error naming the choices."""
    try:  # the registry at parse time: register_constraint may have added names
        create_constraint(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value.lower()


def _one_of(choices: tuple[str, ...], *, none: bool = False):
    shown = ("None or " if none else "") + "one of " + ", ".join(choices)

    def check(value: Any) -> str | None:
        return None if (value is None and none) or value in choices else f"must be {shown}"
    return check


@dataclass(frozen=True)
class OptimConfig:
    """The optimisers: epochs, batch size, learning rates and their decay (see :class:`TrainConfig`)."""

    epochs: int = option(50, "epochs (default 50 tabular, 1000 graph, 30/15/15 CelebA)", flags=("-ep", "--epochs"),
                         check=positive_int, command_default=True)
    batch_size: int = option(100, "minibatch size (default 100, CelebA 128; a graph trains full batch)",
                             flags=("-bs", "--batch_size", "--batch-size"), check=positive_int, command_default=True)
    lr: float = option(1e-3, "Adam learning rate of the accuracy player (default 1e-3 tabular, 1e-2 graph)",
                       flags=("-nlr", "--network_learning_rate", "--lr"), check=positive_number, command_default=True)
    fairness_lr: float = option(1e-5, "learning rate of the fairness layers, the follower (default 1e-5; 1e-6 for "
                                      "CelebA Attractive); its optimizer is --follower-optimizer",
                                flags=("-flr", "--fairness_learning_rate", "--fairness-lr"), check=positive_number,
                                command_default=True, modes=_GAME_MODES)
    lr_decay: float = option(1.0, "per-epoch decay of --lr (default 1, none)", check=fraction)
    fairness_lr_decay: float = option(1.0, "per-epoch decay of --fairness-lr (default 1, none)", check=fraction,
                                      modes=_GAME_MODES)

    def __post_init__(self) -> None:
        raise_problems("optimisation settings", check_options(self))


@dataclass(frozen=True)
class GameConfig:
    """The strategy and its fairness weight; the bilevel game's leader and batches (see :class:`TrainConfig`)."""

    strategy: str = option("bilevel", cli=False)
    eta: float = option(100.0, "fairness weight (default: the paper's; 100 tabular, 1000 graph, per attribute for "
                               "CelebA)", flags=("-e", "--eta"), check=non_negative_number, command_default=True,
                        modes=_FAIRNESS_MODES)
    leader_penalty: bool = option(
        True, "bilevel: the leader minimises BCE + eta * fairness, the game of the authors' released code (the "
              "default; the flag is kept for their scripts)",
        flags=("--leader-penalty",), off_flags=("--paper-game",),
        off_help="bilevel: the paper's Algorithm 1 as written, the leader on BCE alone (it leaves DP at ERM's "
                 "level; see docs/results.md)", modes=_GAME_MODES)
    separate_batches: bool = option(False, "bilevel: the follower draws its own minibatches", modes=_GAME_MODES)

    def __post_init__(self) -> None:
        problems = check_options(self)
        try:
            object.__setattr__(self, "strategy", resolve_strategy(self.strategy))
        except ValueError as error:
            problems.insert(0, f"strategy must be one of the registered strategies: {error}")
        raise_problems("game settings", problems)


@dataclass(frozen=True)
class FollowerConfig:
    """The follower of a two-player game (bilevel, stackelberg): update order, optimizer, loss.
    :meth:`TrainConfig.for_strategy` resets it for one-player strategies."""

    order: str = option("follower_first", "bilevel update order (default follower-first, as the authors' code); "
                                          "simultaneous: one forward pass, both players' gradients at the same "
                                          "point, both step",
                        choices=ORDERS, parse={"type": _underscored, "choices": ORDERS}, modes=_GAME_MODES)
    follower_optimizer: str = option("sgd", "bilevel and stackelberg: the follower's optimizer, sgd (default; its "
                                            "step scales with eta) or adam (the released code's; its step is about "
                                            "--fairness-lr whatever eta is)", choices=FOLLOWER_OPTIMIZERS,
                                     modes=_GAME_MODES)
    follower_bce: bool = option(False, "bilevel and stackelberg: the follower minimises BCE + eta * fairness (an "
                                       "ordinary accuracy layer as eta goes to 0) instead of eta * fairness",
                                modes=_GAME_MODES)

    def __post_init__(self) -> None:
        raise_problems("follower settings", check_options(self))


def _integer_at_least_one(value: Any) -> str | None:
    return None if positive_int(value) is None else "must be an integer >= 1"


@dataclass(frozen=True)
class StackelbergConfig:
    """The stackelberg leader's hypergradient. :meth:`TrainConfig.for_strategy` resets it for other strategies."""

    hypergradient: str = option("unrolled", "stackelberg: the leader's gradient through the follower's response, "
                                            "unrolled follower steps (default) or the implicit-function theorem "
                                            "with conjugate gradients", choices=HYPERGRADIENTS,
                                modes=("stackelberg",))
    unroll_steps: int = option(1, "stackelberg, unrolled: differentiable follower steps (default 1)",
                               check=_integer_at_least_one, modes=("stackelberg",))
    cg_iters: int = option(10, "stackelberg, implicit: conjugate-gradient iterations (default 10)",
                           check=_integer_at_least_one, modes=("stackelberg",))
    cg_damping: float = option(1.0, "stackelberg, implicit: damping added to the follower's Hessian (default 1)",
                               check=non_negative_number, modes=("stackelberg",))

    def __post_init__(self) -> None:
        raise_problems("stackelberg settings", check_options(self))


@dataclass(frozen=True)
class FairnessConfig:
    """The fairness constraint: which gap, its norm, scores or a rate surrogate, and the decision threshold."""

    constraint: str | FairnessConstraint = option("dp", "fairness loss: one of " + ", ".join(list_constraints())
                                                  + ", or a name given to register_constraint (default dp)",
                                                  parse={"type": constraint_name, "metavar": "NAME"},
                                                  modes=_FAIRNESS_MODES)
    constraint_norm: str = option("squared", choices=NORMS, cli=False)
    surrogate: str = option("score", "what the constraint compares between groups: scores (default) or rate, a "
                                     "smooth thresholded decision sigmoid((p - 0.5) / temperature), for a budget on "
                                     "thresholded gaps", choices=SURROGATES, modes=_FAIRNESS_MODES)
    temperature: float = option(0.1, "--surrogate rate: width of the smooth threshold (default 0.1)",
                                check=positive_number, modes=_FAIRNESS_MODES)
    threshold: float = option(0.5, check=number_in(0, 1, "must be in (0, 1)"), cli=False)

    def __post_init__(self) -> None:
        problems = check_options(self)
        if not problems:
            try:
                self.build()
            except ValueError as error:
                problems.append(str(error))
        raise_problems("fairness settings", problems)

    def build(self) -> FairnessConstraint:
        """The constraint object (wrapped in the rate surrogate with ``surrogate="rate"``)."""
        return create_constraint(self.constraint, self.constraint_norm, surrogate=self.surrogate,
                                 temperature=self.temperature, threshold=self.threshold)


def _budget(value: Any) -> str | None:
    return None if value is None else positive_number(value)


@dataclass(frozen=True)
class SelectionConfig:
    """Which epoch is reported: the validation metric, a fairness budget and its certification."""

    selection_metric: str | None = option(
        "accuracy", "validation metric choosing the reported epoch, or 'last' (default accuracy; 'last' where the "
                    "validation split is the test split, as in FairGNN's NBA protocol)",
        flags=("--select",), dest="select", check=_one_of(REPORT_KEYS, none=True), from_args=False,
        command_default=True, parse={"choices": [*REPORT_KEYS, "last"]})
    fairness_budget: float | None = option(
        None, "fairness budget B: report the most accurate epoch (on validation) whose validation gap is <= B; "
              "without --eta, train searches eta automatically per mode (16 etas, every epoch a candidate)",
        flags=("--budget",), dest="budget", check=_budget, parse={"type": float})
    budget_metric: str = option("dp", "the validation gap --budget bounds (default dp)", check=_one_of(GAP_METRICS),
                                parse={"choices": list(GAP_METRICS)})
    confidence: float | None = option(
        None, "--budget is certified: with this probability over the draw of the validation rows the chosen "
              "model's population gap is at most the budget, the choice among all checkpoints accounted for "
              "(default 0.95 with --budget; 0: the point-estimate rule, the validation gap itself at most the "
              "budget)", check=number_in(0, 1, "must be a number in [0, 1) (0: the point-estimate rule)", closed_low=True, optional=True),
        parse={"type": float})
    record_test: bool = option(False, cli=False)

    def __post_init__(self) -> None:
        problems = check_options(self)
        if self.fairness_budget is not None and self.selection_metric is None:
            problems.append("fairness_budget chooses the best epoch under the budget by selection_metric, "
                            "which cannot be None")
        if self.confidence is not None and self.fairness_budget is None and not any("confidence" in p
                                                                                    for p in problems):
            problems.append(f"confidence={self.confidence!r} certifies a fairness budget; give fairness_budget "
                            "too (or leave confidence None)")
        raise_problems("selection settings", problems)


@dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often the trainer checkpoints, and whether it resumes."""

    checkpoint_dir: str | None = option(None, "write DIR/<mode>/checkpoint.pt (model, optimizers, schedulers, "
                                              "random generators, history) atomically",
                                        parse={"type": Path}, from_args=False)
    checkpoint_every: int = option(1, "epochs between checkpoints (default 1)", check=positive_int, from_args=False)
    resume: bool = option(False, "continue each mode from its checkpoint in --checkpoint-dir (ends as an "
                                 "uninterrupted run would; a finished mode is reported without training, a mode "
                                 "without a checkpoint trains from the start)", from_args=False)
    overwrite: bool = option(False, "train from the start even where --checkpoint-dir already holds a mode's "
                                    "checkpoint, writing over it (without --resume or --overwrite such a directory "
                                    "is refused)", from_args=False)

    def __post_init__(self) -> None:
        problems = check_options(self)
        if self.resume and not self.checkpoint_dir:
            problems.append("resume=True needs checkpoint_dir")
        if self.overwrite and self.resume:
            problems.append("resume=True continues the run in checkpoint_dir and overwrite=True replaces it; "
                            "pass one of them")
        raise_problems("checkpoint settings", problems)


def _compile(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        backends = compile_backends()
        return None if value in backends else \
            f"must be True, False or a torch.compile backend's name (one of {', '.join(backends)})"
    return "must be True, False or a torch.compile backend's name"


@dataclass(frozen=True)
class RuntimeConfig:
    """Seed, device, progress bar and compilation."""

    seed: int = option(0, "seed of the model's initialisation and the batches (default 0)")
    device: str = option("cpu", "cpu, cuda, cuda:N, mps or auto (default cpu)", flags=("-dv", "--device"))
    progress: bool = option(True, off_flags=("--no-progress",), off_help="no progress bar")
    compile: bool | str = option(False, "run the forward passes and losses through torch.compile (default backend "
                                        "inductor; falls back to eager with a warning where compilation fails)",
                                 check=_compile, parse={"nargs": "?", "const": True, "metavar": "BACKEND"})

    def __post_init__(self) -> None:
        raise_problems("runtime settings", check_options(self))


SECTIONS: dict[str, type] = {
    "optim": OptimConfig, "game": GameConfig, "follower": FollowerConfig, "stackelberg": StackelbergConfig,
    "fairness": FairnessConfig, "selection": SelectionConfig, "checkpoint": CheckpointConfig,
    "runtime": RuntimeConfig,
}
"""The sections of :class:`TrainConfig`: attribute name and settings class."""

_SECTION_OF = {f.name: name for name, cls in SECTIONS.items() for f, _ in options_of(cls)}
"""Each option's section."""


@dataclass(frozen=True, init=False)
class TrainConfig:
    """Everything that decides how a model is trained.

    ``TrainConfig(eta=10, epochs=5)`` takes every option by name; the options
    are held in small frozen sections by concern (``optim``, ``game``,
    ``follower``, ``stackelberg``, ``fairness``, ``selection``,
    ``checkpoint``, ``runtime``; see :data:`SECTIONS`), each validating its
    own values, and read by name too (``config.eta`` is
    ``config.game.eta``). A section may also be given whole
    (``TrainConfig(optim=OptimConfig(lr=1e-2))``), with options by name
    applied on top of it. :meth:`replace` and :meth:`for_strategy` take
    options by name. Invalid values raise one ``ValueError`` listing every
    problem.

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

    optim: OptimConfig
    game: GameConfig
    follower: FollowerConfig
    stackelberg: StackelbergConfig
    fairness: FairnessConfig
    selection: SelectionConfig
    checkpoint: CheckpointConfig
    runtime: RuntimeConfig
    sampler: UniformConfig | DrFairnessConfig = option(
        "uniform", "training batches: uniform (shuffled passes, default) or drfairness (Dr-Fairness's adaptive "
                   "per-label group ratios, learnt on validation data; combines with every --mode)",
        from_args=False, parse={"choices": list(SAMPLERS)})

    def __init__(self, *, sampler: str | UniformConfig | DrFairnessConfig = "uniform", **settings: Any) -> None:
        unknown = [name for name in settings if name not in SECTIONS and name not in _SECTION_OF]
        if unknown:
            raise TypeError(f"TrainConfig got unexpected keyword arguments {', '.join(map(repr, unknown))}; the "
                            f"options are {', '.join(_SECTION_OF)}, and sampler")
        problems: list[str] = []
        for name, cls in SECTIONS.items():
            given = settings.get(name)
            changes = {key: value for key, value in settings.items() if _SECTION_OF.get(key) == name}
            if given is not None and not isinstance(given, cls):
                problems.append(f"{name} must be a {cls.__name__}, got {given!r}")
                given = None
            try:
                section = replace(given, **changes) if given is not None else cls(**changes)
            except SettingsError as error:
                problems += error.problems
                section = None
            object.__setattr__(self, name, section)
        if isinstance(sampler, str) and sampler in SAMPLERS:
            sampler = SAMPLERS.create(sampler)
        object.__setattr__(self, "sampler", sampler)
        if not isinstance(sampler, tuple(SAMPLERS.values())):
            problems.append(f"sampler must be one of {tuple(c.name for c in SAMPLERS.values())} or their settings "
                            f"({', '.join(c.__name__ for c in SAMPLERS.values())}), got {sampler!r}")
        if not problems:
            problems = self._problems()
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        """What is wrong across sections (each section has checked its own values)."""
        problems = []
        if self.order == "simultaneous" and not is_bilevel(self.strategy):
            problems.append(f"order='simultaneous' updates a bilevel game's two players at once; the "
                            f"{self.strategy} strategy has one player (use strategy='bilevel')")
        if self.order == "simultaneous" and is_stackelberg(self.strategy):
            problems.append("order='simultaneous' takes both players' gradients at one point; a stackelberg "
                            "leader anticipates the follower's response, so the players step in turn "
                            "(order 'follower_first' or 'leader_first')")
        if self.order == "simultaneous" and self.separate_batches:
            problems.append("order='simultaneous' takes both players' gradients from one forward pass on one batch; "
                            "it cannot be combined with separate_batches=True")
        if self.fairness_budget is not None and self.confidence != 0 and self.sampler.name == "drfairness":
            problems.append("the drfairness sampler learns its ratios from the validation rows, which then cannot "
                            "certify a fairness budget; set confidence=0 (the point-estimate rule) or use the "
                            "uniform sampler")
        return problems

    def __getattr__(self, name: str) -> Any:
        """An option by name: ``config.eta`` is ``config.game.eta``."""
        section = _SECTION_OF.get(name)
        if section is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(object.__getattribute__(self, section), name)

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
        """A copy with ``changes`` (options by name, or whole sections) applied and validated."""
        return replace(self, **changes)

    def for_strategy(self, strategy: str, **changes: Any) -> "TrainConfig":
        """A copy for ``strategy``, then ``changes``: the follower's settings (update order, optimizer, loss) are
        kept for the strategies that have a follower, the stackelberg leader's for stackelberg; the others get
        the defaults (so one configuration serves erm, lagrangian, bilevel and stackelberg)."""
        reset = {} if is_bilevel(strategy) else {"follower": FollowerConfig()}
        reset.update({} if is_stackelberg(strategy) else {"stackelberg": StackelbergConfig()})
        return replace(self, **reset, strategy=strategy, **changes)

    def build_constraint(self) -> FairnessConstraint:
        """The configured constraint object (wrapped in the rate surrogate with ``surrogate="rate"``)."""
        return self.fairness.build()

    def to_dict(self) -> dict[str, Any]:
        """Every option by name as plain values, ready for JSON: a constraint object becomes its repr, the
        sampler its name and settings."""
        values = {name: getattr(self, name) for name in _SECTION_OF}
        if isinstance(self.constraint, FairnessConstraint):
            values["constraint"] = repr(self.constraint)
        return {**values, "sampler": self.sampler.name, **self.sampler.settings()}


def compile_backends() -> list[str]:
    """The backend names ``TrainConfig(compile=...)`` accepts: ``torch._dynamo.list_backends()``,
    including the debugging ones ("eager", "aot_eager")."""
    import torch._dynamo  # here: importing dynamo costs about a second, and only compile needs it

    return sorted(torch._dynamo.list_backends(exclude_tags=()))
