"""ERM, Lagrangian and FairBiNN (bilevel) on UCI Adult and Heritage Health, several seeds.

Every row trains ``fairbinn.TrainConfig()``'s defaults (what ``fairbinn train
--mode bilevel`` trains) except what its label names: the paper's network
(two fully connected layers as wide as the input, the fairness block, 1 layer
for Adult and 3 for Health, one output layer), 50 epochs, batch 100, Adam lr
1e-3 for the network, fairness layers lr 1e-5, eta 100; FairBiNN's follower
(the fairness layers) steps by SGD and its leader minimises BCE + eta *
fairness (``leader_penalty=True``). Rows: ERM; the Lagrangian at eta 100;
FairBiNN (the default game) at eta 100; the paper's Algorithm 1 as written
(the leader on BCE alone, ``leader_penalty=False``); the Lagrangian and
FairBiNN at eta 5 (the authors' eta of 100 on our loss scale, see the
README). Each run reports the test metrics of the epoch chosen on validation
accuracy.

Usage::

    python benchmarks/tabular.py --data-dir ../shared/data            # everything, 5 seeds
    python benchmarks/tabular.py --datasets adult --seeds 1 --epochs 5  # a quick look

Writes ``<out>/tabular_runs.jsonl`` (one line per run, keyed by
``reporting.run_key`` of its TrainConfig and data: a run with the same
settings is reused when the script is started again, any other setting
trains), ``<out>/tabular.md`` (mean and standard deviation over seeds, headed
by the command, commit, machine and every row's TrainConfig) and
``<out>/tabular.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from fairbinn.core import TrainConfig
from fairbinn.tabular import load_tabular, run_tabular
from reporting import data_summary, keyed_run_log, mean_std_tables, provenance, run_key, write_json, write_markdown

CONFIGURATIONS = [
    # label, TrainConfig settings beside the defaults (the label names each one that is not a default)
    ("ERM", {"strategy": "erm", "eta": 0.0}),
    ("Lagrangian, eta 100", {"strategy": "lagrangian"}),
    ("FairBiNN, eta 100", {}),
    ("FairBiNN, Algorithm 1 (leader on BCE alone), eta 100", {"leader_penalty": False}),
    ("Lagrangian, eta 5", {"strategy": "lagrangian", "eta": 5.0}),
    ("FairBiNN, eta 5", {"eta": 5.0}),
]
METRICS = ["accuracy", "auc", "ap", "dp", "eo", "soft_dp", "soft_eo"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data directory (default $FAIRBINN_DATA)")
    parser.add_argument("--datasets", nargs="+", default=["adult", "health"])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: as fast for this small network, and two "
                             "processes can then share a 2-core machine)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    log = keyed_run_log(args.out / "tabular_runs.jsonl")
    done = log.records()
    base = TrainConfig(epochs=args.epochs, device=args.device, progress=False)
    wanted, configs = [], {}
    for dataset in args.datasets:
        for seed in range(args.seeds):
            data = load_tabular(dataset, args.data_dir, seed=seed)
            summary = data_summary(data, seed=seed)
            for label, settings in CONFIGURATIONS:
                config = base.replace(**settings, seed=seed)
                configs.setdefault(label, config)
                key = run_key(config, summary)
                wanted.append(key)
                if key in done:
                    continue
                start = time.perf_counter()
                result = run_tabular(data, config)
                record = {
                    "run_key": key, "config": config.to_dict(), "data": summary,
                    "dataset": dataset, "label": label, "seed": seed, "epochs": args.epochs,
                    "selected_epoch": result.selected_epoch,
                    "train_time_s": sum(r["train_time_s"] for r in result.history),
                    "wall_time_s": time.perf_counter() - start,
                    "test": result.test, "val": result.val,
                }
                log.append(record)
                print(f"{dataset:7s} seed {seed} {label:34s} epoch {result.selected_epoch:3d}  "
                      + "  ".join(f"{k} {result.test[k]:.4f}" for k in ("accuracy", "dp", "soft_dp")),
                      flush=True)
    records = log.records()
    write_tables([records[key] for key in wanted if key in records], args, configs)


def write_tables(records: list[dict], args: argparse.Namespace, configs: dict[str, TrainConfig]) -> None:
    """Tables over the runs of these settings in the file, whichever process wrote them."""
    rows = [{"dataset": r["dataset"], "label": r["label"], "seed": r["seed"], **r["test"]} for r in records]
    frame = pd.DataFrame(rows)
    lines = [
        f"Test metrics, mean ± std over seeds (n per row in the last column); {args.epochs} epochs, "
        "epoch chosen on validation accuracy.",
        f"Device {args.device}, {args.threads} thread(s) per run; TrainConfig of each row (seed 0's; the seed "
        "varies) above.",
        "",
    ]
    tables, summary = mean_std_tables(frame, section="dataset", row="label", metrics=METRICS,
                                      row_order=[label for label, _ in CONFIGURATIONS])
    lines += tables
    record = provenance(Path(__file__).name, {"datasets": " ".join(args.datasets), "seeds": args.seeds,
                                              "epochs": args.epochs, "device": args.device,
                                              "threads": args.threads}, configs=configs)
    write_markdown(args.out / "tabular.md", lines, record)
    write_json(args.out / "tabular.json", summary, record)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
