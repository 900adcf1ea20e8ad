"""Small synthetic datasets for tests."""

import numpy as np

from fairbinn.core.data import Split


def make_biased_split(n: int, seed: int, d: int = 6, name: str = "train", groups: int = 2) -> Split:
    """Synthetic data whose label depends on the group: a fair classifier must give up accuracy."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, groups, n)
    x = rng.normal(size=(n, d))
    x[:, 0] += 1.5 * s  # the group leaks into a feature
    logit = 2.0 * x[:, 1] + 1.5 * s - 0.75 * groups / 2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return Split.from_arrays(x.astype(np.float32), y, s, name=name)
