"""Shared fixtures: the real data directory and small synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from synthetic import make_biased_split

REPO = Path(__file__).resolve().parents[1]


def _real_data_dir() -> Path:
    env = os.environ.get("FAIRBINN_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The directory with the real benchmark files.

    Missing data skips the test, unless FAIRBINN_REQUIRE_DATA=1 (set by CI),
    which turns it into a failure so CI never passes on skipped checks.
    """
    path = _real_data_dir()
    if not (path / "adult" / "adult.data").is_file():
        message = f"real data not found in {path} (set FAIRBINN_DATA)"
        if os.environ.get("FAIRBINN_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def adult(data_dir):
    from fairbinn.tabular import load_adult

    return load_adult(data_dir)


@pytest.fixture
def biased():
    """Train / val / test splits of :func:`make_biased_split` (600 / 300 / 300 rows)."""
    return make_biased_split(600, 0), make_biased_split(300, 1, name="val"), make_biased_split(300, 2, name="test")


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
