"""Bring your own network: any encoder and head around a fairness block (synthetic data, a few seconds)."""
from torch import nn

import fairbinn
from fairbinn.core import create_fairness_layer, seed_everything
from toy_data import make_split  # examples/toy_data.py


class ResidualEncoder(nn.Module):
    """A normalised residual MLP: (n, features) -> (n, width)."""

    def __init__(self, features: int = 6, width: int = 16):
        super().__init__()
        self.stem = nn.Linear(features, width)
        self.block = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU())

    def forward(self, x):
        h = self.stem(x)
        return h + self.block(h)


seed_everything(0)  # the model's initial weights
model = fairbinn.FairModel(encoder=ResidualEncoder(), head=nn.Linear(16, 1),
                           fairness=create_fairness_layer("residual", width=16))
result = fairbinn.Trainer(strategy="bilevel", eta=10, epochs=20, lr=1e-2, progress=False).fit(
    model, make_split(600, 0), make_split(200, 1), make_split(200, 2))
print(result.test)
