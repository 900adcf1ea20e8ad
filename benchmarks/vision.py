"""ERM, Lagrangian and FairBiNN (bilevel) on CelebA: Attractive, Smiling and Wavy_Hair vs Male.

The paper's settings are the defaults: ResNet-18 with one linear fairness
layer between the pooled 512-d features and the classifier, Adam with lr
1e-3, batch 128; per attribute fairness lr 1e-6 / 1e-5 / 1e-5, eta 1000 /
100 / 100 and 30 / 15 / 15 epochs (Attractive / Smiling / Wavy_Hair). The
Lagrangian uses the same eta. Every other setting is ``fairbinn.TrainConfig()``'s
default, so FairBiNN plays the library's default game (row "FairBiNN
(bilevel)": SGD follower, the leader on BCE + eta * fairness);
``--paper-game`` gives the leader BCE alone (row "FairBiNN (paper game)") and
``--follower-optimizer adam`` the released code's follower (the row label
says so). No pretrained weights are available offline, so ResNet-18 starts at
random. Images are resized to ``--image-size`` (default 64x64) and read from
a pre-resized, memory-mapped cache (built once, about 26 s for all 50,559
images of the shared copy at 64x64 on one core).

Each run reports the test metrics of the epoch chosen on validation
accuracy, or with ``--budget B`` the most accurate epoch whose validation DP
is certified at most B at ``--confidence`` (default 0.95; 0 for the
point-estimate rule), with whether the budget was certified, the upper bound
and the 95% interval of the test DP; also the image counts of each split it
used, and the seconds per training step and epoch. Before the runs of an
attribute, the step-cost table times ``--timing-rounds`` training steps of
each strategy on one batch, interleaved so that all see the same machine
load, and compares bilevel with ERM; it also estimates an epoch over all
training images from that.

Usage::

    python benchmarks/vision.py --data-dir ../shared/data            # everything: all images, paper epochs
    python benchmarks/vision.py --max-images 3000 --epochs 1 --attributes Smiling   # minutes on one CPU core
    python benchmarks/vision.py --attributes Smiling --epochs 10 --image-size 128 --budget 0.1 \\
        --device cuda --workers 12 --name vision_gpu                  # on a GPU (benchmarks/gpu/run_gpu.sh)

Writes ``<out>/<name>_runs.jsonl`` (``--name``, default ``vision``; one line
per run with its full TrainConfig and provenance; finished runs with the same
settings are kept and skipped when the script is started again),
``<out>/<name>.md`` and ``<out>/<name>.json``, headed by the command, git
commit (where the tree is not a git checkout: ``--commit`` or
``$FAIRBINN_COMMIT``), machine, device, threads, date and every row's
TrainConfig. The tables are rewritten after every run, so a run cut short
leaves the finished rows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import pandas as pd
import torch

from fairbinn.core import TrainConfig
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
from reporting import HEADERS, RunLog, interleaved_step_seconds, mean_std, provenance, provenance_lines

LABELS = {"erm": "ERM", "lagrangian": "Lagrangian", "bilevel": "FairBiNN (bilevel)"}
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
    parser.add_argument("--num-workers", "--workers", dest="num_workers", type=int, default=0,
                        help="DataLoader worker processes (default 0)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--timing-rounds", type=int, default=5,
                        help="interleaved timed steps per strategy for the step-cost table (0: skip)")
    parser.add_argument("--paper-game", action="store_true",
                        help="FairBiNN's leader on BCE alone (leader_penalty=False), the paper's Algorithm 1 "
                             "as written; default: the library's game, the leader on BCE + eta * fairness")
    parser.add_argument("--follower-optimizer", choices=("sgd", "adam"), default=None,
                        help="FairBiNN's follower optimizer (default: TrainConfig's, sgd)")
    parser.add_argument("--budget", type=float, default=None,
                        help="fairness budget on validation DP: the most accurate epoch certified to meet it "
                             "is reported (default: none, the most accurate epoch)")
    parser.add_argument("--confidence", type=float, default=None,
                        help="with --budget: confidence of the certificate (default 0.95; 0: the validation DP "
                             "itself at most the budget)")
    parser.add_argument("--commit", default=os.environ.get("FAIRBINN_COMMIT"),
                        help="git commit to record where the tree is not a git checkout "
                             "(default $FAIRBINN_COMMIT)")
    parser.add_argument("--name", default="vision",
                        help="output file stem: <out>/<name>_runs.jsonl, <name>.md, <name>.json (default vision)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    if args.budget is not None and not (math.isfinite(args.budget) and args.budget > 0):
        parser.error(f"--budget must be a finite number > 0, got {args.budget}")
    if args.confidence is not None and args.budget is None:
        parser.error("--confidence certifies a budget: give --budget too")
    return args


def label_of(strategy: str, args: argparse.Namespace) -> str:
    """The row label: what the row runs."""
    if strategy != "bilevel":
        return LABELS[strategy]
    game = "FairBiNN (paper game" if args.paper_game else "FairBiNN (bilevel"
    return game + (f", {args.follower_optimizer} follower)" if args.follower_optimizer else ")")


def config_of(args: argparse.Namespace, target: str, strategy: str, seed: int = 0,
              epochs: int | None = None) -> TrainConfig:
    """The TrainConfig of one run: the paper's settings for ``target``, what the options set, and
    ``TrainConfig()``'s defaults for everything else."""
    overrides = {"strategy": strategy, "seed": seed, "batch_size": args.batch_size, "device": args.device,
                 "progress": False}
    if epochs is not None:
        overrides["epochs"] = epochs
    if args.paper_game:
        overrides["leader_penalty"] = False
    if args.follower_optimizer is not None:
        overrides["follower_optimizer"] = args.follower_optimizer
    if args.budget is not None:
        overrides.update(fairness_budget=args.budget, budget_metric="dp", confidence=args.confidence)
    return paper_config(target, **overrides)


