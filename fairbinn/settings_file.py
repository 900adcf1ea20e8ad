"""Settings files for the command line: ``--config FILE`` sets any option, the command line overrides it.

A file is one flat table of options named as on the command line, with or
without the leading dashes, in dashes or underscores (``budget-metric`` and
``budget_metric`` are the same). TOML (``.toml``), JSON (``.json``) and, when
PyYAML is installed, YAML (``.yaml``, ``.yml``)::

    # adult.toml
    data = "Adult"
    mode = ["erm", "bilevel"]
    budget = 0.05
    epochs = 20
    no-progress = true

``fairbinn train --config adult.toml --seed 3`` runs those settings with seed
3. A switch (``no-progress``) takes ``true`` or ``false``; a list gives an
option that takes several values. The effective settings of a run (every
option after the file and the command line) are written as JSON beside its
results, and that JSON is itself a settings file.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
from pathlib import Path
from typing import Any, Sequence

__all__ = ["read_settings", "settings_tokens", "effective_settings", "with_settings_file", "INTERNAL"]

INTERNAL = ("command", "argv", "config")
"""Namespace entries that are not options of a run."""


def read_settings(path: str | Path) -> dict[str, Any]:
    """The table of options in a ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file; a ``ValueError`` naming the file
    for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--config {path}: no such file")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--config {path}: not UTF-8 text ({error})") from None
    if suffix == ".toml":
        import tomllib

        try:
            settings = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"--config {path}: not valid TOML ({error})") from None
    elif suffix == ".json":
        try:
            settings = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"--config {path}: not valid JSON ({error})") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"--config {path}: reading YAML needs PyYAML (pip install pyyaml); TOML and JSON need "
                             "nothing") from None
        try:
            settings = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"--config {path}: not valid YAML ({error})") from None
    else:
        raise ValueError(f"--config {path}: unknown format {suffix or '(no suffix)'}; use .toml, .json, .yaml or "
                         ".yml")
    if not isinstance(settings, dict):
        raise ValueError(f"--config {path}: must hold one table of options, got {type(settings).__name__}")
    return settings


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every name an option may have in a file: its long flags without dashes (in dashes and underscores) and its
    destination."""
    names: dict[str, argparse.Action] = {}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public list of a parser's actions
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        for flag in action.option_strings:
            if flag.startswith("--"):
                bare = flag[2:]
                names.setdefault(bare, action)
                names.setdefault(bare.replace("-", "_"), action)
                names.setdefault(bare.replace("_", "-"), action)
        names.setdefault(action.dest, action)
    return names


def _flag(action: argparse.Action) -> str:
    return next(f for f in action.option_strings if f.startswith("--"))


def settings_tokens(settings: dict[str, Any], parser: argparse.ArgumentParser, source: str | Path
                    ) -> list[str]:
    """Command-line tokens that set ``settings`` (from ``source``, for messages) on ``parser``'s options.

    ``None`` leaves an option at its default; a switch takes a bool; a list
    sets an option taking several values. An unknown name, or a value of the
    wrong kind, is a ``ValueError`` naming the file and the option.
    """
    options = _options(parser)
    tokens: list[str] = []
    for key, value in settings.items():
        name = str(key).lstrip("-")
        action = options.get(name)
        if action is None or name in INTERNAL:
            close = difflib.get_close_matches(name, [n for n in options if n not in INTERNAL], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"--config {source}: unknown option {key!r}{hint}")
        if value is None:
            continue
        flag = _flag(action)
        if action.nargs == 0:  # a switch
            if not isinstance(value, bool):
                raise ValueError(f"--config {source}: {key!r} is a switch; give true or false, got {value!r}")
            if name.replace("-", "_") == action.dest and action.const in (True, False):
                # the option itself (progress = false): the switch that sets that value, if it is not the default
                tokens += [_flag(a) for a in parser._actions  # noqa: SLF001
                           if a.dest == action.dest and a.nargs == 0 and a.const is value][:1]
            elif value:
                tokens.append(flag)
            continue
        if isinstance(value, bool) and action.nargs != "?":
            raise ValueError(f"--config {source}: {key!r} takes a value, not {str(value).lower()}")
        if isinstance(value, dict):
            raise ValueError(f"--config {source}: {key!r} takes a value, not a table")
        many = action.nargs in ("+", "*") or (isinstance(action.nargs, int) and action.nargs > 1)
        if isinstance(value, list):
            if not many:
                raise ValueError(f"--config {source}: {key!r} takes one value, got a list of {len(value)}")
            tokens += [flag, *(_text(v) for v in value)]
        elif value is True:  # an option with an optional value, set without one
            tokens.append(flag)
        elif value is not False:
            tokens += [flag, _text(value)]
    return tokens


def _text(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(value)


def effective_settings(args: argparse.Namespace) -> dict[str, Any]:
    """A run's options after the settings file and the command line, as JSON data (paths as strings)."""
    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return {k: plain(v) for k, v in sorted(vars(args).items()) if k not in INTERNAL}


def with_settings_file(argv: Sequence[str], parser: argparse.ArgumentParser) -> tuple[list[str], Path | None]:
    """``argv`` (sub-command first) with the options of its ``--config FILE`` placed before the command line's,
    which therefore win, and the file; ``argv`` unchanged and None without one."""
    argv = list(argv)
    found = [i for i, token in enumerate(argv) if token == "--config" or token.startswith("--config=")]
    if not found:
        return argv, None
    if len(found) > 1:
        raise ValueError("--config is given more than once; give one settings file")
    index = found[0]
    if argv[index] == "--config":
        if index + 1 >= len(argv) or argv[index + 1].startswith("-"):
            raise ValueError("--config needs a file: --config FILE")
        path, rest = Path(argv[index + 1]), argv[:index] + argv[index + 2:]
    else:
        path, rest = Path(argv[index].split("=", 1)[1]), argv[:index] + argv[index + 1:]
    tokens = settings_tokens(read_settings(path), parser, path)
    return [rest[0], *tokens, *rest[1:]], path
