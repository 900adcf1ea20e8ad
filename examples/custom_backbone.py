"""Bring your own network: any encoder and head around a fairness block (synthetic data, a few seconds)."""
import torch
from torch import nn

import fairbinn


class ResidualEncoder(nn.Module):
    """A normalised residual MLP: (n, features) -> (n, width)."""

    def __init__(self, features: int = 6, width: int = 16):
        super().__init__()
        self.stem = nn.Linear(features, width)
        self.block = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU())

    def forward(self, x):
        h = self.stem(x)
        return h + self.block(h)


def make_split(n, seed):  # toy data: the label depends on the group s, which leaks into feature 0
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 6, generator=g) + 1.5 * s[:, None] * torch.eye(6)[0]
    return fairbinn.Split(x, (x[:, 1] + s > 0.5).float(), s)


fairbinn.seed_everything(0)  # the model's initial weights
model = fairbinn.FairModel(encoder=ResidualEncoder(), head=nn.Linear(16, 1),
                           fairness=fairbinn.create_fairness_layer("residual", width=16))
result = fairbinn.Trainer(strategy="bilevel", eta=10, epochs=20, lr=1e-2, progress=False).fit(
    model, make_split(600, 0), make_split(200, 1), make_split(200, 2))
print(result.test)
