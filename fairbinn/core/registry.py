"""One registry for everything fairbinn builds by name.

Fairness layers, fairness constraints, training strategies, GNN bodies and
stackers (keyed by module type) each live in a :class:`Registry`, behind the
public functions of their modules (``register_fairness_layer``,
``register_constraint``, ``register_strategy``, ``register_gnn_body``,
``register_stacker``, ``list_*``, ``create_*``). One rule for all of them:

- Names are case-insensitive: a name is stored in lower case and every look-up
  lower-cases the name it is given (``"DP"`` finds ``"dp"``). Keys that are
  not strings (the module types of ``register_stacker``) are used as they are.
- Registering a taken name raises ``ValueError("<kind> 'x' is already
  registered; pass overwrite=True to replace it")`` unless ``overwrite=True``.
- An unknown name raises ``ValueError("unknown <kind> 'x'; choose one of a, b,
  c")``, the registered names sorted.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Hashable, Iterator, Mapping, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
_MISSING: Any = object()


def _label(key: Hashable) -> str:
    """How a key is shown: a name as itself, a type by its name."""
    if isinstance(key, str):
        return key
    return getattr(key, "__qualname__", repr(key))


class Registry(Generic[T]):
    """Objects (factories, classes) by name, under the rule of this module.

    Parameters
    ----------
    kind : str
        What the entries are, for messages: ``"fairness layer"``, ``"strategy"``, ...
    entries : mapping, optional
        Entries registered at once, in order.
    key_type : type, default str
        What entries are registered under: names, or (for stackers) ``type``.
    base : type, optional
        Entries must be subclasses of it (``TypeError`` otherwise); constraints
        and strategies are registered as classes.

    Examples
    --------
    >>> layers = Registry("fairness layer")
    >>> @layers.register("gated")
    ... def gated(width, num_layers=1): ...
    >>> layers.register("plain", print)   # as a call
    <built-in function print>
    >>> layers.names(), "GATED" in layers
    (['gated', 'plain'], True)
    """

    def __init__(self, kind: str, entries: Mapping[Hashable, T] | None = None, *, key_type: type = str,
                 base: type | None = None) -> None:
        self.kind = kind
        self.key_type = key_type
        self.base = base
        self._entries: dict[Hashable, T] = {}
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    @staticmethod
    def _key(name: Hashable) -> Hashable:
        return name.lower() if isinstance(name, str) else name

    def register(self, name: Hashable, obj: T = _MISSING, *, overwrite: bool = False) -> Any:
        """Register ``obj`` under ``name`` and return it; without ``obj``, a decorator doing so.

        Raises ``ValueError`` if ``name`` is taken, unless ``overwrite=True``,
        and if ``name`` is an empty string; ``TypeError`` if it is not a
        ``key_type`` (e.g. a decorator used without its name).
        """
        if not isinstance(name, self.key_type):
            raise TypeError(f"a {self.kind} is registered under a {self.key_type.__name__}, got {name!r}")
        if isinstance(name, str) and not name.strip():
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if obj is _MISSING:
            def decorator(obj: T) -> T:
                return self.register(name, obj, overwrite=overwrite)

            return decorator
        if self.base is not None and not (isinstance(obj, type) and issubclass(obj, self.base)):
            raise TypeError(f"a {self.kind} must be a {self.base.__name__} subclass, got {obj!r}")
        key = self._key(name)
        if key in self._entries and not overwrite:
            raise ValueError(
                f"{self.kind} {_label(name)!r} is already registered; pass overwrite=True to replace it"
            )
        self._entries[key] = obj
        return obj

    def canonical(self, name: Hashable) -> Hashable:
        """The registered name that ``name`` refers to (its lower-case form); ``ValueError`` if none."""
        if name not in self:
            raise self._unknown(name)
        return self._key(name)

    def get(self, name: Hashable) -> T:
        """The object registered under ``name``; ``ValueError`` naming the choices if none."""
        return self._entries[self.canonical(name)]

    def create(self, name: Hashable, /, *args: Any, **kwargs: Any) -> Any:
        """Call the object registered under ``name`` with ``args`` and ``kwargs``."""
        factory: Callable[..., Any] = self.get(name)  # type: ignore[assignment]
        return factory(*args, **kwargs)

    def names(self) -> list:
        """The registered names, sorted (types by their names)."""
        return sorted(self._entries, key=_label)

    def pop(self, name: Hashable, default: Any = _MISSING) -> Any:
        """Remove ``name`` and return its object; ``default`` if it is not registered (else ``ValueError``)."""
        if name in self:
            return self._entries.pop(self._key(name))
        if default is _MISSING:
            raise self._unknown(name)
        return default

    def copy(self) -> "Registry[T]":
        """A registry of the same kind with the same entries (changes to either leave the other alone)."""
        new: Registry[T] = Registry(self.kind, key_type=self.key_type, base=self.base)
        new._entries = dict(self._entries)
        return new

    def __contains__(self, name: object) -> bool:
        try:
            return self._key(name) in self._entries  # type: ignore[arg-type]
        except TypeError:  # unhashable
            return False

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.names())

    def values(self) -> list[T]:
        """The registered objects, in the order they were registered."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(map(_label, self.names()))})"

    def _unknown(self, name: object) -> ValueError:
        choices = ", ".join(map(_label, self.names())) or "(none registered)"
        shown = name if isinstance(name, (str, type)) else repr(name)
        return ValueError(f"unknown {self.kind} {_label(shown)!r}; choose one of {choices}")
