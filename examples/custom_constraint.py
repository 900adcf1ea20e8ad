"""Define a new fairness constraint and train with it (synthetic data, a few seconds)."""
import torch

import fairbinn
from fairbinn.core.constraints import group_gaps


class FalsePositiveParity(fairbinn.FairnessConstraint):
    """Gap between groups' mean score among true negatives (a soft false-positive-rate gap)."""

    name = "fpr"

    def gap(self, probs, y, groups, num_groups):
        negatives = y == 0
        return group_gaps(probs[negatives], groups[negatives], 1, num_groups)[0]


def make_split(n, seed):  # toy data: the label depends on the group s, which leaks into feature 0
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 6, generator=g) + 1.5 * s[:, None] * torch.eye(6)[0]
    return fairbinn.Split(x, (x[:, 1] + s > 0.5).float(), s)


fairbinn.seed_everything(0)  # the model's initial weights
model = fairbinn.build_mlp(6, (16, 16))
trainer = fairbinn.Trainer(strategy="lagrangian", constraint=FalsePositiveParity(), eta=1, epochs=20, lr=1e-2,
                           progress=False)
result = trainer.fit(model, make_split(600, 0), make_split(200, 1), make_split(200, 2))
print(result.test)
