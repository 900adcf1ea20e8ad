"""What the automatic eta search costs next to one 50-epoch run, on Adult with ``TrainConfig()``'s defaults.

One process, interleaved: each round times, per strategy, one model trained
alone (``run_tabular``, 50 epochs, seed 0), then the search that
``fairbinn train --budget 0.05`` runs (``choose_under_budget``: 8 coarse etas
for 10 epochs and 8 refined etas for 50, each pass one stack, fused Adam, no
test evaluation), then the same search as ``sweep(etas="auto")`` runs it for
a report (Adam as a model alone has it, the test split evaluated after every
epoch). Every run uses ``fairbinn.TrainConfig()``'s defaults (the bilevel
follower on SGD, the leader penalty on) but for the strategy and
``--epochs``. The ratios are medians over the rounds.

Usage::

    python benchmarks/eta_search_cost.py --data-dir ../shared/data
    python benchmarks/eta_search_cost.py --rounds 1 --strategies bilevel   # a quick look

Writes ``<out>/eta_search_cost.md`` and ``.json`` (each headed by the command, commit, machine and
the TrainConfig of each strategy).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch

import fairbinn
from fairbinn.tabular import load_tabular
from reporting import provenance, write_json, write_markdown

HERE = Path(__file__).parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--strategies", nargs="+", default=["bilevel", "lagrangian"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    return parser.parse_args()


def _seconds(task) -> float:
    start = time.perf_counter()
    task()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    data = load_tabular("adult", args.data_dir)
    config = fairbinn.TrainConfig(epochs=args.epochs, progress=False)
    tasks = {
        "one model": lambda s: fairbinn.run_tabular(data, config.replace(strategy=s)),
        "train --budget search": lambda s: fairbinn.choose_under_budget(data, s, 0.05, config=config),
        "sweep(etas='auto')": lambda s: fairbinn.sweep(data, [s], "auto", [0], config=config),
    }
    times = {(s, name): [] for s in args.strategies for name in tasks}
    warnings.simplefilter("ignore", UserWarning)  # models missing the budget are expected during the search
    for round_ in range(args.rounds):
        for strategy in args.strategies:
            for name, task in tasks.items():
                times[strategy, name].append(_seconds(lambda: task(strategy)))
                print(f"round {round_ + 1}, {strategy}, {name}: {times[strategy, name][-1]:.1f} s", flush=True)
    rows = []
    for strategy in args.strategies:
        one = statistics.median(times[strategy, "one model"])
        for name in tasks:
            seconds = statistics.median(times[strategy, name])
            rows.append({"strategy": strategy, "task": name, "seconds": seconds, "over_one_model": seconds / one,
                         "all_seconds": times[strategy, name]})
    lines = [
        "# Cost of the automatic eta search",
        "",
        f"Adult, `fairbinn.TrainConfig()` but for the strategy and {args.epochs} epochs (batch 100), CPU, "
        f"{torch.get_num_threads()} threads; one process, {args.rounds} interleaved rounds, medians. The search trains 16 etas (8 coarse for a "
        "fifth of the epochs, 8 refined for all of them), each pass one stack.",
        "",
        "| strategy | what | seconds | × one model |",
        "|---|---|---|---|",
        *[f"| {r['strategy']} | {r['task']} | {r['seconds']:.1f} | {r['over_one_model']:.2f} |" for r in rows],
    ]
    record = provenance(Path(__file__).name, {"strategies": " ".join(args.strategies), "rounds": args.rounds,
                                              "epochs": args.epochs, "threads": args.threads},
                        configs={s: config.replace(strategy=s) for s in args.strategies})
    write_markdown(args.out / "eta_search_cost.md", lines, record)
    write_json(args.out / "eta_search_cost.json", {"rows": rows, "rounds": args.rounds}, record)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
