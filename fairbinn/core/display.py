"""Values as error messages print them: plain Python, never ``np.int64(0)``."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

__all__ = ["plain", "plain_list"]


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds (``np.int64(0)`` -> ``0``); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def plain_list(values: Iterable[Any], limit: int | None = None) -> str:
    """``"0, 1, 2"``: the values comma-separated as Python prints them (strings quoted), ``...`` past ``limit``."""
    values = list(values)
    shown = [repr(plain(v)) for v in (values if limit is None else values[:limit])]
    return ", ".join(shown) + (", ..." if limit is not None and len(values) > limit else "")
