"""Group thresholds beside in-processing under certified DP budgets: which model is most accurate?

Per dataset, seed and DP budget, every row is chosen on validation only and
certified at 95% confidence (the rule of ``fairbinn train --budget B``):

- **ERM**, **Lagrangian**, **FairBiNN** (the default game): every epoch of
  every eta of a certified eta search is a candidate (one search per
  strategy and seed at the tightest budget, shared by the budgets; ERM is
  trained once);
- **X + thresholds**: the model of the configured eta (the paper's) at its
  last epoch, with per-group thresholds fitted on the training rows at each
  rung of the ladder ``b * j / 10`` and certified on validation
  (``fairbinn train --postprocess thresholds``);
- **best**: one fixed-sequence test over all the candidates above, the most
  accurate certified on validation (the rule of ``--mode best``; here the
  searches are shared by the budgets, as above);
- **fairlearn ThresholdOptimizer**: fairlearn's post-processing of the same
  ERM network, fitted on the validation rows with ``tol=b``
  (``demographic_parity``, accuracy objective; randomised, not certified),
  as an outside reference.

The test split only reports: test accuracy and DP (mean ± std over seeds),
the mean 95% interval on the population DP from the test rows (exact), how
many seeds' test DP exceeds the budget, and how many seeds had a certified
choice.

    python benchmarks/thresholds.py                       # Adult and Health, 5 seeds
    python benchmarks/thresholds.py --datasets nba --etas 10 100 1000

Models are checkpointed in ``runs/thresholds`` (keyed by their settings), so
an interrupted run resumes and a re-run with the same settings reads the
finished models back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import fairbinn
from fairbinn.benchmark import get_benchmark
from fairbinn.core.certify import gap_interval
from fairbinn.core.metrics import accuracy, demographic_parity_difference
from fairbinn.core.postprocess import threshold_candidates, threshold_report
from reporting import mean_std, provenance, provenance_lines, swept, sweep_config, write_csv, write_json

HERE = Path(__file__).resolve().parent
DATASETS = {
    "adult": {"budgets": (0.02, 0.05, 0.10), "load": {}},
    "health": {"budgets": (0.10, 0.15, 0.20), "load": {}},
    "bail": {"budgets": (0.05, 0.10), "load": {}},
    "nba": {"budgets": (0.05, 0.10), "load": {"test_as_val": False}},
}
"""Each dataset's DP budgets (the tightest is the eta search's) and loading options (NBA: validation nodes apart
from the test nodes, so that choosing on validation is not choosing on test)."""
STRATEGIES = {"erm": "ERM", "lagrangian": "Lagrangian", "bilevel": "FairBiNN"}
ROWS = ["ERM", "ERM + thresholds", "Lagrangian", "Lagrangian + thresholds", "FairBiNN", "FairBiNN + thresholds",
        "best", "fairlearn ThresholdOptimizer (ERM network)"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["adult", "health"], choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(5)))
    parser.add_argument("--etas", type=float, nargs="+", help="default: searched automatically (etas='auto')")
    parser.add_argument("--epochs", type=int, help="default: the paper's")
    parser.add_argument("--data-dir", default=None, help="default $FAIRBINN_DATA")
    parser.add_argument("--checkpoint-dir", type=Path, default=HERE.parent / "runs" / "thresholds")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "thresholds")
    return parser.parse_args()


def _overrides(args: argparse.Namespace) -> dict:
    return {"epochs": args.epochs} if args.epochs else {}


def searched(data, dataset: str, args: argparse.Namespace) -> pd.DataFrame:
    """Every checkpoint of ERM, the Lagrangian and FairBiNN (eta search at the tightest budget), with bounds."""
    tables = []
    for strategy in STRATEGIES:
        etas = [0.0] if strategy == "erm" else (args.etas or "auto")
        table = fairbinn.sweep(data, [strategy], etas, args.seeds, checkpoint_dir=args.checkpoint_dir / dataset,
                               fused_adam=True, fairness_budget=min(DATASETS[dataset]["budgets"]), budget_metric="dp",
                               confidence=0.95, progress=False, **_overrides(args))
        tables.append(table.assign(strategy=STRATEGIES[strategy]))
    return pd.concat(tables, ignore_index=True)


def base_model(data, dataset: str, strategy: str, seed: int, args: argparse.Namespace):
    """The model post-processed by thresholds: the configured eta, the last epoch; saved and read back by key."""
    config = get_benchmark(data).paper_config(data).replace(**_overrides(args))
    config = config.for_strategy(strategy, seed=seed, selection_metric=None, progress=False)
    key = hashlib.sha256(json.dumps([config.to_dict() if hasattr(config, "to_dict") else repr(config),
                                     data.summary()], sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = args.checkpoint_dir / dataset / "base" / strategy / key
    if (folder / "model.json").is_file():
        return fairbinn.load_model(folder), config
    result = fairbinn.run(data, config)
    fairbinn.save_model(result.model, folder, config=result.config)
    return result.model, config


def _test_columns(prefix: str, y, decisions, s, groups) -> dict:
    lo, hi = gap_interval("dp", y, decisions, sensitive_features=s, all_groups=range(groups))
    return {f"{prefix}accuracy": accuracy(y, decisions),
            f"{prefix}dp": demographic_parity_difference(y, decisions, sensitive_features=s),
            f"{prefix}dp_lo": lo, f"{prefix}dp_hi": hi}


def _scores_estimator():
    """A prefit scikit-learn classifier whose single feature is the network's score (for fairlearn)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):
        def fit(self, X, y, **kwargs):
            self.classes_ = np.array([0, 1])
            return self

        def predict_proba(self, X):
            p = np.asarray(X, dtype=np.float64)[:, 0]
            return np.stack([1 - p, p], axis=1)

        def predict(self, X):
            return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    return Scores().fit(None, None)


