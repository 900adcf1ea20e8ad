"""What one training step of each strategy costs, next to ERM's and the authors' released step.

One process, the Adult training rows resident on the device, interleaved:
every variant gets its own model and strategy (built with
``create_strategy``, as the trainer builds them), a warm-up epoch (where
compiled variants compile), then ``--rounds`` rounds in which every variant,
in turn, trains one epoch at every batch size. The figure per variant and
batch size is the median over rounds of (epoch seconds / steps). Loading is
excluded: each epoch slices pre-shuffled rows, the same for all variants.

Variants, each ``fairbinn.TrainConfig()``'s defaults (eta 100) but for what
its name says: ``erm``, ``lagrangian``; ``bilevel`` in the default game (the
leader on BCE + eta * fairness, the follower on eta * fairness by SGD) in
each order (follower-first, leader-first, simultaneous); the paper's game
(``leader_penalty=False``); the follower on Adam (the released code's), and
on BCE + eta * fairness; the rate surrogate (bilevel with either follower,
and Lagrangian); ``stackelberg`` with the unrolled hypergradient (k = 1 and 3
follower steps) and the implicit one (10 CG iterations). Each but the
stackelberg ones also through
``torch.compile``
(``--compile``, inductor) when asked; and ``released``, the authors' released
step reimplemented from their published training loop on the same network:
``model.zero_grad()``; forward, backward of eta * fairness through the whole
network, follower Adam step; second forward, BCE + eta * fairness backward
without clearing the gradients, leader Adam step; a third forward for the
batch's training accuracy. (Their loop computes that accuracy with a Python
loop over the batch; here it is one tensor comparison, so the released
figure is, if anything, too fast.)

Networks: ``paper`` (d | d | fairness d | 1, the paper's Adult network) and
``released`` (d | 101 | 101 | fairness 101 | 101 | 101 | 1, the released
code's default for Adult).

Usage::

    python benchmarks/step_cost.py --data-dir ../shared/data                 # CPU, torch's threads
    python benchmarks/step_cost.py --data-dir ../shared/data --compile       # also compiled variants
    python benchmarks/step_cost.py --device cuda --batch-sizes 100 1024
    python benchmarks/step_cost.py --networks paper --variants bilevel 'bilevel bce follower'   # a subset

Prints a table and writes ``<out>/step_cost_<device>_<N>threads.md`` and ``.json`` (each headed by the
command, commit, machine and every variant's TrainConfig).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from fairbinn.core import TrainConfig, seed_everything
from fairbinn.core.data import Batch
from fairbinn.core.strategies import create_strategy
from fairbinn.tabular import build_mlp, load_adult
from reporting import provenance, write_json, write_markdown

NETWORKS = {
    "paper": lambda d: build_mlp(d, (d, d)),
    "released": lambda d: build_mlp(d, (101, 101, 101, 101), fairness_position=2),
}
GAMES = {  # name: TrainConfig settings beside the defaults (eta 100; the name says each one)
    "erm": {"strategy": "erm"},
    "lagrangian": {"strategy": "lagrangian"},
    "bilevel": {"strategy": "bilevel"},
    "bilevel leader-first": {"strategy": "bilevel", "order": "leader_first"},
    "bilevel simultaneous": {"strategy": "bilevel", "order": "simultaneous"},
    "bilevel paper game": {"strategy": "bilevel", "leader_penalty": False},
    "bilevel adam follower": {"strategy": "bilevel", "follower_optimizer": "adam"},
    "bilevel bce follower": {"strategy": "bilevel", "follower_bce": True},
    "bilevel rate surrogate": {"strategy": "bilevel", "surrogate": "rate"},
    "bilevel adam follower rate surrogate": {"strategy": "bilevel", "follower_optimizer": "adam", "surrogate": "rate"},
    "lagrangian rate surrogate": {"strategy": "lagrangian", "surrogate": "rate"},
    "stackelberg unrolled k=1": {"strategy": "stackelberg", "hypergradient": "unrolled", "unroll_steps": 1},
    "stackelberg unrolled k=3": {"strategy": "stackelberg", "hypergradient": "unrolled", "unroll_steps": 3},
    "stackelberg implicit cg=10": {"strategy": "stackelberg", "hypergradient": "implicit", "cg_iters": 10},
}
STACKELBERG = {name for name, settings in GAMES.items() if settings["strategy"] == "stackelberg"}
"""Variants with no compiled path (they differentiate through the follower's step): timed eager only."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 200, 1024])
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=["paper", "released"])
    parser.add_argument("--compile", action="store_true", help="also time every variant through torch.compile")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per variant and batch size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--variants", nargs="+", choices=list(GAMES), default=list(GAMES),
                        help="time only these (erm, lagrangian and the released step are always timed: the ratios "
                             "need them); with a subset the files are named step_cost_..._subset.md / .json")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


@dataclass
class Variant:
    name: str
    step: Callable[[Batch], object]


