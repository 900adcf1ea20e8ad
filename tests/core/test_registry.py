"""The one registry rule, and constraints and strategies registered by name and used everywhere a name is."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import fairbinn
from fairbinn import FairModel, TrainConfig, Trainer
from fairbinn.core import Batch, register_constraint, register_strategy
from fairbinn.cli import main
from fairbinn.core import constraints, strategies
from fairbinn.core.constraints import DemographicParity
from fairbinn.core.registry import Registry
from fairbinn.core.strategies import ERM

from synthetic import make_biased_split


@pytest.fixture(autouse=True)
def _registries_unchanged(monkeypatch):
    """Every registration of a test goes to a copy; the global registries are as they were afterwards."""
    before = (constraints._CONSTRAINTS.names(), strategies._STRATEGIES.names())
    monkeypatch.setattr(constraints, "_CONSTRAINTS", constraints._CONSTRAINTS.copy())
    monkeypatch.setattr(strategies, "_STRATEGIES", strategies._STRATEGIES.copy())
    yield
    monkeypatch.undo()
    assert (constraints._CONSTRAINTS.names(), strategies._STRATEGIES.names()) == before


# -- the Registry itself -----------------------------------------------------------------------------------


def test_register_as_call_and_decorator_and_look_up():
    registry = Registry("widget")
    assert registry.register("Plain", dict) is dict  # a call returns what it registered

    @registry.register("zeta")
    def zeta(x=1):
        return ("zeta", x)

    assert zeta() == ("zeta", 1)  # the decorator returns the function itself
    assert registry.get("plain") is dict and registry.get("ZETA") is zeta  # names are case-insensitive
    assert registry.create("zeta", 5) == ("zeta", 5) and registry.create("zeta", x=7) == ("zeta", 7)
    assert "PLAIN" in registry and "nope" not in registry and ["unhashable"] not in registry
    assert registry.canonical("Zeta") == "zeta"
    assert len(registry) == 2


def test_names_are_listed_sorted_in_lower_case():
    registry = Registry("widget", {"b": 1, "C": 2})
    registry.register("a", 3)
    assert registry.names() == ["a", "b", "c"] == list(registry)
    assert repr(registry) == "Registry('widget': a, b, c)"


def test_duplicates_need_overwrite():
    registry = Registry("widget", {"a": 1})
    with pytest.raises(ValueError, match=r"^widget 'A' is already registered; pass overwrite=True to replace it$"):
        registry.register("A", 2)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(2)
    assert registry.get("a") == 1
    registry.register("A", 2, overwrite=True)
    assert registry.get("a") == 2 and registry.names() == ["a"]


def test_unknown_names_get_one_message_naming_the_choices():
    registry = Registry("widget", {"b": 1, "a": 2})
    for call in (registry.get, registry.create, registry.canonical, registry.pop):
        with pytest.raises(ValueError, match=r"^unknown widget 'x'; choose one of a, b$"):
            call("x")
    with pytest.raises(ValueError, match=r"^unknown widget '3'; choose one of a, b$"):
        registry.get(3)
    with pytest.raises(ValueError, match=r"choose one of \(none registered\)"):
        Registry("widget").get("a")


def test_bad_names_pop_and_copy():
    registry = Registry("widget", {"a": 1})
    with pytest.raises(ValueError, match="non-empty"):
        registry.register(" ", 2)
    with pytest.raises(TypeError, match="a widget is registered under a str, got <class 'int'>"):
        registry.register(int)  # a decorator used without its name
    copy = registry.copy()
    copy.register("b", 2)
    assert registry.names() == ["a"] and copy.names() == ["a", "b"] and copy.kind == "widget"
    assert copy.pop("B") == 2 and copy.pop("b", None) is None and copy.names() == ["a"]


def test_type_keys_are_used_as_they_are():
    registry = Registry("stacker", key_type=type)
    registry.register(nn.Linear, "linear")
    registry.register(nn.ReLU, "relu")
    assert registry.names() == [nn.Linear, nn.ReLU] and nn.Linear in registry and nn.Tanh not in registry
    with pytest.raises(ValueError, match="stacker 'Linear' is already registered"):
        registry.register(nn.Linear, "again")
    with pytest.raises(ValueError, match="unknown stacker 'Tanh'; choose one of Linear, ReLU"):
        registry.get(nn.Tanh)
    with pytest.raises(TypeError, match="registered under a type"):
        registry.register("linear", "by name")


def test_every_built_in_registry_follows_the_rule():
    from fairbinn.core import fairness_layers, stacked

    assert fairbinn.core.create_constraint("Eo").__class__ is fairbinn.core.EqualizedOdds
    # case-insensitive now
    assert isinstance(fairbinn.core.create_fairness_layer("LINEAR", 4), fairbinn.core.LinearStack)
    for message, call in [
        ("unknown fairness layer 'x'; choose one of ", lambda: fairbinn.core.create_fairness_layer("x", 4)),
        ("unknown fairness constraint 'x'; choose one of demographic_parity, dp, ",
         lambda: fairbinn.core.create_constraint("x")),
        ("unknown strategy 'x'; choose one of bilevel, erm, lagrangian", lambda: strategies.resolve_strategy("x")),
    ]:
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match="fairness layer 'Linear' is already registered; pass overwrite=True"):
        fairbinn.core.register_fairness_layer("Linear")(fairbinn.core.LinearStack)
    with pytest.raises(ValueError, match="stacker 'Linear' is already registered"):
        fairbinn.core.register_stacker(nn.Linear)(lambda modules: modules[0])
    assert isinstance(fairness_layers._FAIRNESS_LAYERS, Registry) and isinstance(stacked._STACKERS, Registry)


# -- a custom constraint by name ---------------------------------------------------------------------------


class MeanScore(fairbinn.core.FairnessConstraint):
    """Not a fairness gap: the mean predicted probability, so the loss is easy to compute by hand."""

    def gap(self, probs, y, groups, num_groups):
        return probs.mean()


def test_register_constraint_rejects_what_is_not_a_constraint_class():
    with pytest.raises(TypeError, match="FairnessConstraint subclass"):
        register_constraint("mine")(DemographicParity())
    with pytest.raises(TypeError, match="registered under a str"):
        register_constraint(MeanScore)  # @register_constraint without its name
    with pytest.raises(ValueError, match="fairness constraint 'DP' is already registered"):
        register_constraint("DP")(MeanScore)
    assert "mine" not in fairbinn.core.list_constraints()


def test_custom_constraint_by_name_trains_with_the_loss_computed_by_hand():
    assert register_constraint("Mean_Score")(MeanScore) is MeanScore
    assert "mean_score" in fairbinn.core.list_constraints()
    config = TrainConfig(strategy="lagrangian", constraint="MEAN_SCORE", constraint_norm="absolute", eta=2.0,
                         epochs=1, batch_size=100, lr=1e-2, progress=False)
    assert isinstance(config.build_constraint(), MeanScore) and config.build_constraint().norm == "absolute"
    train = make_biased_split(100, 0)  # one batch: the epoch's losses are the first step's
    torch.manual_seed(0)
    model = fairbinn.build_mlp(train.num_features, (8,), num_fairness_layers=1)
    with torch.no_grad():
        logits = model(train.x)
    bce = nn.functional.binary_cross_entropy_with_logits(logits, train.y)
    mean_score = torch.sigmoid(logits).mean()
    result = Trainer(config).fit(model, train)
    record = result.history[0]
    assert record["train_fairness"] == pytest.approx(mean_score.item(), rel=1e-5)
    assert record["train_bce"] == pytest.approx(bce.item(), rel=1e-5)
    assert record["train_loss"] == pytest.approx((bce + 2.0 * mean_score).item(), rel=1e-5)


def test_unknown_constraint_names_the_choices_in_train_config():
    with pytest.raises(ValueError, match=r"unknown fairness constraint 'mine'; choose one of demographic_parity, dp"):
        TrainConfig(constraint="mine")


# -- a custom strategy by name -----------------------------------------------------------------------------


class CountingERM(ERM):
    """ERM that counts its steps (on the class: the trainer builds the instance)."""

    steps: list = []

    def step(self, batch: Batch, follower_batch: Batch | None = None):
        CountingERM.steps.append(len(batch.y))
        return {**super().step(batch, follower_batch), "steps": torch.tensor(float(len(CountingERM.steps)))}


@pytest.fixture
def counting():
    CountingERM.steps = []
    register_strategy("mine")(CountingERM)
    return CountingERM


def test_register_strategy_rejects_what_is_not_a_strategy_class():
    with pytest.raises(TypeError, match="Strategy subclass"):
        register_strategy("mine")(DemographicParity)
    with pytest.raises(ValueError, match="strategy 'ERM' is already registered; pass overwrite=True"):
        register_strategy("ERM")(CountingERM)
    assert "mine" not in fairbinn.core.list_strategies()


def test_custom_strategy_by_name_in_train_config(counting):
    assert fairbinn.core.list_strategies() == ["bilevel", "erm", "lagrangian", "mine", "stackelberg"]
    config = TrainConfig(strategy="Mine", epochs=2, batch_size=40, lr=1e-2, progress=False)
    assert config.strategy == "mine"  # the registered name
    train = make_biased_split(100, 0)
    torch.manual_seed(0)
    result = Trainer(config).fit(fairbinn.build_mlp(train.num_features, (8,)), train)
    assert counting.steps == [40, 40, 20] * 2  # every batch of both epochs went through its step
    assert [record["train_steps"] for record in result.history] == [2.0, 5.0]  # means of 1, 2, 3 and 4, 5, 6
    assert result.config["strategy"] == "mine"


def test_custom_strategy_overwrite_replaces_it(counting):
    class Other(CountingERM):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_strategy("mine")(Other)
    assert register_strategy("mine", overwrite=True)(Other) is Other
    model = FairModel(encoder=nn.Linear(3, 4), fairness=nn.Identity(), head=nn.Linear(4, 1))
    built = strategies.create_strategy(model, TrainConfig(strategy="mine"), DemographicParity())
    assert type(built) is Other


def test_unknown_strategy_names_the_choices(counting):
    with pytest.raises(ValueError, match=r"strategy must be one of the registered strategies: "
                                         r"unknown strategy 'minimax'; choose one of bilevel, erm, lagrangian, mine, stackelberg"):
        TrainConfig(strategy="minimax")
    with pytest.raises(ValueError, match="strategies must be .*unknown strategy 'minimax'; choose one of bilevel, erm"):
        fairbinn.sweep("adult", strategies=["mine", "minimax"])
    with pytest.raises(ValueError, match="unknown strategy 'minimax'; choose one of bilevel, erm, lagrangian, mine, stackelberg"):
        fairbinn.choose_under_budget("adult", "minimax", 0.1)


@pytest.fixture
def tiny_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    group = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + group[:, None]
    label = (x[:, 0] + rng.normal(scale=0.5, size=n) > 0.5).astype(int)
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "g": np.where(group, "b", "a"), "y": label}).to_csv(path, index=False)
    return path


def test_custom_strategy_and_constraint_on_the_command_line(counting, tiny_csv, tmp_path, capsys):
    register_constraint("mean_score")(MeanScore)
    out = tmp_path / "run.json"
    code = main(["train", "--csv", str(tiny_csv), "--label", "y", "--sensitive", "g", "--mode", "MINE", "reg",
                 "--constraint", "Mean_Score", "--eta", "1", "--epochs", "1", "--batch-size", "50", "--no-progress",
                 "--output", str(out)])
    assert code == 0
    assert any(line.startswith("mine (eta=1)") for line in capsys.readouterr().out.splitlines())
    runs = json.loads(out.read_text())["runs"]
    assert [run["config"]["strategy"] for run in runs] == ["mine", "lagrangian"]
    assert all(run["config"]["constraint"] == "mean_score" for run in runs)
    train_rows = len(fairbinn.load_csv(tiny_csv, "y", "g").train)
    assert sum(counting.steps) == train_rows and max(counting.steps) == 50  # one epoch of 50-row batches
    assert runs[0]["history"][0]["train_steps"] == pytest.approx((1 + len(counting.steps)) / 2)


def test_unknown_mode_and_constraint_on_the_command_line_name_the_choices(counting, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--mode", "minimax"])
    assert exit_info.value.code == 2
    assert ("unknown mode 'minimax'; choose one of bilevel, erm, lagrangian, mine, stackelberg, best (aliases: reg = "
            "lagrangian, linear = bilevel)") in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--constraint", "parity"])
    assert exit_info.value.code == 2
    assert "unknown fairness constraint 'parity'; choose one of demographic_parity, dp, eo" in capsys.readouterr().err
