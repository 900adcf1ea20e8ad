"""Options declared once: each is a dataclass field that also knows its command-line flag.

A settings class (a frozen dataclass such as
:class:`~fairbinn.core.config.OptimConfig`) declares each of its options with
:func:`option`: the default, the help text, the allowed values, a check and
the flags. From that one declaration the dataclass gets its field and its
validation (:func:`check_options`), and the command line gets its flag
(:func:`add_flags`) and reads it back (:func:`values_from_args`)::

    @dataclass(frozen=True)
    class OptimConfig:
        lr: float = option(1e-3, "learning rate", flags=("--lr",), check=positive)

        def __post_init__(self):
            raise_problems("optimisation settings", check_options(self))

Adding an option is therefore one edit (its declaration) plus its test.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Iterator

__all__ = [
    "Option", "option", "options_of", "check_options", "SettingsError", "raise_problems", "add_flags", "values_from_args",
    "flag_name", "dest_of", "positive_int", "positive_number", "non_negative_number", "fraction", "number_in",
]

Check = Callable[[Any], "str | None"]
"""A check takes a value and returns what is wrong with it (``"must be ..."``) or None."""


@dataclass(frozen=True)
class Option:
    """How one option is checked and set from the command line (a field's ``metadata["option"]``).

    Attributes
    ----------
    help : str
        The flag's help text.
    flags : tuple of str
        The flags that set the option; empty: ``--<name with dashes>``. A bool
        option's flags switch it on.
    off_flags : tuple of str
        Bool options: flags that switch it off (``--no-progress``). A flag that
        switches on and one that switches off cannot be given together.
    off_help : str
        The help text of ``off_flags`` (default ``help``).
    choices : tuple, optional
        Allowed values (checked by the dataclass and by argparse).
    check : callable, optional
        ``check(value)`` returns a problem (``"must be ..."``) or None; it
        replaces the ``choices`` check (for values the command line does not
        offer, such as None).
    dest : str, optional
        The argparse destination (default the field's name).
    cli : bool
        False: no flag (set from the library only).
    from_args : bool
        False: the command reads the flag itself (per mode, say) instead of
        :func:`values_from_args`.
    command_default : bool
        The flag defaults to None and the command fills the value in (the
        dataset's published setting, say).
    modes : tuple of str
        The built-in strategies that read the option (empty: all); the command
        refuses it for the others.
    parse : dict
        Further ``add_argument`` keywords (``type``, ``nargs``, ``const``, ``metavar``).
    """

    help: str = ""
    flags: tuple[str, ...] = ()
    off_flags: tuple[str, ...] = ()
    off_help: str = ""
    choices: tuple | None = None
    check: Check | None = None
    dest: str | None = None
    cli: bool = True
    from_args: bool = True
    command_default: bool = False
    modes: tuple[str, ...] = ()
    parse: dict = field(default_factory=dict)


def option(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING,  # noqa: A002 - argparse's word
           **settings: Any) -> Any:
    """A dataclass field with its :class:`Option` (``settings`` are that class's attributes)."""
    return field(default=default, default_factory=default_factory,
                 metadata={"option": Option(help=help, **settings)})


def options_of(cls: Any) -> Iterator[tuple[Field, Option]]:
    """The declared options of a settings class (or instance), in declaration order."""
    for f in fields(cls):
        if "option" in f.metadata:
            yield f, f.metadata["option"]


def check_options(settings: Any, prefix: str = "") -> list[str]:
    """The problems of ``settings``' values: each option's allowed values and check, named ``prefix + name``."""
    problems = []
    for f, opt in options_of(settings):
        value = getattr(settings, f.name)
        if opt.check is not None:
            problem = opt.check(value)
            if problem:
                problems.append(f"{prefix}{f.name} {problem}, got {value!r}")
        elif opt.choices is not None and value not in opt.choices:
            problems.append(f"{prefix}{f.name} must be one of {opt.choices}, got {value!r}")
    return problems


class SettingsError(ValueError):
    """Invalid settings; ``problems`` lists what is wrong, one item per option or rule."""

    def __init__(self, what: str, problems: list[str]) -> None:
        super().__init__(f"invalid {what}: " + "; ".join(problems))
        self.problems = list(problems)


def raise_problems(what: str, problems: list[str]) -> None:
    """A :class:`SettingsError` listing ``problems`` (``"invalid <what>: a; b"``), if there are any."""
    if problems:
        raise SettingsError(what, problems)


def _own_flag(f: Field) -> str:
    """The flag an option has when it declares none: ``--<name with dashes>``."""
    return f"--{f.name.replace('_', '-')}"


def flag_name(f: Field) -> str:
    """The flag an error message names for an option: its first long flag, in dashes where it has that form."""
    opt = f.metadata["option"]
    flags = [*opt.flags, *opt.off_flags] or [_own_flag(f)]
    long = [flag for flag in flags if flag.startswith("--")]
    return next((flag for flag in long if "_" not in flag), long[0] if long else flags[0])


def dest_of(f: Field) -> str:
    """The argparse destination of an option: its ``dest``, else its field's name."""
    return f.metadata["option"].dest or f.name


def add_flags(group: Any, cls: Any) -> None:
    """Add a flag to ``group`` (an argparse parser or group) for each option of ``cls`` that has one.

    A flag's default is the option's declared default, None where the command
    decides it (``command_default``) and for bool switches (None: not given)."""
    for f, opt in options_of(cls):
        if not opt.cli:
            continue
        value = _default(f)
        if f.type in ("bool", bool) and not opt.parse:
            on, off = opt.flags or (() if opt.off_flags else (_own_flag(f),)), opt.off_flags
            target = group.add_mutually_exclusive_group() if on and off else group
            for flags, const, text in ((on, True, opt.help), (off, False, opt.off_help or opt.help)):
                if flags:
                    target.add_argument(*flags, dest=dest_of(f), action="store_const", const=const, default=None,
                                        help=text)
            continue
        kwargs = {"dest": dest_of(f), "default": None if opt.command_default else value, "help": opt.help,
                  **opt.parse}
        if opt.choices is not None and "choices" not in kwargs:
            kwargs["choices"] = list(opt.choices)
        if not {"type", "action", "nargs"} & set(kwargs) and isinstance(value, (int, float)):
            kwargs["type"] = type(value)
        group.add_argument(*(opt.flags or (_own_flag(f),)), **kwargs)


def _default(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING and f.default_factory is not MISSING else f.default


def values_from_args(cls: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``cls`` given on the command line (``args``): a field's name and its value, for the
    flags the command does not read itself; a switch not given and a dataset default not given are left out."""
    values = {}
    for f, opt in options_of(cls):
        if opt.cli and opt.from_args:
            value = getattr(args, dest_of(f))
            if value is not None:
                values[f.name] = value
    return values


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_int(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 \
        else "must be a positive integer"


def positive_number(value: Any) -> str | None:
    return None if _number(value) and value > 0 else "must be a finite number > 0"


def non_negative_number(value: Any) -> str | None:
    return None if _number(value) and value >= 0 else "must be a finite number >= 0"


def fraction(value: Any) -> str | None:
    """In (0, 1]: a decay factor."""
    return None if _number(value) and 0 < value <= 1 else "must be in (0, 1]"


def number_in(low: float, high: float, problem: str, *, closed_low: bool = False, closed_high: bool = False,
              optional: bool = False) -> Check:
    """A check for a number between ``low`` and ``high`` (open ends unless closed; None allowed if
    ``optional``); ``problem`` is what it says otherwise (``"must be in (0, 1)"``)."""
    def check(value: Any) -> str | None:
        if value is None and optional:
            return None
        inside = _number(value) and (low <= value if closed_low else low < value) \
            and (value <= high if closed_high else value < high)
        return None if inside else problem
    return check
