"""Validity of certified fairness budgets by simulation: how often is an unfair candidate certified?

Each setting has six synthetic candidates whose population gaps are known:
the budget plus 0.01 and plus 0.04 (unfair), the budget minus 0.02, half the
budget, 0 and 0.01 (fair). A candidate's positive rate in group ``g`` (within
true label ``y`` for ``eo`` / ``eopp``) rises linearly over the groups by its
gap; the soft metrics use scores uniform on ``mean ± 0.2`` with those means.
All candidates threshold one shared uniform per row, so they are strongly
correlated, as checkpoints of one training run are.

Each draw samples a validation set (groups with equal probability, labels
with probability 0.3 + 0.1 g), splits it in halves with
:func:`~fairbinn.core.certify.split_for_certification`, orders the candidates
on the selection half (``selection``: ascending observed gap) or puts the
just-unfair candidate first (``adversarial``, the worst case for
fixed-sequence testing), runs
:func:`~fairbinn.core.certify.certify_candidates` on the certification half
and chooses as :func:`~fairbinn.core.certify.choose_certified` does, the most
accurate certified candidate (accuracy rises with the gap, so the choice sits
near the budget). It records whether any certified candidate is unfair (the
family-wise error, which must stay within ``1 - C`` plus three binomial
standard errors), whether the chosen one is certified, and, for contrast,
whether the naive rule (the most accurate candidate whose observed
certification-half gap meets the budget) picks an unfair one.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/certify_validity.py                # 1000 draws per setting
    python benchmarks/certify_validity.py --draws 50 --out /tmp/quick     # a quick look

Writes ``<out>.md`` (headed by the command, commit, machine and date) and ``<out>.csv`` with its
provenance in ``<out>.provenance.json`` (default ``benchmarks/results/certify_validity``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fairbinn.core import certify as ct
from fairbinn.core import metrics as fm
from fairbinn.core.selection import CertifiedSelector, certification_record
from reporting import provenance, write_csv, write_markdown

HERE = Path(__file__).parent
GAP_FUNCTIONS = {"dp": fm.demographic_parity_difference, "eo": fm.equalized_odds_difference,
                 "eopp": fm.equal_opportunity_difference, "soft_dp": fm.soft_demographic_parity_difference,
                 "soft_eo": fm.soft_equalized_odds_difference}
#            metric    soft bound   groups  rows   method            order
SETTINGS = [("dp", "hoeffding", 2, 4000, "fixed_sequence", "adversarial"),
            ("dp", "hoeffding", 2, 4000, "fixed_sequence", "selection"),
            ("dp", "hoeffding", 2, 4000, "bonferroni", "selection"),
            ("dp", "hoeffding", 3, 12000, "fixed_sequence", "adversarial"),
            ("eopp", "hoeffding", 2, 8000, "fixed_sequence", "adversarial"),
            ("eopp", "hoeffding", 2, 8000, "fixed_sequence", "selection"),
            ("eo", "hoeffding", 2, 8000, "fixed_sequence", "adversarial"),
            ("eo", "hoeffding", 3, 24000, "fixed_sequence", "selection"),
            ("soft_dp", "hoeffding", 2, 4000, "fixed_sequence", "adversarial"),
            ("soft_dp", "bernstein", 2, 4000, "fixed_sequence", "adversarial"),
            ("soft_dp", "hoeffding", 2, 4000, "fixed_sequence", "selection"),
            ("soft_eo", "bernstein", 2, 8000, "fixed_sequence", "selection"),
            ("dp", "hoeffding", 2, 4000, "fixed_sequence", "training"),
            ("eopp", "hoeffding", 2, 8000, "fixed_sequence", "training"),
            ("soft_dp", "hoeffding", 2, 4000, "fixed_sequence", "training")]
"""Order ``adversarial``: the unfair candidate just above the budget first; ``selection``: by the observed gap on
a selection half of the validation draw (the other half certifies); ``training``: the library's own rule, run
through :class:`~fairbinn.core.selection.CertifiedSelector` with the records of
:func:`~fairbinn.core.selection.certification_record`: ordered by the bound predicted from an independent
training draw, the whole validation draw certifying."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000, help="validation draws per setting")
    parser.add_argument("--confidences", type=float, nargs="+", default=[0.9, 0.95])
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "certify_validity",
                        help="output path without suffix")
    return parser.parse_args()


