"""How long a stacked sweep of 16 models takes against training one model, on Adult.

One process, idle machine: first one bilevel model (eta 100, seed 0) trained
alone by ``Trainer`` for ``--epochs`` epochs with ``fairbinn.TrainConfig()``'s
defaults (the follower on SGD, the leader penalty on; the paper's MLP),
then 16 bilevel models (8 etas x 2 seeds, the eta-100 seed-0 model among
them) trained as one stack for the same epochs, with the default Adam (the
same arithmetic as a model alone) and with fused Adam. Times include the
per-epoch validation of every model and the final test evaluation. The
script also prints how far the stacked eta-100 seed-0 model's test metrics
and parameters are from the model trained alone.

Usage::

    python benchmarks/sweep_speed.py --data-dir ../shared/data              # 50 epochs, 2 threads
    python benchmarks/sweep_speed.py --data-dir ../shared/data --threads 1

Writes ``<out>/sweep_speed_<device>_<threads>threads.md`` and ``.json`` (each headed by the command,
commit, machine and the TrainConfig).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import fairbinn
from fairbinn.core import TrainConfig, Trainer, seed_everything, stack_models
from reporting import provenance, write_json, write_markdown

ETAS = [0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    data = fairbinn.load_adult(args.data_dir)
    config = TrainConfig(epochs=args.epochs, device=args.device, progress=False)
    pairs = [(eta, seed) for seed in (0, 1) for eta in ETAS]

    seed_everything(0)
    alone_model = fairbinn.paper_mlp(data)
    start = time.perf_counter()
    alone = Trainer(config).fit(alone_model, data.train, data.val, data.test)
    one_time = time.perf_counter() - start
    print(f"one model: {one_time:.1f} s", flush=True)

    rows = {}
    for label, adam in (("stack of 16, default Adam", None), ("stack of 16, fused Adam", {"fused": True})):
        models = []
        for _, seed in pairs:
            seed_everything(seed)
            models.append(fairbinn.paper_mlp(data))
        stack = stack_models(models)
        trainer = Trainer(config)
        start = time.perf_counter()
        results = trainer.fit(stack, data.train, data.val, data.test, etas=[e for e, _ in pairs],
                              seeds=[s for _, s in pairs], adam_kwargs=adam)
        seconds = time.perf_counter() - start
        index = pairs.index((100.0, 0))
        mine = results[index]
        params = stack.model_state_dict(index)
        rows[label] = {
            "seconds": seconds,
            "ratio_to_one_model": seconds / one_time,
            "same_selected_epoch": mine.selected_epoch == alone.selected_epoch,
            "max_test_metric_difference": max(abs(mine.test[k] - alone.test[k]) for k in alone.test),
            "max_parameter_difference": max(
                float((params[name].cpu() - value.cpu()).abs().max()) for name, value in alone_model.state_dict().items()
            ),
        }
        print(f"{label}: {seconds:.1f} s = {seconds / one_time:.2f} x one model", flush=True)

    device = args.device if args.device == "cpu" else torch.cuda.get_device_name()
    lines = [
        f"Adult, bilevel, `fairbinn.TrainConfig()` but for {args.epochs} epochs (batch 100), {args.device}, "
        f"{args.threads} thread(s). Times include per-epoch validation and the test evaluation.",
        "",
        "| run | seconds | x one model | eta 100 seed 0 vs alone: same epoch | max test-metric diff | max parameter diff |",
        "|---|---|---|---|---|---|",
        f"| one model (Trainer) | {one_time:.1f} | 1.00 | | | |",
    ]
    for label, row in rows.items():
        lines.append(f"| {label} | {row['seconds']:.1f} | {row['ratio_to_one_model']:.2f} | "
                     f"{'yes' if row['same_selected_epoch'] else 'no'} | {row['max_test_metric_difference']:.2g} | "
                     f"{row['max_parameter_difference']:.2g} |")
    stem = args.out / f"sweep_speed_{args.device.replace(':', '')}_{args.threads}threads"
    record = provenance(Path(__file__).name, {"epochs": args.epochs, "threads": args.threads, "device": args.device},
                        configs={"every model (eta and seed vary in the stacks)": config})
    write_markdown(stem.with_suffix(".md"), lines, record)
    write_json(stem.with_suffix(".json"), {"epochs": args.epochs, "threads": args.threads, "device": device,
                                           "one_model_seconds": one_time, "stacks": rows}, record)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
