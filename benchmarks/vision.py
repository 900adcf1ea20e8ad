"""ERM, Lagrangian and FairBiNN (bilevel) on CelebA: Attractive, Smiling and Wavy_Hair vs Male.

The paper's settings are the defaults: ResNet-18 with one linear fairness
layer between the pooled 512-d features and the classifier, Adam with lr
1e-3, batch 128; per attribute fairness lr 1e-6 / 1e-5 / 1e-5, eta 1000 /
100 / 100 and 30 / 15 / 15 epochs (Attractive / Smiling / Wavy_Hair). The
Lagrangian uses the same eta. No pretrained weights are available offline,
so ResNet-18 starts at random. Images are resized to ``--image-size``
(default 64x64) and read from a pre-resized, memory-mapped cache (built once,
about 26 s for all 50,559 images of the shared copy at 64x64 on one core).

Each run reports the test metrics of the epoch chosen on validation
accuracy, the image counts of each split it used, and the seconds per
training step and epoch. Before the runs of an attribute, the step-cost
table times ``--timing-rounds`` training steps of each strategy on one batch,
interleaved so that all see the same machine load, and compares bilevel
with ERM; it also estimates an epoch over all training images from that.

Usage::

    python benchmarks/vision.py --data-dir ../shared/data            # everything: all images, paper epochs
    python benchmarks/vision.py --max-images 3000 --epochs 1 --attributes Smiling   # minutes on one CPU core

Writes ``<out>/vision_runs.jsonl`` (one line per run; finished runs with the
same settings are kept and skipped when the script is started again),
``<out>/vision.md`` and ``<out>/vision.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from fairbinn.core.data import as_batch, move_to
from fairbinn.core.runtime import resolve_device, seed_everything
from fairbinn.core.strategies import create_strategy
from fairbinn.vision import (
    PAPER_CELEBA_SETTINGS,
    create_vision_model,
    load_celeba,
    paper_config,
    read_celeba_index,
    run_vision,
)
from reporting import COMMITTED_FOLLOWER, HEADERS, RunLog, interleaved_step_seconds, mean_std

LABELS = {"erm": "ERM", "lagrangian": "Lagrangian", "bilevel": "FairBiNN bilevel"}
METRICS = ["accuracy", "ap", "auc", "dp", "eo", "soft_dp"]
SPLITS = ("train", "val", "test")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data directory (default $FAIRBINN_DATA)")
    parser.add_argument("--cache-dir", default=None, help="image cache folder (default ~/.cache/fairbinn/image_cache)")
    parser.add_argument("--attributes", nargs="+", default=list(PAPER_CELEBA_SETTINGS))
    parser.add_argument("--strategies", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1")
    parser.add_argument("--epochs", type=int, default=None, help="default: the paper's per attribute")
    parser.add_argument("--max-images", type=int, default=None,
                        help="at most this many images in all, each split keeping its share (default: all)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--fairness", default="linear", help="fairness block: linear, conv_residual, layer4, ...")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--timing-rounds", type=int, default=5,
                        help="interleaved timed steps per strategy for the step-cost table (0: skip)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def settings_of(args: argparse.Namespace, attribute: str) -> dict:
    """What must match for a finished run to be reused."""
    epochs = args.epochs or PAPER_CELEBA_SETTINGS.get(attribute, {}).get("epochs", 15)
    return {"epochs": epochs, "image_size": args.image_size, "max_images": args.max_images,
            "batch_size": args.batch_size, "fairness": args.fairness, "device": args.device}


def record_key(record: dict) -> tuple:
    return record["kind"], record["attribute"], record.get("strategy"), record.get("seed")


def measure_step_cost(data, args: argparse.Namespace, settings: dict) -> dict:
    """Median seconds per training step of each strategy on one fixed batch, steps interleaved.

    Interleaving (ERM, Lagrangian, bilevel, ERM, ...) exposes every strategy to
    the same machine load; the first round is a warm-up and is not counted.
    """
    device = resolve_device(args.device)
    batch = move_to(as_batch(next(iter(data.train.loader(args.batch_size)))), device)
    strategies = {}
    for strategy in args.strategies:
        config = paper_config(data.target, strategy=strategy, device=args.device, leader_penalty=False,
                              follower_optimizer=COMMITTED_FOLLOWER)
        seed_everything(0)
        model = create_vision_model(fairness=args.fairness).to(device).train()
        strategies[strategy] = create_strategy(model, config, config.build_constraint(), num_groups=2)
    return {
        "kind": "step_cost", "attribute": data.target, "settings": settings, "rounds": args.timing_rounds,
        "batch_images": len(batch.y), "threads": torch.get_num_threads(),
        "seconds_per_step": interleaved_step_seconds(strategies, batch, rounds=args.timing_rounds),
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    log = RunLog(args.out / "vision_runs.jsonl", key=record_key,
                 keep=lambda r: r["settings"] == settings_of(args, r["attribute"]))
    done = log.records()
    for attribute in args.attributes:
        settings = settings_of(args, attribute)
        data = None
        pending = [{"kind": "step_cost", "attribute": attribute}] if args.timing_rounds else []
        pending += [{"kind": "run", "attribute": attribute, "strategy": strategy, "seed": seed}
                    for seed in range(args.seeds) for strategy in args.strategies]
        for job in pending:
            if record_key(job) in done:
                continue
            if data is None:
                start = time.perf_counter()
                data = load_celeba(attribute, data_dir=args.data_dir, image_size=args.image_size,
                                   max_images=args.max_images, cache_dir=args.cache_dir, progress=True)
                print(f"{attribute}: images " + " / ".join(f"{len(getattr(data, s)):,}" for s in SPLITS)
                      + f" (train / val / test), loaded in {time.perf_counter() - start:.1f} s", flush=True)
            if job["kind"] == "step_cost":
                record = measure_step_cost(data, args, settings)
                print(f"{attribute:10s} seconds per step, median of {args.timing_rounds} interleaved: "
                      + "  ".join(f"{LABELS[k]} {v:.3f}" for k, v in record["seconds_per_step"].items()), flush=True)
            else:
                record = train_once(data, args, settings, job["strategy"], job["seed"])
            log.append(record)
    records = [r for r in log.records().values() if r["attribute"] in args.attributes]
    write_tables(records, args)


def train_once(data, args: argparse.Namespace, settings: dict, strategy: str, seed: int) -> dict:
    """One training run through :func:`run_vision`, as a JSON-ready record."""
    config = paper_config(data.target, strategy=strategy, seed=seed, epochs=settings["epochs"],
                          batch_size=args.batch_size, device=args.device, progress=False,
                          leader_penalty=False,  # the paper's game, as the committed tables
                          follower_optimizer=COMMITTED_FOLLOWER)
    result = run_vision(data, config, model_kwargs={"fairness": args.fairness}, num_workers=args.num_workers)
    extra = result.extra
    record = {
        "kind": "run", "attribute": data.target, "strategy": strategy, "seed": seed, "settings": settings,
        "eta": config.eta if strategy != "erm" else 0.0,
        "fairness_lr": config.fairness_lr if strategy == "bilevel" else None,
        "images": {s: extra["dataset"][s]["images"] for s in SPLITS},
        "selected_epoch": result.selected_epoch,
        "steps_per_epoch": extra["steps_per_epoch"],
        "seconds_per_step": extra["seconds_per_step"],
        "seconds_per_epoch": extra["seconds_per_step"] * extra["steps_per_epoch"],
        "wall_time_s": extra["wall_time_s"],
        "threads": torch.get_num_threads(),
        "test": result.test, "val": result.val,
    }
    print(f"{data.target:10s} seed {seed} {LABELS[strategy]:17s} epoch {result.selected_epoch:3d}  "
          + "  ".join(f"{k} {result.test[k]:.4f}" for k in ("accuracy", "ap", "dp"))
          + f"  {record['seconds_per_step']:.3f} s/step", flush=True)
    return record


def write_tables(records: list[dict], args: argparse.Namespace) -> None:
    """Markdown and JSON summaries of every matching record in the file, whichever process wrote it."""
    runs = [r for r in records if r["kind"] == "run"]
    costs = {r["attribute"]: r for r in records if r["kind"] == "step_cost"}
    if not runs and not costs:
        print("no finished runs with these settings")
        return
    present = {s: c["images"] for s, c in read_celeba_index(args.data_dir).counts().items()}
    lines = [
        "CelebA, target vs Male. ResNet-18 from random initialisation, "
        f"{args.fairness} fairness block, {args.image_size}x{args.image_size} images, batch {args.batch_size}, "
        "the paper's eta / learning rates / epochs unless the epochs column says otherwise. "
        "Test metrics (mean ± std over seeds; n in the last column) of the epoch chosen on validation accuracy.",
        "Images used per row (train / val / test); present in the data directory: "
        + " / ".join(f"{present[s]:,}" for s in SPLITS) + ". "
        f"Timing: training only (no evaluation), device {args.device} ({platform.machine()}), "
        f"torch {torch.__version__}, {args.threads} thread(s). Regenerate with `python benchmarks/vision.py`.",
        "",
    ]
    summary: dict = {}
    if runs:
        lines += _run_tables(runs, summary)
    if costs:
        lines += _cost_table(costs, summary, present["train"], args.batch_size)
    (args.out / "vision.md").write_text("\n".join(lines))
    (args.out / "vision.json").write_text(json.dumps(
        {"settings": {k: v for k, v in vars(args).items() if k != "out"}, "present_images": present,
         "results": summary}, indent=2, default=str))
    print("\n".join(lines))


def _run_tables(runs: list[dict], summary: dict) -> list[str]:
    frame = pd.DataFrame([
        {"attribute": r["attribute"], "strategy": r["strategy"],
         "images": " / ".join(f"{r['images'][s]:,}" for s in SPLITS),
         "epochs": r["settings"]["epochs"], "s_step": r["seconds_per_step"], "s_epoch": r["seconds_per_epoch"],
         **r["test"]}
        for r in runs
    ])
    order = {s: i for i, s in enumerate(LABELS)}
    lines = []
    for attribute, part in frame.groupby("attribute", sort=False):
        lines += [f"**{attribute}** vs Male", "",
                  "| model | images (train / val / test) | epochs | " + " | ".join(HEADERS[m] for m in METRICS)
                  + " | s/step | s/epoch | n |",
                  "|---" * (len(METRICS) + 6) + "|"]
        for strategy, group in sorted(part.groupby("strategy"), key=lambda item: order[item[0]]):
            images = " ; ".join(sorted(group["images"].unique()))
            lines.append(f"| {LABELS[strategy]} | {images} | {group['epochs'].iloc[0]} | "
                         + " | ".join(mean_std(group[m])[0] for m in METRICS)
                         + f" | {group['s_step'].mean():.3f} | {group['s_epoch'].mean():.1f} | {len(group)} |")
            summary.setdefault(attribute, {})[strategy] = {
                "images": images, "epochs": int(group["epochs"].iloc[0]), "runs": len(group),
                "seconds_per_step": float(group["s_step"].mean()),
                "seconds_per_epoch": float(group["s_epoch"].mean()),
                **{m: dict(zip(("mean", "std"), mean_std(group[m])[1:])) for m in METRICS},
            }
        lines.append("")
    return lines


def _cost_table(costs: dict[str, dict], summary: dict, train_images: int, batch_size: int) -> list[str]:
    full_steps = math.ceil(train_images / batch_size)
    lines = [
        "**Step cost** (median seconds per training step on one batch of "
        f"{batch_size} images, strategies interleaved; one backbone forward serves both bilevel players). "
        f"A full epoch is {full_steps} steps over all {train_images:,} training images; the estimate is "
        "s/step x steps. The last column is the ratio of the training runs above (sequential runs, "
        "more exposed to machine load).", "",
        "| attribute | ERM s/step | Lagrangian s/step | bilevel s/step | bilevel / ERM | full epoch ERM (est.) "
        "| full epoch bilevel (est.) | bilevel / ERM in the runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for attribute, cost in costs.items():
        step = cost["seconds_per_step"]
        ratio = step["bilevel"] / step["erm"] if {"erm", "bilevel"} <= set(step) else None
        trained = summary.get(attribute, {})
        in_runs = (trained["bilevel"]["seconds_per_step"] / trained["erm"]["seconds_per_step"]
                   if {"erm", "bilevel"} <= set(trained) else None)
        summary.setdefault(attribute, {})["step_cost"] = {
            "seconds_per_step": step, "bilevel_over_erm": ratio, "bilevel_over_erm_in_runs": in_runs,
            "full_epoch_seconds_estimate": {k: v * full_steps for k, v in step.items()},
        }
        cells = [f"{step[s]:.3f}" if s in step else "-" for s in LABELS]
        estimates = [f"{step[s] * full_steps:.0f} s" if s in step else "-" for s in ("erm", "bilevel")]
        ratios = [f"{r:.3f}" if r is not None else "-" for r in (ratio, in_runs)]
        lines.append(f"| {attribute} | " + " | ".join(cells) + f" | {ratios[0]} | " + " | ".join(estimates)
                     + f" | {ratios[1]} |")
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