def candidate_means(metric: str, budget: float, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Population rates or mean scores, shape (candidates, labels 0/1, groups), and the population gaps."""
    gaps = np.array([budget + 0.01, budget + 0.04, budget - 0.02, budget / 2, 0.0, 0.01])
    spread = np.linspace(0, 1, n_groups)
    base = np.array([0.3, 0.55])  # label 0, label 1 (the same for both labels under dp, soft_dp)
    means = base[None, :, None] + gaps[:, None, None] * spread[None, None, :]
    if metric in ("eo", "soft_eo"):
        means[:, 0] = base[0] + 0.5 * gaps[:, None] * spread  # the label-1 spread is the larger
    if metric in ("dp", "soft_dp"):
        means[:, 0] = means[:, 1]
    return means, gaps


def draw_rows(rng: np.random.Generator, rows: int, means: np.ndarray, soft: bool):
    """One validation set: labels, groups and every candidate's predictions or scores, shape (candidates, rows)."""
    n_groups = means.shape[2]
    groups = rng.integers(0, n_groups, rows)
    y = (rng.random(rows) < 0.3 + 0.1 * groups).astype(np.int64)
    u = rng.random(rows)
    row_means = means[:, y, groups]
    values = row_means + 0.2 * (2 * u - 1) if soft else (u < row_means).astype(np.int64)
    return y, groups, values


def library_rule(rng, metric, confidence, budget, rows, means, soft, validation, accuracy) -> dict:
    """The library's certified choice on one validation draw: ``CertifiedSelector`` over records made by
    ``certification_record`` from the validation draw and an independent training draw of the same size.
    Returns the indices of all certified candidates (the fixed-sequence prefix), the chosen one and its bound."""
    y, groups, values = validation
    y_train, groups_train, values_train = draw_rows(rng, rows, means, soft)
    selector = CertifiedSelector("accuracy", budget=budget, budget_metric=metric, confidence=confidence)
    records = []
    for index, (v, v_train) in enumerate(zip(values, values_train)):
        record = certification_record(metric, confidence, 0.5, (y, v.astype(float), groups),
                                      (y_train, v_train.astype(float), groups_train), means.shape[2])
        record["val_accuracy"] = float(accuracy[index])
        records.append(record)
        selector.update(index + 1, record)
    order = sorted(range(len(records)), key=lambda i: (records[i]["order_bound"], i))
    passed = [records[i]["val_bound"] <= budget for i in order]
    stop = passed.index(False) if False in passed else len(order)
    chosen = selector.selected_epoch - 1 if selector.budget_met else None
    return {"certified": np.array(order[:stop], dtype=int), "chosen": chosen,
            "bound": selector.certificate()["upper_bound"]}


def run_setting(rng, setting, confidence, budget, draws):
    metric, soft_bound, n_groups, rows, method, order_kind = setting
    means, gaps = candidate_means(metric, budget, n_groups)
    unfair = gaps > budget
    accuracy = 0.8 + 0.5 * gaps
    soft = metric.startswith("soft")
    errors = chosen_certified = chosen_unfair = naive_unfair = 0
    chosen_gaps, bounds = [], []
    for _ in range(draws):
        y, groups, values = draw_rows(rng, rows, means, soft)
        if order_kind == "training":
            outcome = library_rule(rng, metric, confidence, budget, rows, means, soft, (y, groups, values), accuracy)
            errors += bool(unfair[outcome["certified"]].any())
            if outcome["chosen"] is not None:
                chosen_certified += 1
                chosen_unfair += unfair[outcome["chosen"]]
                chosen_gaps.append(gaps[outcome["chosen"]])
                bounds.append(outcome["bound"])
            meets = [i for i, v in enumerate(values) if GAP_FUNCTIONS[metric](y, v, sensitive_features=groups) <= budget]
            naive_unfair += bool(meets) and unfair[max(meets, key=lambda i: accuracy[i])]
            continue
        selection, certification = ct.split_for_certification(groups, y, fraction=0.5, seed=int(rng.integers(2**31)))
        if order_kind == "adversarial":
            order = [0] + [i for i in range(len(gaps)) if i != 0]
        else:
            observed = [GAP_FUNCTIONS[metric](y[selection], v[selection], sensitive_features=groups[selection])
                        for v in values]
            order = list(np.argsort(observed, kind="stable"))
        counts = [ct.gap_counts(y[certification], v[certification], groups[certification], metric) for v in values]
        result = ct.certify_candidates(counts, order, budget, confidence, method=method, soft_bound=soft_bound)
        errors += bool(unfair[list(result.certified)].any())
        if result.certified:  # choose_certified's rule: the most accurate certified candidate
            chosen = max(result.certified, key=lambda i: accuracy[i])
            chosen_certified += 1
            chosen_unfair += unfair[chosen]
            chosen_gaps.append(gaps[chosen])
            bounds.append(result.upper_bounds[result.tested.index(chosen)])
        meets = [i for i, c in enumerate(counts) if c.estimate() <= budget]
        naive_unfair += bool(meets) and unfair[max(meets, key=lambda i: accuracy[i])]
    standard_error = math.sqrt(confidence * (1 - confidence) / draws)
    limit = (1 - confidence) + 3 * standard_error
    return {"metric": metric, "soft_bound": soft_bound if soft else "", "groups": n_groups, "rows": rows,
            "method": method, "order": order_kind, "confidence": confidence, "budget": budget, "draws": draws,
            "error_rate": errors / draws, "limit": limit, "valid": errors / draws <= limit,
            "chosen_unfair_rate": chosen_unfair / draws, "certified_rate": chosen_certified / draws,
            "mean_true_gap_of_chosen": float(np.mean(chosen_gaps)) if chosen_gaps else float("nan"),
            "mean_bound_of_chosen": float(np.mean(bounds)) if bounds else float("nan"),
            "naive_unfair_rate": naive_unfair / draws}


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    records = []
    for setting in SETTINGS:
        for confidence in args.confidences:
            tick = time.perf_counter()
            record = run_setting(rng, setting, confidence, args.budget, args.draws)
            record["seconds"] = round(time.perf_counter() - tick, 1)
            records.append(record)
            print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()),
                  flush=True)
    seconds = time.perf_counter() - started
    record = provenance(Path(__file__).name, {
        "draws per setting": args.draws, "budget": args.budget,
        "confidences": ", ".join(map(str, args.confidences)), "seed": args.seed,
        "candidates": "population gaps budget + 0.01, budget + 0.04 (unfair), budget - 0.02, budget / 2, 0, 0.01 (fair); orders `adversarial` and `selection`: "
        "the validation draw split in halves (selection / certification) stratified by group and label; order "
        "`training`: the library's rule (CertifiedSelector ordered by the bound predicted from an independent "
        "training draw of the same size, the whole validation draw certifying)",
        "numpy": np.__version__, "seconds in all": round(seconds)})
    write_csv(pd.DataFrame(records), args.out.with_suffix(".csv"), record)
    lines = [
        "# Certified fairness budgets: simulated validity",
        "",
        "`error rate`: share of draws in which some certified candidate has a population gap above the budget "
        "(the family-wise error); `limit`: 1 - C plus three binomial standard errors. `chosen certified`: share "
        "of draws with a certified choice; `true gap` / `bound`: mean population gap and upper bound of the chosen "
        "candidate when certified. `naive unfair`: share of draws in which choosing the most accurate candidate "
        "whose observed certification-half gap meets the budget picks an unfair one.",
        "",
        "| metric | soft bound | groups | rows | method | order | C | error rate | limit | valid | chosen certified "
        "| true gap | bound | naive unfair | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(f"| {r['metric']} | {r['soft_bound'] or '-'} | {r['groups']} | {r['rows']} | {r['method']} | "
                     f"{r['order']} | {r['confidence']} | {r['error_rate']:.3f} | {r['limit']:.3f} | "
                     f"{'yes' if r['valid'] else 'NO'} | {r['certified_rate']:.3f} | "
                     f"{r['mean_true_gap_of_chosen']:.3f} | {r['mean_bound_of_chosen']:.3f} | "
                     f"{r['naive_unfair_rate']:.3f} | {r['seconds']} |")
    write_markdown(args.out.with_suffix(".md"), lines, record)
    print(f"wrote {args.out.with_suffix('.md')} and .csv; {seconds:.0f} s")
    if not all(r["valid"] for r in records):
        sys.exit("some setting certified unfair candidates more often than the limit")


if __name__ == "__main__":
    main()
