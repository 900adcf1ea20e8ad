"""Comparisons of two trainings that round differently.

A stack and its models trained alone, compiled and eager steps, fused and
unfused Adam, one process and several, or two CPUs and thread counts give the
same training up to rounding (about 1e-7 per step in float32). Accuracy, AUC,
AP, F1, the thresholded gaps (``dp``, ``eo``, ``eopp``), the selected epoch and
``budget_met`` are discontinuous: a rounding difference can flip a prediction
at the threshold or break a tie of scores, and so change them by a whole step.
Such trainings are therefore compared on continuous quantities only: training
losses and statistics, the soft gaps, parameters and logits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pytest
import torch

SMOOTH_METRICS = ("soft_dp", "soft_eo")
"""The report keys that are continuous in the model's scores."""


def is_smooth(key: str) -> bool:
    """Whether history or report key ``key`` is continuous in the parameters.

    True for ``train_*`` (losses, hypergradient norms; not ``train_time_s``),
    ``ratio_*`` (a sampler's ratios) and the soft gaps, bare (``soft_dp``) or
    with a split prefix (``val_soft_dp``, ``test_soft_eo``).
    """
    if key == "train_time_s":
        return False
    if key.startswith(("train_", "ratio_")):
        return True
    for prefix in ("", "val_", "test_"):
        if key.startswith(prefix) and key[len(prefix):] in SMOOTH_METRICS:
            return True
    return False


def smooth(record: Mapping[str, float]) -> dict[str, float]:
    """The continuous entries of a history record or metrics report."""
    return {key: value for key, value in record.items() if is_smooth(key)}


def assert_smooth_close(got: Mapping[str, float], want: Mapping[str, float], atol: float = 1e-5,
                        what: str = "", rtol: float = 0.0) -> None:
    """Both records have the same keys and, where continuous, values within ``max(atol, rtol * |want|)``
    (NaN equals NaN)."""
    assert got.keys() == want.keys(), what
    assert smooth(want), f"{what}: nothing continuous to compare in {sorted(want)}"
    for key, value in smooth(want).items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got[key]), f"{what} {key}"
        else:
            assert got[key] == pytest.approx(value, abs=atol, rel=rtol), f"{what} {key}"


def assert_histories_close(got: Sequence[Mapping[str, float]], want: Sequence[Mapping[str, float]],
                           atol: float = 1e-5, rtol: float = 0.0) -> None:
    """Two training histories: the same epochs, continuous entries within ``max(atol, rtol * |want|)``."""
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for record, expected in zip(got, want):
        assert_smooth_close(record, expected, atol, what=f"epoch {expected['epoch']}", rtol=rtol)


def assert_logits_close(got: torch.Tensor, want: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Logits of the same inputs from two models trained apart: equal up to rounding."""
    torch.testing.assert_close(got.reshape(want.shape), want, atol=atol, rtol=rtol)