def variant_config(settings: dict, compiled: bool, device: str) -> TrainConfig:
    """A variant's TrainConfig: the defaults (eta 100) with its ``settings``."""
    return TrainConfig(device=device, progress=False, compile=compiled, **settings)


def fairbinn_variant(name: str, network: str, d: int, settings: dict, compiled: bool, device: str) -> Variant:
    seed_everything(0)
    model = NETWORKS[network](d).to(device)
    config = variant_config(settings, compiled, device)
    strategy = create_strategy(model, config, config.build_constraint(), num_groups=2)
    return Variant(name + (" compiled" if compiled else ""), strategy.step)


def released_variant(network: str, d: int, device: str, eta: float = 100.0) -> Variant:
    """The authors' step (see the module docstring) on fairbinn's model and DP loss."""
    seed_everything(0)
    model = NETWORKS[network](d).to(device)
    follower = torch.optim.Adam(model.follower_parameters(), lr=1e-5)
    leader = torch.optim.Adam(model.leader_parameters(), lr=1e-3)
    constraint = TrainConfig().build_constraint()

    def step(batch: Batch) -> float:
        x, y, s = batch.inputs, batch.y, batch.s
        model.zero_grad()
        fairness = eta * constraint(torch.sigmoid(model(x)), y, s, 2)
        fairness.backward()
        follower.step()
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, y) + eta * constraint(torch.sigmoid(logits), y, s, 2)
        loss.backward()  # onto the gradients of the fairness backward, as the released loop does
        leader.step()
        return ((model(x) > 0).float() == y).float().mean()

    return Variant("released", step)


def epoch_seconds(variant: Variant, batches: list[Batch], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches:
        variant.step(batch)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_adult(args.data_dir)
    x, y, s = (t.to(args.device) for t in (data.train.x, data.train.y, data.train.s))
    d = data.num_features
    generator = torch.Generator().manual_seed(0)

    def batches(batch_size: int) -> list[Batch]:
        order = torch.randperm(len(y), generator=generator).to(args.device)
        return [Batch(x[rows], y[rows], s[rows]) for rows in order.split(batch_size)]

    rows = []
    for network in args.networks:
        variants = [fairbinn_variant(name, network, d, settings, compiled, args.device)
                    for compiled in ((False, True) if args.compile else (False,))
                    for name, settings in GAMES.items()
                    if name in {"erm", "lagrangian", *args.variants} and not (compiled and name in STACKELBERG)]
        variants.append(released_variant(network, d, args.device))
        times: dict[tuple[str, int], list[float]] = {}
        warm_up = time.perf_counter()
        for variant in variants:  # first epochs: allocation, compilation (every batch shape)
            for batch_size in args.batch_sizes:
                epoch_seconds(variant, batches(batch_size), args.device)
        print(f"{network}: warm-up (and compilation) {time.perf_counter() - warm_up:.0f} s", flush=True)
        for _ in range(args.rounds):
            for batch_size in args.batch_sizes:
                epoch = batches(batch_size)
                for variant in variants:
                    times.setdefault((variant.name, batch_size), []).append(
                        epoch_seconds(variant, epoch, args.device) / len(epoch))
        for batch_size in args.batch_sizes:
            step = {v.name: statistics.median(times[v.name, batch_size]) for v in variants}
            for variant in variants:
                rows.append({"network": network, "batch_size": batch_size, "variant": variant.name,
                             "ms_per_step": 1e3 * step[variant.name],
                             "over_erm": step[variant.name] / step["erm"],
                             "over_lagrangian": step[variant.name] / step["lagrangian"],
                             "released_over_this": step["released"] / step[variant.name]})
    header = (f"Adult, {len(y)} training rows; median over {args.rounds} interleaved epochs of seconds per step "
              f"(training only, data on the device). Device: {args.device}, {torch.get_num_threads()} CPU threads.")
    lines = [header, "", "| network | batch | variant | ms / step | x ERM | x Lagrangian | released / this |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['batch_size']} | {r['variant']} | {r['ms_per_step']:.3f} | "
                     f"{r['over_erm']:.2f} | {r['over_lagrangian']:.2f} | {r['released_over_this']:.2f} |")
    text = "\n".join(lines)
    print(text)
    stem = f"step_cost_{args.device.split(':')[0]}_{torch.get_num_threads()}threads"
    if set(args.variants) != set(GAMES):
        stem += "_subset"
    timed = [name for name in GAMES if name in {"erm", "lagrangian", *args.variants}]
    record = provenance(Path(__file__).name, {
        "networks": " ".join(args.networks), "batch sizes": " ".join(map(str, args.batch_sizes)),
        "rounds": args.rounds, "compile": args.compile, "device": args.device},
        configs={name: variant_config(GAMES[name], False, args.device) for name in timed})
    write_markdown(args.out / f"{stem}.md", lines, record)
    write_json(args.out / f"{stem}.json", {"header": header, "rows": rows}, record)


if __name__ == "__main__":
    main()
