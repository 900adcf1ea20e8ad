"""What a bilevel (FairBiNN) epoch costs next to an ERM epoch of the same network.

Trains the paper's Adult network (2 FC layers, 1 fairness layer, output layer)
with each strategy through the real trainer and reports the median training
time per epoch (evaluation excluded; the first epoch is a warm-up and is not
counted), for several batch sizes.

Usage::

    python benchmarks/bilevel_cost.py --data-dir ../shared/data
    python benchmarks/bilevel_cost.py --device cuda --batch-sizes 100 1024

Prints a table and writes ``<out>/bilevel_cost_<device>_<N>threads.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from fairbinn import Trainer, TrainConfig, load_adult, paper_mlp, seed_everything

STRATEGIES = ("erm", "lagrangian", "bilevel")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 256, 1024])
    parser.add_argument("--epochs", type=int, default=6, help="timed epochs + 1 warm-up")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def epoch_seconds(data, strategy: str, batch_size: int, epochs: int, device: str) -> float:
    seed_everything(0)
    model = paper_mlp(data)
    config = TrainConfig(strategy=strategy, epochs=epochs, batch_size=batch_size, device=device, progress=False,
                         leader_penalty=False)  # the paper's game, as the committed figures
    history = Trainer(config).fit(model, data.train).history
    return statistics.median(record["train_time_s"] for record in history[1:])


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_adult(args.data_dir)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.machine()
    rows = []
    for batch_size in args.batch_sizes:
        times = {s: epoch_seconds(data, s, batch_size, args.epochs, args.device) for s in STRATEGIES}
        rows.append({"batch_size": batch_size, **times,
                     "bilevel_over_erm": times["bilevel"] / times["erm"],
                     "lagrangian_over_erm": times["lagrangian"] / times["erm"]})
    header = (f"Adult, paper network ({data.num_features}-{data.num_features}-{data.num_features} + 1 fairness layer "
              f"+ output), {len(data.train)} training rows; median seconds per training epoch over "
              f"{args.epochs - 1} epochs after a warm-up. Device: {args.device} ({device_name}), "
              f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads.")
    lines = [header, "",
             "| batch | ERM s/epoch | Lagrangian s/epoch | bilevel s/epoch | bilevel / ERM | Lagrangian / ERM |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['batch_size']} | {r['erm']:.3f} | {r['lagrangian']:.3f} | {r['bilevel']:.3f} | "
                     f"{r['bilevel_over_erm']:.2f} | {r['lagrangian_over_erm']:.2f} |")
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"bilevel_cost_{args.device.split(':')[0]}_{torch.get_num_threads()}threads"
    (args.out / f"{stem}.md").write_text(text + "\n")
    (args.out / f"{stem}.json").write_text(json.dumps({"header": header, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
