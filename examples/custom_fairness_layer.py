"""Register a new fairness layer and train FairBiNN with it (synthetic data, a few seconds)."""
import torch
from torch import nn

import fairbinn
from fairbinn.core import register_fairness_layer, seed_everything
from toy_data import make_split  # examples/toy_data.py


@register_fairness_layer("example_gated", overwrite=True)
class Gated(nn.Module):
    """x * sigmoid(W x + b): the follower learns which features to damp. (n, width) -> (n, width)."""

    def __init__(self, width: int, num_layers: int = 1):
        super().__init__()
        self.gates = nn.ModuleList(nn.Linear(width, width) for _ in range(num_layers))
        for gate in self.gates:  # start almost open: the follower begins from the leader's features
            nn.init.zeros_(gate.weight), nn.init.constant_(gate.bias, 3.0)

    def forward(self, x):
        for gate in self.gates:
            x = x * torch.sigmoid(gate(x))
        return x


seed_everything(0)  # the model's initial weights
model = fairbinn.build_mlp(6, (16, 16), fairness_layer="example_gated", num_fairness_layers=1)
result = fairbinn.Trainer(strategy="bilevel", eta=10, epochs=20, lr=1e-2, fairness_lr=1e-3,
                           progress=False).fit(
    model, make_split(600, 0), make_split(200, 1), make_split(200, 2))
print(result.test)
