"""Toy data shared by the examples: the label depends on the group s, which leaks into feature 0."""
import torch

from fairbinn.core import Split


def make_split(n: int, seed: int) -> Split:
    """``n`` rows of 6 features, binary labels and two groups."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 6, generator=g) + 1.5 * s[:, None] * torch.eye(6)[0]
    return Split(x, (x[:, 1] + s > 0.5).float(), s)
