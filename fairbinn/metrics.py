"""Public alias of :mod:`fairbinn.core.metrics`: ``from fairbinn.metrics import demographic_parity_difference``."""

from .core.metrics import *  # noqa: F401,F403
from .core.metrics import __all__  # noqa: F401