def settings_of(args: argparse.Namespace, attribute: str) -> dict:
    """What must match for a finished run to be reused."""
    epochs = args.epochs or PAPER_CELEBA_SETTINGS.get(attribute, {}).get("epochs", 15)
    return {"epochs": epochs, "image_size": args.image_size, "max_images": args.max_images,
            "batch_size": args.batch_size, "fairness": args.fairness, "device": args.device,
            "paper_game": args.paper_game, "follower_optimizer": args.follower_optimizer,
            "budget": args.budget,
            "confidence": (0.95 if args.confidence is None else args.confidence) if args.budget else None}


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
        config = config_of(args, data.target, strategy)
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
    log = RunLog(args.out / f"{args.name}_runs.jsonl", key=record_key,
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
            write_tables([r for r in log.records().values() if r["attribute"] in args.attributes], args, quiet=True)
    records = [r for r in log.records().values() if r["attribute"] in args.attributes]
    write_tables(records, args)


def train_once(data, args: argparse.Namespace, settings: dict, strategy: str, seed: int) -> dict:
    """One training run through :func:`run_vision`, as a JSON-ready record."""
    config = config_of(args, data.target, strategy, seed, settings["epochs"])
    result = run_vision(data, config, model_kwargs={"fairness": args.fairness}, num_workers=args.num_workers)
    extra = result.extra
    record = {
        "kind": "run", "attribute": data.target, "strategy": strategy, "label": label_of(strategy, args),
        "seed": seed, "settings": settings, "config": config.to_dict(),
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
        "budget_met": result.budget_met, "certificate": result.certificate, "test_intervals": result.test_intervals,
        "history": result.history,
        "provenance": provenance_of(args),
    }
    certified = ""
    if result.certificate is not None:
        certified = (f"  val DP bound {result.certificate['upper_bound']:.4f} "
                     f"{'certified' if result.certificate['certified'] else 'NOT certified'} <= {args.budget:g}")
    elif result.budget_met is not None:
        certified = f"  budget {args.budget:g} {'met' if result.budget_met else 'NOT met'} on validation"
    print(f"{data.target:10s} seed {seed} {record['label']:20s} epoch {result.selected_epoch:3d}  "
          + "  ".join(f"{k} {result.test[k]:.4f}" for k in ("accuracy", "ap", "dp"))
          + certified + f"  {record['seconds_per_step']:.3f} s/step  {record['wall_time_s']:.0f} s", flush=True)
    return record


def provenance_of(args: argparse.Namespace, configs: dict | None = None) -> dict:
    """:func:`reporting.provenance` of this script with its options and ``configs`` (row label -> full
    ``TrainConfig.to_dict()``); ``--commit`` is the commit recorded where the tree is not a git checkout (e.g. a
    copy of the working tree on a GPU machine)."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return provenance("vision.py", settings, configs=configs, commit=args.commit)


def write_tables(records: list[dict], args: argparse.Namespace, quiet: bool = False) -> None:
    """Markdown and JSON summaries of every matching record in the file, whichever process wrote it
    (``quiet``: without printing them)."""
    runs = [r for r in records if r["kind"] == "run"]
    costs = {r["attribute"]: r for r in records if r["kind"] == "step_cost"}
    if not runs and not costs:
        print("no finished runs with these settings")
        return
    configs = {f"{r['attribute']} {r.get('label', LABELS[r['strategy']])} seed {r['seed']}": r["config"]
               for r in runs if "config" in r}
    record = provenance_of(args, configs)
    present = {s: c["images"] for s, c in read_celeba_index(args.data_dir).counts().items()}
    lines = [
        "CelebA, target vs Male. ResNet-18 from random initialisation, "
        f"{args.fairness} fairness block, {args.image_size}x{args.image_size} images, batch {args.batch_size}, "
        "the paper's eta / learning rates / epochs unless the epochs column says otherwise. "
        "Test metrics (mean ± std over seeds; n in the last column) of the epoch chosen on validation accuracy"
        + (f" among those whose validation DP is certified at most {args.budget:g} "
           f"(confidence {settings_of(args, '')['confidence']:g}; when none is, the epoch with the smallest "
           "bound, or with confidence 0 the smallest validation DP, and 'certified' 0)."
           if args.budget is not None else "."),
        "Images used per row (train / val / test); present in the data directory: "
        + " / ".join(f"{present[s]:,}" for s in SPLITS) + ". "
        f"Timing: s/step and s/epoch training only (no evaluation), 'wall s' the whole run; "
        f"device {args.device} ({platform.machine()}), "
        f"torch {torch.__version__}, {args.threads} thread(s). Regenerate with the command above.",
        "",
    ]
    lines = provenance_lines(record) + [""] + lines
    summary: dict = {}
    if runs:
        lines += _run_tables(runs, summary, budget=args.budget is not None)
    if costs:
        lines += _cost_table(costs, summary, present["train"], args.batch_size)
    (args.out / f"{args.name}.md").write_text("\n".join(lines))
    (args.out / f"{args.name}.json").write_text(json.dumps(
        {"provenance": record, "settings": {k: v for k, v in vars(args).items() if k != "out"},
         "present_images": present, "results": summary,
         "runs": [{k: v for k, v in r.items() if k != "provenance"} for r in runs]}, indent=2, default=str))
    if not quiet:
        print("\n".join(lines))


def _run_tables(runs: list[dict], summary: dict, budget: bool = False) -> list[str]:
    """One table per attribute, a row per label; with ``budget`` also the chosen epochs, how many runs were
    certified (or met the budget), the validation DP bound and the test DP's 95% interval."""
    frame = pd.DataFrame([
        {"attribute": r["attribute"], "strategy": r["strategy"], "label": r.get("label", LABELS[r["strategy"]]),
         "images": " / ".join(f"{r['images'][s]:,}" for s in SPLITS),
         "epochs": r["settings"]["epochs"], "s_step": r["seconds_per_step"], "s_epoch": r["seconds_per_epoch"],
         "wall": r["wall_time_s"], "selected_epoch": r["selected_epoch"],
         "certified": _certified(r), "bound": (r.get("certificate") or {}).get("upper_bound", math.nan),
         "val_dp": r["val"]["dp"], "dp_lo": _interval(r)[0], "dp_hi": _interval(r)[1],
         **r["test"]}
        for r in runs
    ])
    order = {s: i for i, s in enumerate(LABELS)}
    budget_headers = " | chosen epoch | certified | val DP | val DP bound | test DP 95% interval" if budget else ""
    lines = []
    for attribute, part in frame.groupby("attribute", sort=False):
        lines += [f"**{attribute}** vs Male", "",
                  "| model | images (train / val / test) | epochs | " + " | ".join(HEADERS[m] for m in METRICS)
                  + budget_headers + " | s/step | s/epoch | wall s | n |",
                  "|---" * (len(METRICS) + 7 + (5 if budget else 0)) + "|"]
        groups = sorted(part.groupby("label"), key=lambda item: (order[item[1]["strategy"].iloc[0]], item[0]))
        for label, group in groups:
            images = " ; ".join(sorted(group["images"].unique()))
            cells = ""
            if budget:
                cells = (" | " + ", ".join(str(e) for e in group["selected_epoch"])
                         + f" | {int(group['certified'].sum())} / {len(group)}"
                         + f" | {mean_std(group['val_dp'])[0]} | {group['bound'].mean():.3f}"
                         + f" | [{group['dp_lo'].mean():.3f}, {group['dp_hi'].mean():.3f}]")
            lines.append(f"| {label} | {images} | {group['epochs'].iloc[0]} | "
                         + " | ".join(mean_std(group[m])[0] for m in METRICS) + cells
                         + f" | {group['s_step'].mean():.3f} | {group['s_epoch'].mean():.1f} "
                         f"| {group['wall'].mean():.0f} | {len(group)} |")
            summary.setdefault(attribute, {})[label] = {
                "strategy": group["strategy"].iloc[0],
                "images": images, "epochs": int(group["epochs"].iloc[0]), "runs": len(group),
                "seconds_per_step": float(group["s_step"].mean()),
                "seconds_per_epoch": float(group["s_epoch"].mean()),
                "wall_time_s": float(group["wall"].mean()),
                "selected_epochs": [int(e) for e in group["selected_epoch"]],
                **({"certified": int(group["certified"].sum()),
                    "val_dp_bound": [float(b) for b in group["bound"]],
                    "test_dp_interval": [[float(lo), float(hi)] for lo, hi in zip(group["dp_lo"], group["dp_hi"])]}
                   if budget else {}),
                **{m: dict(zip(("mean", "std"), mean_std(group[m])[1:])) for m in METRICS},
            }
        lines.append("")
    if budget:
        lines += ["'certified': runs whose chosen epoch's validation DP bound (the upper confidence bound on the "
                  "population DP, every epoch a candidate) is at most the budget, or with confidence 0 whose "
                  "validation DP is. 'test DP 95% interval': exact interval on the chosen model's test DP.", ""]
    return lines


def _certified(record: dict) -> bool:
    certificate = record.get("certificate")
    return bool(certificate["certified"]) if certificate is not None else bool(record.get("budget_met"))


def _interval(record: dict) -> tuple[float, float]:
    lo, hi = ((record.get("test_intervals") or {}).get("dp") or [math.nan, math.nan])
    return float(lo), float(hi)


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
        trained = {row["strategy"]: row for row in summary.get(attribute, {}).values() if "strategy" in row}
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
