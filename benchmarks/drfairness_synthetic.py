"""Dr-Fairness on a synthetic problem with a rare group that follows its own labelling rule.

5% of the rows are group 1; the majority's label follows ``2 x0 + x1``, the
minority's ``x0 + 2 x2`` (the group is also a feature). An MLP (one hidden
layer of 16) trained with ERM on uniform batches fits the majority's rule and
leaves a large equalized-odds gap. The script trains it with uniform batches
and with Dr-Fairness batches for each ``ratio_k`` and each hypergradient
(``ratio_hessian``: the identity, or the last layer's Hessian), 8 epochs, Adam lr 1e-2,
ratio lr 3e-2, 3000 training / 1000 validation / 20000 test rows, seeds 0-2,
and prints test accuracy, EO and the rare group's final ratios per label.

Usage::

    python benchmarks/drfairness_synthetic.py            # k = 1 and 20, both Hessians, seeds 0 1 2

Writes ``<out>/drfairness_synthetic.md``, headed by the command, commit, machine and every
row's TrainConfig.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from fairbinn.core import FairModel, Split, TrainConfig, Trainer
from fairbinn.core.drfairness import HESSIANS, DrFairnessConfig


def harder_minority(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    s = (torch.rand(n, generator=g) < 0.05).long()
    x = torch.randn(n, 4, generator=g)
    logit = torch.where(s == 0, 2 * x[:, 0] + x[:, 1], x[:, 0] + 2 * x[:, 2])
    y = (torch.rand(n, generator=g) < torch.sigmoid(3 * logit)).float()
    return Split(torch.cat([x, s[:, None].float()], 1), y, s)


def main() -> None:
    from reporting import provenance, write_markdown  # here: tests import this module without benchmarks/ on sys.path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ks", type=float, nargs="+", default=[1.0, 20.0])
    parser.add_argument("--hessians", nargs="+", default=["identity", "last_layer"], choices=list(HESSIANS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, val, test = harder_minority(3000, 1), harder_minority(1000, 2), harder_minority(20000, 3)
    lines = ["| sampler | seed | accuracy | EO | ratio of group 1, label 0 | ratio of group 1, label 1 |",
             "|---|---|---|---|---|---|"]
    configs = {}
    runs = [("uniform", None, "identity")] + [("drfairness", k, h) for h in args.hessians for k in args.ks]
    for sampler, k, hessian in runs:
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = FairModel(nn.Sequential(nn.Linear(5, 16), nn.ReLU()), nn.Linear(16, 1))
            config = TrainConfig(strategy="erm", epochs=8, lr=1e-2, seed=seed, selection_metric=None, progress=False,
                                 sampler=sampler if k is None else DrFairnessConfig(lr=3e-2, k=k, hessian=hessian))
            result = Trainer(config).fit(model, train, val, test)
            last = result.history[-1]
            ratios = [f"{last[f'ratio_y{y}_g1']:.3f}" if sampler != "uniform" else "-" for y in (0, 1)]
            name = "uniform" if k is None else f"drfairness, k={k:g}, {hessian} Hessian"
            configs.setdefault(name, config)
            lines.append(f"| {name} | {seed} | {result.test['accuracy']:.3f} | {result.test['eo']:.3f} | "
                         + " | ".join(ratios) + " |")
            print(lines[-1], flush=True)
    share = [float((train.s[train.y == y] == 1).float().mean()) for y in (0, 1)]
    header = [f"Synthetic rare-group problem (see the docstring); group 1's share of the training rows: "
              f"label 0 {share[0]:.3f}, label 1 {share[1]:.3f}. CPU, 1 thread; the TrainConfig of each row (seed "
              f"{args.seeds[0]}'s) above.", ""]
    record = provenance(Path(__file__).name, {"ks": args.ks, "hessians": args.hessians, "seeds": args.seeds},
                        configs=configs)
    write_markdown(args.out / "drfairness_synthetic.md", header + lines, record)


if __name__ == "__main__":
    main()
