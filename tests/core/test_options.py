"""Options declared once: the dataclass field, its validation and its command-line flag."""

from __future__ import annotations

import argparse
import pickle
from dataclasses import dataclass, fields

import pytest

from fairbinn.cli import _config, build_parser
from fairbinn.core.config import SECTIONS, FollowerConfig, GameConfig, OptimConfig, TrainConfig
from fairbinn.core.drfairness import DrFairnessConfig
from fairbinn.core.options import (
    SettingsError, add_flags, check_options, option, options_of, positive_int, raise_problems, values_from_args,
)


@dataclass(frozen=True)
class Toy:
    width: int = option(3, "layer width", check=positive_int)
    kind: str = option("a", "kind of layer", choices=("a", "b"))
    verbose: bool = option(True, off_flags=("--quiet",), off_help="say nothing")
    scale: float = option(1.0, "scale", flags=("-s", "--scale"), command_default=True)
    hidden: int = option(0, cli=False)

    def __post_init__(self):
        raise_problems("toy settings", check_options(self))


def _parser():
    parser = argparse.ArgumentParser()
    add_flags(parser, Toy)
    return parser


def test_one_declaration_gives_the_field_its_check_and_its_flag():
    assert [f.name for f in fields(Toy)] == ["width", "kind", "verbose", "scale", "hidden"]
    assert Toy().width == 3 and Toy().scale == 1.0
    with pytest.raises(SettingsError, match=r"invalid toy settings: width must be a positive integer, got 0; "
                                            r"kind must be one of \('a', 'b'\), got 'c'") as error:
        Toy(width=0, kind="c")
    assert len(error.value.problems) == 2
    args = _parser().parse_args(["--width", "5", "--kind", "b", "--quiet", "-s", "2.5"])
    assert values_from_args(Toy, args) == {"width": 5, "kind": "b", "verbose": False, "scale": 2.5}
    assert Toy(**values_from_args(Toy, args)) == Toy(width=5, kind="b", verbose=False, scale=2.5)
    # not given: the declared default, a switch not given and a command default are left out
    assert values_from_args(Toy, _parser().parse_args([])) == {"width": 3, "kind": "a"}
    with pytest.raises(SystemExit):
        _parser().parse_args(["--kind", "c"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["--hidden", "1"])
    assert "say nothing" in _parser().format_help() and "layer width" in _parser().format_help()


def test_every_training_option_has_one_flag_that_sets_it():
    parser = build_parser()
    examples = {int: "3", float: "0.25"}
    checked = 0
    for cls in SECTIONS.values():
        for f, opt in options_of(cls):
            if not opt.cli or not opt.from_args:
                continue
            default = getattr(TrainConfig(), f.name)
            flag = (opt.flags or opt.off_flags or (f"--{f.name.replace('_', '-')}",))[-1]
            if isinstance(default, bool):  # a switch sets the value that is not the default
                flag = opt.off_flags[0] if default else (opt.flags or (f"--{f.name.replace('_', '-')}",))[0]
                tokens, expected = [flag], not default
            elif opt.choices:
                choice = [c for c in opt.choices if c != default][0]
                tokens, expected = [flag, choice], choice
            elif f.name == "constraint":
                tokens, expected = [flag, "eo"], "eo"
            elif f.name == "device":
                tokens, expected = [flag, "cpu"], "cpu"
            elif f.name == "compile":
                tokens, expected = [flag, "eager"], "eager"
            elif f.name == "budget_metric":
                tokens, expected = [flag, "eo"], "eo"
            elif f.name == "fairness_budget":
                tokens, expected = [flag, "0.25"], 0.25
            elif f.name == "confidence":
                tokens, expected = [flag, "0.5", "--budget", "0.1"], 0.5
            else:
                kind = type(default)
                tokens, expected = [flag, examples[kind]], kind(examples[kind])
            args = parser.parse_args(["train", *tokens])
            config = _config(args, {})
            assert getattr(config, f.name) == expected, (f.name, tokens)
            checked += 1
    assert checked >= 25


def test_sampler_flags_build_its_settings():
    args = build_parser().parse_args(["train", "--sampler", "drfairness", "--ratio-k", "3", "--ratio-lr", "0.01",
                                      "--lr", "0.02"])
    config = _config(args, {})
    assert config.sampler == DrFairnessConfig(k=3.0, lr=0.01) and config.lr == 0.02


def test_sections_hold_the_options_and_validate_them():
    config = TrainConfig(eta=3.0, lr=0.01, order="leader_first")
    assert config.game.eta == config.eta == 3.0 and config.optim.lr == config.lr == 0.01
    assert TrainConfig(optim=OptimConfig(lr=0.5), epochs=2).optim == OptimConfig(lr=0.5, epochs=2)
    with pytest.raises(ValueError, match=r"invalid training configuration: lr must be a finite number > 0, got 0; "
                                         r"eta must be a finite number >= 0, got -1"):
        TrainConfig(eta=-1, lr=0)
    with pytest.raises(TypeError, match="unexpected keyword arguments 'learning_rate'"):
        TrainConfig(learning_rate=0.1)
    with pytest.raises(ValueError, match="game must be a GameConfig"):
        TrainConfig(game=OptimConfig())
    erm = config.for_strategy("erm")
    assert erm.follower == FollowerConfig() and erm.game == GameConfig(strategy="erm", eta=3.0)
    assert pickle.loads(pickle.dumps(config)) == config and hash(pickle.loads(pickle.dumps(config))) == hash(config)
    assert set(config.to_dict()) >= {f.name for cls in SECTIONS.values() for f, _ in options_of(cls)}
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        config.nothing  # noqa: B018


@pytest.mark.parametrize("text, expected", [
    ("progress = false", {"progress": False}),
    ("no-progress = true", {"progress": False}),
    ("paper-game = true", {"leader_penalty": False}),
    ("leader_penalty = false", {"leader_penalty": False}),
    ("leader_penalty = true", {"leader_penalty": True}),
])
def test_a_settings_file_sets_switches_by_option_or_by_flag(tmp_path, text, expected):
    from fairbinn.settings_file import with_settings_file

    path = tmp_path / "run.toml"
    path.write_text(text + "\n")
    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    argv, _ = with_settings_file(["train", "--config", str(path)], train)
    config = _config(build_parser().parse_args(argv), {})
    assert {name: getattr(config, name) for name in expected} == expected