def thresholded(data, dataset: str, seed: int, args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rung rows of each strategy's thresholds for every budget, and fairlearn's reference rows."""
    from fairlearn.postprocessing import ThresholdOptimizer

    rows, reference = [], []
    groups = len(data.group_names)
    for index, (strategy, label) in enumerate(STRATEGIES.items()):
        model, config = base_model(data, dataset, strategy, seed, args)
        train, val, test = get_benchmark(data).loaders(data, config)
        trainer = fairbinn.Trainer(config)
        fit_rows, val_rows, test_rows = (trainer.predict(model, part) for part in (train, val, test))
        for budget in DATASETS[dataset]["budgets"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                _, records = threshold_candidates(fit_rows, val_rows, budget=budget, metric="dp", seed=seed,
                                                  group_names=data.group_names, tiebreak=(-1.0, float(index)))
            for record in records:
                rung = record.pop("thresholds")
                val_report, _ = threshold_report(rung, val_rows, data.group_names, random_state=seed)
                decisions = rung.predict(test_rows[1], test_rows[2], random_state=seed)
                rows.append({"strategy": f"{label} + thresholds", "budget": budget, "seed": seed, "eta": -1.0 - index,
                             **record, "val_dp": val_report["dp"],
                             **_test_columns("test_", test_rows[0], decisions, test_rows[2], groups)})
            if strategy == "erm":  # fairlearn on the same network's validation scores
                optimizer = ThresholdOptimizer(estimator=_scores_estimator(), constraints="demographic_parity", tol=budget,
                                               prefit=True, predict_method="predict_proba")
                optimizer.fit(val_rows[1][:, None], val_rows[0], sensitive_features=val_rows[2])
                decisions = optimizer.predict(test_rows[1][:, None], sensitive_features=test_rows[2],
                                              random_state=seed)
                reference.append({"strategy": ROWS[-1], "budget": budget, "seed": seed, "found": True,
                                  **_test_columns("test_", test_rows[0], np.asarray(decisions), test_rows[2],
                                                  groups)})
    return pd.DataFrame(rows), pd.DataFrame(reference)


def choose(plain: pd.DataFrame, rungs: pd.DataFrame, budgets) -> pd.DataFrame:
    """Each row's certified choice per (seed, budget), and best's over all candidates."""
    chosen = []
    for budget in budgets:
        table = pd.concat([plain, rungs[rungs["budget"] == budget].drop(columns="budget")], ignore_index=True)
        chosen.append(fairbinn.accuracy_at_budgets(table, [budget], certified=True))
        best = fairbinn.accuracy_at_budgets(table.assign(candidate=table["strategy"], strategy="best"), [budget],
                                            certified=True)
        chosen.append(best)
    return pd.concat(chosen, ignore_index=True)


def summary(chosen: pd.DataFrame, dataset: str) -> list[dict]:
    rows = []
    for (label, budget), part in chosen.groupby(["strategy", "budget"], sort=False):
        found = part[part["found"].astype(bool)]
        shown, mean, _ = mean_std(found["test_accuracy"]) if len(found) else ("-", float("nan"), 0.0)
        winners = found["candidate"].value_counts().to_dict() if "candidate" in found and label == "best" else {}
        rows.append({"dataset": dataset, "row": label, "budget": budget, "seeds": len(part), "chosen": len(found),
                     "test accuracy": shown, "mean accuracy": mean,
                     "test dp": mean_std(found["test_dp"], 4)[0] if len(found) else "-",
                     "interval": (f"[{found['test_dp_lo'].mean():.4f}, {found['test_dp_hi'].mean():.4f}]"
                                  if len(found) else "-"),
                     "over budget": int((found["test_dp"] > budget).sum()), "winners": winners})
    return rows


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    summaries, chosen_all, seconds, configs = [], [], {}, {}
    for dataset in args.datasets:
        tick = time.perf_counter()
        data = fairbinn.load_benchmark(dataset, args.data_dir, **DATASETS[dataset]["load"])
        plain = searched(data, dataset, args)
        for strategy, label in STRATEGIES.items():
            configs[f"{dataset}: {label} (searched)"] = swept(sweep_config(
                data, strategy, fairness_budget=min(DATASETS[dataset]["budgets"]), budget_metric="dp",
                confidence=0.95, **_overrides(args)), args.etas or "auto")
        parts = [thresholded(data, dataset, seed, args) for seed in args.seeds]
        rungs = pd.concat([p[0] for p in parts], ignore_index=True)
        reference = pd.concat([p[1] for p in parts], ignore_index=True)
        chosen = pd.concat([choose(plain, rungs, DATASETS[dataset]["budgets"]), reference], ignore_index=True)
        chosen["strategy"] = pd.Categorical(chosen["strategy"], ROWS, ordered=True)
        chosen = chosen.sort_values(["budget", "strategy", "seed"], kind="stable")
        chosen["strategy"] = chosen["strategy"].astype(str)
        chosen_all.append(chosen.assign(dataset=dataset))
        summaries.extend(summary(chosen, dataset))
        seconds[dataset] = round(time.perf_counter() - tick)
        print(f"{dataset}: {seconds[dataset]} s", flush=True)
    table = pd.DataFrame(summaries)
    print(table.drop(columns=["winners"]).to_string(index=False))
    record = provenance(Path(__file__).name, {
        "seeds": args.seeds, "confidence": 0.95, "metric": "dp", "epochs": args.epochs or "the paper's",
        "eta": "searched (etas='auto', on the training-rows gap)" if args.etas is None else args.etas,
        "budgets": {d: DATASETS[d]["budgets"] for d in args.datasets},
        "config": "each dataset's paper settings (fairbinn.benchmark.get_benchmark(data).paper_config) "
                  "with the library's defaults otherwise; fused Adam in stacks; "
                  "thresholds on the paper's eta at the last epoch"}, configs=configs)
    record["seconds"] = round(time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    chosen = pd.concat(chosen_all, ignore_index=True)
    keep = ["dataset", "strategy", "budget", "seed", "found", "candidate", "eta", "epoch", "val_accuracy",
            "val_bound", "test_accuracy", "test_dp", "test_dp_lo", "test_dp_hi"]
    write_csv(chosen[[c for c in keep if c in chosen.columns]], args.out.with_suffix(".csv"), record)
    write_json(args.out.with_suffix(".json"), {"summary": summaries}, record)
    lines = ["# Group thresholds beside in-processing under certified DP budgets", "",
             f"- wall time: {record['seconds']} s (" + ", ".join(f"{k} {v} s" for k, v in seconds.items())
             + f"; models are cached in {args.checkpoint_dir.name}/)", *provenance_lines(record), "",
             "Per budget: test accuracy and test DP (mean ± std over the seeds with a certified choice), the mean "
             "exact 95% interval on the population DP from the test rows, and the seeds whose test DP exceeds the "
             "budget. Every row but fairlearn's is chosen on validation only and certified at 95% confidence; "
             "`chosen / seeds` counts the seeds where something was certified. best's winners are counted in the "
             "last column.", "",
             "| dataset | budget | row | chosen / seeds | test accuracy | test DP | interval | over budget | "
             "best's winners |", "|---|---|---|---|---|---|---|---|---|"]
    for row in summaries:
        winners = ", ".join(f"{k} {v}" for k, v in row["winners"].items())
        lines.append(f"| {row['dataset']} | {row['budget']:g} | {row['row']} | {row['chosen']} / {row['seeds']} | "
                     f"{row['test accuracy']} | {row['test dp']} | {row['interval']} | {row['over budget']} | "
                     f"{winners} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
