"""Define a new fairness constraint and train with it (synthetic data, a few seconds)."""

import fairbinn
from fairbinn.core import FairnessConstraint, seed_everything
from fairbinn.core.constraints import group_gaps
from toy_data import make_split  # examples/toy_data.py


class FalsePositiveParity(FairnessConstraint):
    """Gap between groups' mean score among true negatives (a soft false-positive-rate gap)."""

    name = "fpr"

    def gap(self, probs, y, groups, num_groups):
        negatives = y == 0
        return group_gaps(probs[negatives], groups[negatives], 1, num_groups)[0]


seed_everything(0)  # the model's initial weights
model = fairbinn.build_mlp(6, (16, 16))
trainer = fairbinn.Trainer(strategy="lagrangian", constraint=FalsePositiveParity(), eta=1, epochs=20, lr=1e-2,
                           progress=False)
result = trainer.fit(model, make_split(600, 0), make_split(200, 1), make_split(200, 2))
print(result.test)
