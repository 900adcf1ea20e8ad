"""Fixtures of the vision tests."""

from pathlib import Path

import pytest

from synthetic_celeba import write_synthetic_celeba


@pytest.fixture
def synthetic_celeba(tmp_path) -> Path:
    """Data directory holding the synthetic ``celeba/`` folder."""
    return write_synthetic_celeba(tmp_path / "data")
