r"""Reproduction report: fronts on Adult and Health from every checkpoint, etas searched on validation, beside the paper.

For each dataset, ``fairbinn.sweep(..., etas="auto")`` trains, per strategy,
a coarse pass (eta 0 and one per decade from 0.01 to 10000, a fifth of the
epochs) and a refined pass (8 etas inside the interval where validation DP
moves from ERM's level to ~0, all the epochs), 5 seeds sharing the etas, in
``fairbinn.TrainConfig()``'s defaults (50 epochs, batch 100, Adam 1e-3 for
the network, fairness layers 1e-5, the follower on SGD, the leader penalty
on; 1 fairness layer on Adult, 3 on Health) but for what each part's name
says. Strategies:

- ``bilevel``: FairBiNN's default game (the leader on BCE + eta * fairness,
  the follower on eta * fairness, by SGD);
- ``bilevel-paper``: the paper's Algorithm 1 as written (the leader on BCE
  alone; ``leader_penalty=False``);
- ``bilevel-simultaneous``: the same game with both players' gradients
  from one forward pass (``order="simultaneous"``);
- ``bilevel-rate`` and ``lagrangian-rate``: the same game and the
  Lagrangian with the constraint on the rate surrogate of the thresholded
  decision (``surrogate="rate"``, temperature 0.1);
- ``bilevel-adam``: the same game with the authors' released code's
  follower, Adam on eta * fairness (``follower_optimizer="adam"``);
  ``bilevel-adam-rate``: the Adam follower on the rate surrogate;
  ``bilevel-bce``: the follower (SGD) on BCE + eta * fairness;
- ``stackelberg``, ``stackelberg-implicit`` and ``stackelberg-rate``: the
  leader on its hypergradient through the follower's response (one unrolled
  follower step; the implicit-function theorem with 10 conjugate-gradient
  iterations; unrolled, on the rate surrogate);
- ``lagrangian`` and ``erm``.

Every epoch of every model is a candidate. Per seed and budget, the chosen
checkpoint has the best *validation* accuracy among those whose *validation*
gap meets the budget; only its test metrics are shown (mean ± std over the
seeds). The report gives accuracy at DP and soft-DP budgets beside the
paper's, fairbinn's accuracy targets with a verdict, the area over each seed's
validation-chosen front and whether the bilevel front dominates the
Lagrangian one, and the plots.

The report also tests the paper's Theorem: at matched validation fairness
(each budget), is a game's smallest training BCE at most the Lagrangian's?

Usage::

    python benchmarks/sweep_report.py --data-dir ../shared/data
    python benchmarks/sweep_report.py --datasets adult --seeds 1 --epochs 3   # a quick look
    # parts in parallel, one process each, resumable; then one report of them all
    DATA_DIR=../shared/data WORK=/tmp/sweeps bash benchmarks/sweep_parallel.sh adult:stackelberg adult:bilevel-adam
    python benchmarks/sweep_report.py --data-dir ../shared/data --gather /tmp/sweeps/*-*/ --no-train

Writes ``<out>/sweep_<dataset>.csv.xz`` (every checkpoint, xz-compressed; ``pandas.read_csv`` reads it) with
``sweep_<dataset>.json`` (each part's settings, time and
``reporting.run_key``: a stored part is reused only when its key matches, so
the report can be redrawn without retraining) and the provenance in
``sweep_<dataset>.provenance.json``; ``<out>/sweep_<dataset>_<dp|soft_dp>.png``
/ ``.svg``; and ``<out>/sweep.md``, headed by the command, commit, machine and
every part's TrainConfig.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import fairbinn
from fairbinn.core import accuracy_at_budgets, area_over_curve, pareto_front
from fairbinn.plotting import save_figure
from fairbinn.search import EtaSearch
from fairbinn.tabular import load_tabular
from reporting import (data_summary, provenance, run_key, swept, sweep_config, write_csv, write_json,
                       write_markdown)

HERE = Path(__file__).parent
BUDGETS = {"adult": (0.01, 0.02, 0.05, 0.10), "health": (0.05, 0.10, 0.20)}
PAPER = {  # FairBiNN's accuracy at a budget, read off the paper's plots (its DP is a gap of mean scores: soft DP)
    "adult": {0.01: 0.836, 0.05: 0.839, 0.10: 0.841},
    "health": {0.10: 0.692, 0.20: 0.788},
}
TARGETS = {  # fairbinn's accuracy targets: (strategy or "best", fairness, budget) -> test accuracy, mean of the seeds
    "adult": {("bilevel", "dp", 0.02): 0.830, ("bilevel", "dp", 0.05): 0.835, ("bilevel", "dp", 0.10): 0.840,
              ("bilevel", "soft_dp", 0.01): 0.836},
    "health": {("best", "soft_dp", 0.10): 0.75, ("best", "soft_dp", 0.20): 0.79},
}
FAIRNESS = ("dp", "soft_dp")
PARTS = {  # label: (strategy, TrainConfig settings beside the defaults; the label names each one)
    "bilevel": ("bilevel", {}),
    "bilevel-paper": ("bilevel", {"leader_penalty": False}),
    "bilevel-simultaneous": ("bilevel", {"order": "simultaneous"}),
    "bilevel-rate": ("bilevel", {"surrogate": "rate"}),
    "bilevel-adam": ("bilevel", {"follower_optimizer": "adam"}),
    "bilevel-adam-rate": ("bilevel", {"follower_optimizer": "adam", "surrogate": "rate"}),
    "bilevel-bce": ("bilevel", {"follower_bce": True}),
    "stackelberg": ("stackelberg", {}),
    "stackelberg-implicit": ("stackelberg", {"hypergradient": "implicit"}),
    "stackelberg-rate": ("stackelberg", {"surrogate": "rate"}),
    "lagrangian": ("lagrangian", {}),
    "lagrangian-rate": ("lagrangian", {"surrogate": "rate"}),
    "erm": ("erm", {}),
}
GAMES = ("bilevel", "bilevel-paper", "bilevel-simultaneous", "bilevel-rate", "bilevel-adam", "bilevel-adam-rate",
         "bilevel-bce", "stackelberg", "stackelberg-implicit", "stackelberg-rate")
COMPARED = (*GAMES, "lagrangian-rate")  # each front compared with the Lagrangian's, seed by seed
ORDERS = ("bilevel", "bilevel-simultaneous")  # the default game in its two orders, compared seed by seed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data directory (default $FAIRBINN_DATA)")
    parser.add_argument("--datasets", nargs="+", default=["adult", "health"])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="device the parts train on (default cpu; e.g. cuda)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="resumable: each stack checkpoints every epoch under DIR/<dataset>/; run again with the "
                             "same DIR to continue an interrupted part (on any device)")
    parser.add_argument("--gather", type=Path, nargs="+", default=[], metavar="DIR",
                        help="also take the parts trained into these other --out directories with the same "
                             "settings (e.g. one process per part); a part found there replaces the one in --out")
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS),
                        help="train only these of the parts not trained yet (default all)")
    parser.add_argument("--no-train", action="store_true",
                        help="report only the parts already trained (in --out and --gather), training none; the "
                             "report says which parts are missing")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args()


def part_config(data, label: str, args: argparse.Namespace):
    """The TrainConfig of part ``label`` (eta and seed vary per model)."""
    strategy, overrides = PARTS[label]
    return sweep_config(data, strategy, epochs=args.epochs, progress=False, device=args.device, **overrides)


def part_key(config, summary: dict, args: argparse.Namespace) -> str:
    """:func:`reporting.run_key` of a part: its TrainConfig (the device left out: a part trained on a GPU is
    gathered into a CPU report, its device named beside it), the data, the seeds and the eta search."""
    values = {k: v for k, v in config.to_dict().items() if k != "device"}
    return run_key(values, summary, seeds=args.seeds, etas="auto", search=str(EtaSearch()))


def checkpoints_file(directory: Path, dataset: str) -> Path:
    """Where the report keeps every checkpoint of ``dataset``'s parts: ``sweep_<dataset>.csv.xz`` (pandas infers
    the compression from the name, writing and reading)."""
    return directory / f"sweep_{dataset}.csv.xz"


def _stored(directory: Path, dataset: str, keys: dict[str, str]) -> dict[str, tuple[pd.DataFrame, float, str]]:
    """The parts trained into ``directory`` for ``dataset`` whose stored key is ``keys[label]``: label -> (rows,
    seconds, device). Parts stored with another key, or none (older files), are left out and said so."""
    path, meta = checkpoints_file(directory, dataset), directory / f"sweep_{dataset}.json"
    if not path.exists():
        path = directory / f"sweep_{dataset}.csv"  # as stored uncompressed
    if not (path.exists() and meta.exists()):
        return {}
    saved = json.loads(meta.read_text())
    stored, trained = saved.get("part_keys", {}), saved.get("settings", {}).get("parts", [])
    labels = [label for label in trained if label in keys and stored.get(label) == keys[label]]
    if len(labels) < len(trained):
        print(f"{dataset}: {path}: {', '.join(l for l in trained if l not in labels)} trained with other settings "
              "(or stored without a run key); not used")
    if not labels:
        return {}
    rows = pd.read_csv(path)
    devices = saved.get("device", {})
    return {label: (rows[rows["strategy"] == label], saved["wall_time_s"][label], devices.get(label, "cpu"))
            for label in labels}


def _device_name(device: str) -> str:
    """``device`` as the report names it: "cpu", or e.g. "cuda (NVIDIA H200, torch 2.11.0)"."""
    kind = torch.device(device).type
    if kind != "cuda":
        return device
    return f"{device} ({torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__})"


def run_sweep(dataset: str, args: argparse.Namespace) -> tuple[pd.DataFrame, dict[str, float], dict[str, str], dict]:
    """Every checkpoint of every strategy (reused from disk when the part's key matches), each part's time, device
    and TrainConfig as its results file records it (:func:`reporting.swept`: eta per model)."""
    path = checkpoints_file(args.out, dataset)
    settings = {"epochs": args.epochs, "seeds": args.seeds, "etas": "auto", "search": str(EtaSearch())}
    data = load_tabular(dataset, args.data_dir)
    summary = data_summary(data)
    configs = {label: part_config(data, label, args) for label in PARTS}
    keys = {label: part_key(configs[label], summary, args) for label in PARTS}
    parts = _stored(args.out, dataset, keys)
    if parts:
        print(f"{dataset}: reusing {', '.join(parts)} from {path}")
    gathered = {}
    for directory in args.gather:
        found = _stored(directory, dataset, keys)
        if found:
            print(f"{dataset}: taking {', '.join(found)} from {directory}")
        gathered.update(found)
    parts.update(gathered)
    missing = [label for label in PARTS if label not in parts and label in args.parts]
    if args.no_train:
        if not parts:
            raise SystemExit(f"--no-train: nothing trained for {dataset} in {args.out}")
        missing = []
    for label in missing:
        strategy, overrides = PARTS[label]
        checkpoints = None if args.checkpoint_dir is None else args.checkpoint_dir / dataset
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # models missing the marking budget are expected
            etas = [0.0] if strategy == "erm" else "auto"
            table = fairbinn.sweep(data, [strategy], etas, range(args.seeds), epochs=args.epochs, progress=False,
                                   device=args.device, checkpoint_dir=checkpoints, **overrides)
        seconds = time.perf_counter() - start
        parts[label] = (table.assign(strategy=label), seconds, _device_name(args.device))
        print(f"{dataset} {label}: {table['eta'].nunique()} etas x {args.seeds} seeds, {len(table)} checkpoints "
              f"in {seconds:.0f} s on {args.device}", flush=True)
    if not parts:
        raise SystemExit(f"{dataset}: none of --parts {' '.join(args.parts)} is trained and none is to train")
    order = [label for label in PARTS if label in parts]
    table = pd.concat([parts[label][0] for label in order], ignore_index=True)
    seconds = {label: parts[label][1] for label in order}
    devices = {label: parts[label][2] for label in order}
    rows = {label: swept(configs[label], "auto") for label in order}
    if missing or gathered:
        record = provenance(Path(__file__).name, {**settings, "dataset": dataset, "threads": args.threads},
                            configs=rows)
        write_csv(table, path, record, float_format="%.6g")  # 6 digits: the report reads 3
        write_json(args.out / f"sweep_{dataset}.json", {"settings": {**settings, "parts": order},
                                               "part_keys": {label: keys[label] for label in order},
                                               "wall_time_s": seconds, "device": devices}, record)
    return table, seconds, devices, rows


def _present(table: pd.DataFrame, labels=tuple(PARTS)) -> list[str]:
    """Those of ``labels`` (default: every part) that ``table`` holds, in order."""
    trained = set(table["strategy"])
    return [label for label in labels if label in trained]


def _cell(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return "none"
    return (f"{values.mean():.{digits}f} ± {values.std():.{digits}f}" if len(values) > 1
            else f"{values.mean():.{digits}f}")


def chosen_accuracy(table: pd.DataFrame, fairness: str, budget: float) -> dict[str, pd.Series]:
    """Per strategy, the test accuracy of each seed's checkpoint chosen on validation (NaN: none met it)."""
    chosen = accuracy_at_budgets(table, [budget], fairness=fairness)
    return {strategy: part.set_index("seed")["test_accuracy"] for strategy, part in chosen.groupby("strategy")}


def budget_table(table: pd.DataFrame, dataset: str, fairness: str) -> list[str]:
    budgets = BUDGETS[dataset]
    seeds = table["seed"].nunique()
    head = "| strategy | " + " | ".join(f"{fairness} ≤ {b:g}" for b in budgets) + " |"
    lines = [head, "|---" * (len(budgets) + 1) + "|"]
    per_budget = {budget: chosen_accuracy(table, fairness, budget) for budget in budgets}
    for strategy in _present(table):
        cells = []
        for budget in budgets:
            accuracies = per_budget[budget][strategy]
            found = int(accuracies.notna().sum())
            cells.append(_cell(accuracies) + (f" ({found}/{seeds} seeds)" if found < seeds else ""))
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    paper = PAPER[dataset]
    lines.append("| paper, FairBiNN | " + " | ".join(f"{paper[b]:.3f}" if b in paper else "" for b in budgets) + " |")
    return lines


def target_lines(table: pd.DataFrame, dataset: str) -> list[str]:
    """fairbinn's accuracy targets: met or missed, by how much (means over the seeds; a seed meeting no budget
    counts as 0)."""
    lines = []
    for (strategy, fairness, budget), target in TARGETS[dataset].items():
        accuracies = chosen_accuracy(table, fairness, budget)
        candidates = [s for s in _present(table) if s != "erm"] if strategy == "best" else [strategy]
        candidates = [s for s in candidates if s in accuracies]
        if not candidates:
            lines.append(f"- {strategy} at {fairness} ≤ {budget:g}: not trained here")
            continue
        means = {s: accuracies[s].fillna(0.0).mean() for s in candidates}
        best = max(means, key=means.get)
        ours = means[best]
        verdict = "**met**" if ours >= target else f"**missed by {target - ours:.3f}**"
        lines.append(f"- {best} at {fairness} ≤ {budget:g}: {ours:.3f} against the target {target:.3f}: {verdict}"
                     + (f" (best of {', '.join(candidates)})" if strategy == "best" else ""))
    return lines


def paper_lines(table: pd.DataFrame, dataset: str) -> list[str]:
    """Where ``bilevel`` (fairbinn's default game) beats, matches (±0.005) or falls short of the
    paper, on both DP readings."""
    lines = []
    for fairness in FAIRNESS:
        for budget, paper in PAPER[dataset].items():
            accuracies = chosen_accuracy(table, fairness, budget).get("bilevel", pd.Series(dtype=float)).dropna()
            if accuracies.empty:
                lines.append(f"- bilevel, {fairness} ≤ {budget:g}: no checkpoint meets it on validation "
                             f"(paper {paper:.3f}): **falls short**.")
                continue
            ours = accuracies.mean()
            word = "beats" if ours > paper + 0.005 else "matches" if ours >= paper - 0.005 else "falls short of"
            lines.append(f"- bilevel, {fairness} ≤ {budget:g}: {ours:.3f} ({len(accuracies)} seeds) **{word}** the "
                         f"paper's {paper:.3f}.")
    return lines


def seed_front(part: pd.DataFrame, fairness: str) -> pd.DataFrame:
    """The checkpoints of one strategy and seed on the validation Pareto front."""
    return pareto_front(part, accuracy="val_accuracy", unfairness=f"val_{fairness}")


def dominates(front: pd.DataFrame, other: pd.DataFrame, fairness: str) -> bool:
    """Every point of ``other`` is weakly beaten (test accuracy up, test unfairness down) by one of ``front``."""
    acc, unf = "test_accuracy", f"test_{fairness}"
    return all(((front[acc] >= point[acc]) & (front[unf] <= point[unf])).any() for _, point in other.iterrows())


def claim_section(table: pd.DataFrame, fairness: str) -> list[str]:
    acc, unf = "test_accuracy", f"test_{fairness}"
    if "lagrangian" not in set(table["strategy"]) or not _present(table, COMPARED):
        return ["Not compared: the Lagrangian or every game is missing here."]
    fair = table[table["strategy"] != "erm"]
    seeds = sorted(table["seed"].unique())
    fronts = {s: [seed_front(fair[(fair["strategy"] == s) & (fair["seed"] == seed)], fairness) for seed in seeds]
              for s in _present(table, [*COMPARED, "lagrangian"])}
    chosen = pd.concat([f for parts in fronts.values() for f in parts])
    reference = (chosen[acc].min(), chosen[unf].max())
    areas = {s: [area_over_curve(f[[acc, unf]].to_numpy(), reference) for f in parts] for s, parts in fronts.items()}
    lines = [f"Area over the curve: the region of test accuracy x test {fairness} dominated by each seed's front "
             f"(the checkpoints on its validation front, at their test metrics), up to the worst corner of all "
             f"these points (accuracy {reference[0]:.3f}, {fairness} {reference[1]:.3f}); larger is better.", ""]
    for game in _present(table, COMPARED):
        holds = sum(dominates(b, l, fairness) for b, l in zip(fronts[game], fronts["lagrangian"]))
        bigger = sum(b > l for b, l in zip(areas[game], areas["lagrangian"]))
        lines.append(f"- **{game}** vs Lagrangian: its front dominates in {holds} of {len(seeds)} seeds; area "
                     f"{_cell(pd.Series(areas[game]), 4)} against {_cell(pd.Series(areas['lagrangian']), 4)}, "
                     f"larger in {bigger} of {len(seeds)} seeds.")
    return lines


def theorem_lines(table: pd.DataFrame, dataset: str, fairness: str) -> list[str]:
    """The paper's Theorem tested: at matched validation fairness, is a game's training loss at most the Lagrangian's?

    Per seed and budget, each strategy's smallest training BCE (the epoch's mean over its steps) among the
    checkpoints whose validation gap meets the budget; a game against the Lagrangian on the same fairness loss
    (``lagrangian-rate`` for the ``-rate`` games), seed by seed."""
    def measured(label: str) -> bool:
        return "train_bce" in table and table.loc[table["strategy"] == label, "train_bce"].notna().any()

    baselines = [label for label in ("lagrangian", "lagrangian-rate") if measured(label)]
    if "lagrangian" not in baselines:
        return ["Not measured: the Lagrangian is not trained here, or was trained before the sweep recorded "
                "training losses."]
    games = [g for g in _present(table, GAMES) if measured(g)]
    lines = ["The smallest training BCE among a seed's checkpoints whose validation gap meets the budget "
             "(mean ± std over the seeds where one does); `≤ L` counts the seeds where the game's is at most "
             "the Lagrangian's on the same fairness loss (`lagrangian-rate` for the rate-surrogate games), of the "
             "seeds where both meet the budget; `all` sums those counts over the budgets.", "",
             "| strategy | " + " | ".join(f"{fairness} ≤ {b:g}" for b in BUDGETS[dataset]) + " | all |",
             "|---" * (len(BUDGETS[dataset]) + 2) + "|"]
    least = {budget: table[table[f"val_{fairness}"] <= budget].groupby(["strategy", "seed"])["train_bce"].min()
             for budget in BUDGETS[dataset]}
    empty = pd.Series(dtype=float)
    for strategy in [*baselines, *games]:
        baseline = "lagrangian-rate" if strategy.endswith("-rate") else "lagrangian"
        compared = strategy not in baselines and baseline in baselines
        cells, held, pairs = [], 0, 0
        for budget in BUDGETS[dataset]:
            ours = least[budget].get(strategy, empty)
            cell = _cell(ours)
            if compared:
                paired = pd.concat([ours, least[budget].get(baseline, empty)], axis=1, keys=["game", "L"]).dropna()
                below = int((paired["game"] <= paired["L"]).sum())
                held, pairs = held + below, pairs + len(paired)
                cell += f" (≤ L in {below}/{len(paired)})"
            cells.append(cell)
        total = f"{held} of {pairs}" if compared else ""
        lines.append(f"| {strategy} | " + " | ".join(cells) + f" | {total} |")
    return lines


def order_lines(table: pd.DataFrame, dataset: str, fairness: str) -> list[str]:
    """``bilevel``'s two orders seed by seed: the paired difference of test accuracy at each budget."""
    if len(_present(table, ORDERS)) < 2:
        return [f"Not trained here: {', '.join(set(ORDERS) - set(_present(table, ORDERS)))}."]
    first, second = ORDERS
    lines = [f"| {fairness} budget | {first} | {second} | {second} - {first}, paired by seed |", "|---|---|---|---|"]
    for budget in BUDGETS[dataset]:
        chosen = chosen_accuracy(table, fairness, budget)
        a, b = chosen[first], chosen[second]
        difference = (b - a).dropna()
        lines.append(f"| {budget:g} | {_cell(a)} | {_cell(b)} | {_cell(difference)} "
                     f"({len(difference)} seeds; larger in {int((difference > 0).sum())}) |")
    return lines


def eta_table(table: pd.DataFrame) -> list[str]:
    """Per strategy and eta, the models' selected epochs (best validation accuracy), mean ± std over the seeds."""
    models = table[table["selected"]]
    lines = ["| strategy | eta | pass | epoch | val accuracy | val DP | test accuracy | test DP | test soft DP |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (strategy, eta), part in models.groupby(["strategy", "eta"], sort=False):
        search = part["search"].iloc[0] if "search" in part and isinstance(part["search"].iloc[0], str) else ""
        lines.append(f"| {strategy} | {eta:.3g} | {search} | " + " | ".join(
            _cell(part[c]) for c in ("epoch", "val_accuracy", "val_dp", "test_accuracy", "test_dp", "test_soft_dp"))
            + " |")
    return lines


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Accuracy-fairness fronts on Adult and Health",
        "",
        "Each part's device below. Per "
        f"strategy, etas searched on validation (`fairbinn.sweep(etas=\"auto\")`: eta 0 and one per decade from "
        f"0.01 to 10000 for a fifth of the epochs, then 8 etas inside the interval where validation DP moves from "
        f"ERM's level to ~0 for all of them), seeds 0-{args.seeds - 1} sharing the etas, {args.epochs} epochs, "
        "batch 100, Adam lr 1e-3 for the network (fairness layers 1e-5), `fairbinn.TrainConfig()`'s defaults but "
        "for what a part's name says (each part's TrainConfig above). "
        "`bilevel` is FairBiNN's default game (the leader also minimises eta * fairness; the follower, on "
        "SGD, steps first); "
        "`bilevel-simultaneous` the same game with both players' gradients from one forward pass; "
        "`bilevel-rate` / `lagrangian-rate` the same game / the Lagrangian constraining the rate surrogate of "
        "the thresholded decision (`surrogate=\"rate\"`, temperature 0.1) instead of the scores; "
        "`bilevel-paper` the paper's Algorithm 1 as written (the leader on BCE alone); `bilevel-adam` / "
        "`bilevel-bce` the same game with the follower on Adam (the authors' released code's) / on BCE + eta * "
        "fairness, `bilevel-adam-rate` the Adam follower on the rate surrogate; `stackelberg` the leader on its "
        "hypergradient through one unrolled follower step, `stackelberg-implicit` through the implicit-function "
        "theorem (10 conjugate-gradient iterations, damping 1), `stackelberg-rate` unrolled on the rate surrogate. "
        "The fairness loss is eta * (largest gap between "
        "groups' mean score)²; on Health the groups are the 9 age buckets.",
        "",
        "Every checkpoint (every epoch of every eta) is a candidate. Selection is honest: a budget's point is, "
        "per seed, the checkpoint with the best *validation* accuracy among those whose *validation* gap meets "
        "the budget; only its test numbers are shown (mean ± std over the seeds where one met the budget). The "
        "authors' released code picks its Pareto points from per-epoch test results; we do not.",
        "",
        "`dp` is the demographic parity difference of thresholded predictions (fairlearn's definition); "
        "`soft_dp` the gap between groups' mean predicted probability, the quantity the paper's figures plot. "
        "The paper's figures are read off its plots.",
    ]
    configs = {}
    for dataset in args.datasets:
        table, seconds, devices, parts = run_sweep(dataset, args)
        configs.update({f"{dataset}: {label}": row for label, row in parts.items()})
        times = ", ".join(f"{label} {s:.0f} s" + ("" if devices[label] == "cpu" else f" on {devices[label]}")
                          for label, s in seconds.items())
        lines += ["", f"## {dataset.capitalize()}", "",
                  f"{table.groupby(['strategy', 'eta', 'seed']).ngroups} models, {len(table)} checkpoints; trained in "
                  f"{sum(seconds.values()):.0f} s ({times}; on the CPU unless said, each pass one stack; a part resumed "
                  "from checkpoints counts the time of the run that finished it)."
                  + (f" Not trained for {dataset}: {', '.join(p for p in PARTS if p not in seconds)}."
                     if len(seconds) < len(PARTS) else ""),
                  "", "fairbinn's accuracy targets (test accuracy, mean over the seeds, chosen on validation):", "",
                  *target_lines(table, dataset), "",
                  "Against the paper (`bilevel`: fairbinn's default game, the follower on SGD):", "",
                  *paper_lines(table, dataset)]
        for fairness in FAIRNESS:
            lines += ["", f"### Test accuracy at a {fairness} budget", "", *budget_table(table, dataset, fairness)]
            lines += ["", f"Does a bilevel front dominate the Lagrangian one ({fairness})?", "",
                      *claim_section(table, fairness)]
            lines += ["", f"The paper's Theorem at matched validation {fairness} (training BCE):", "",
                      *theorem_lines(table, dataset, fairness)]
            lines += ["", f"`bilevel`'s update order, follower first or simultaneous ({fairness}):", "",
                      *order_lines(table, dataset, fairness)]
            figure = fairbinn.plot_fronts(table, fairness=fairness, budgets=BUDGETS[dataset],
                                          reference=HERE / "reference" / f"paper_{dataset}.csv",
                                          title=f"{dataset}: {args.seeds} seeds, {args.epochs} epochs, every "
                                                "checkpoint a candidate")
            written = save_figure(figure, args.out / f"sweep_{dataset}_{fairness}")
            lines += ["", f"![{dataset} {fairness}]({written[0].name})"]
        lines += ["", "### Every eta: each model's epoch of best validation accuracy, mean ± std over seeds", "",
                  *eta_table(table)]
    record = provenance(Path(__file__).name, {
        "datasets": " ".join(args.datasets), "seeds": args.seeds, "epochs": args.epochs, "etas": "auto",
        "parts": " ".join(args.parts), "gather": " ".join(map(str, args.gather)), "no train": args.no_train,
        "device": args.device, "threads": args.threads}, configs=configs)
    write_markdown(args.out / "sweep.md", lines, record)
    print("\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
