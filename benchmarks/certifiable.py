"""What each benchmark's validation split can certify: the smallest budget a model could be certified under.

For every dataset and gap, the upper bound (at 95% confidence) that the
validation rows give a model with the same rate in every group (and label),
the share of positive labels: no model that predicts both classes at the
base rate can be certified under a smaller budget on these rows. Also the
validation rows of the smallest group (of the smallest label, for the
label-conditional gaps) and roughly the rows per group that would certify
``--budgets``. No model is trained; only the splits are read.

    python benchmarks/certifiable.py                       # Adult, Health, NBA (disjoint halves), Bail, CelebA
    python benchmarks/certifiable.py --datasets nba bail
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fairbinn.benchmark import get_benchmark
from fairbinn.core.certify import equal_rate_counts, gap_upper_bound, rows_needed
from fairbinn.core.trainer import _targets_of
from reporting import provenance, write_json, write_markdown

HERE = Path(__file__).resolve().parent
DATASETS = {"adult": {}, "health": {}, "nba": {"test_as_val": False}, "bail": {},
            "celeba": {"target": "Smiling", "sensitive": "Male"}}
"""Each dataset's loading arguments: NBA with separate validation and test nodes (the published split uses
the test nodes for validation, which leaves nothing to certify on)."""
METRICS = ("dp", "eopp", "eo", "soft_dp")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.05, 0.10])
    parser.add_argument("--data-dir", default=None, help="default $FAIRBINN_DATA")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "certifiable")
    return parser.parse_args()


def validation_targets(name: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    benchmark = get_benchmark(name)
    data = benchmark.load(data_dir, **DATASETS[name])
    _, val, _ = benchmark.loaders(data, benchmark.paper_config(data))
    targets = _targets_of(val)
    if targets is None:
        raise ValueError(f"{name}: the validation loader does not expose its labels and groups")
    y, s = (t.detach().cpu().numpy() for t in targets)
    return y, s.astype(np.int64), list(getattr(data, "group_names", range(int(s.max()) + 1)))


def main() -> None:
    args = parse_args()
    rows = []
    for name in args.datasets:
        y, s, groups = validation_targets(name, args.data_dir)
        for metric in METRICS:
            equal = equal_rate_counts(metric, y, s, all_groups=range(len(groups)))
            bound = gap_upper_bound(metric, equal, args.confidence)
            cell = np.unravel_index(np.argmin(equal.rows), equal.rows.shape)
            row = {"dataset": name, "val rows": int(len(y)), "groups": len(groups), "metric": metric,
                   "smallest group": str(groups[int(equal.groups[cell[1]])]), "its rows": int(equal.rows[cell]),
                   "floor": bound.upper}
            for budget in args.budgets:
                row[f"rows per group for {budget:g}"] = rows_needed(metric, equal, budget, args.confidence)
            rows.append(row)
            print(row, flush=True)
    record = provenance(Path(__file__).name, {"confidence": args.confidence, "budgets": args.budgets,
                                              "datasets": {d: DATASETS[d] for d in args.datasets}})
    write_json(args.out.with_suffix(".json"), {"rows": rows}, record)
    heads = list(rows[0])
    lines = ["# What the validation splits can certify", "",
             f"`floor`: the {args.confidence:.0%} upper bound the validation rows give a model with the same rate in "
             "every group (and label), the share of positive labels: no budget below it can be certified for a "
             "model that predicts both classes. `its rows`: validation rows of the smallest group (of the smallest "
             "label for eopp and eo). `rows per group for B`: roughly how many validation rows per group (and "
             "label) would let such a model be certified under B.", "",
             "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) and k == "floor" else
                                       (f"{v:,.0f}" if isinstance(v, float) and np.isfinite(v) else str(v))
                                       for k, v in row.items()) + " |")
    write_markdown(args.out.with_suffix(".md"), lines, record)
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
