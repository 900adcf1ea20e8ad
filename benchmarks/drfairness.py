"""Dr-Fairness (adaptive data-ratio sampling) beside ERM and FairBiNN on Adult, Health and CelebA.

Every run uses ``fairbinn.TrainConfig()``'s defaults (FairBiNN's follower on
SGD, its leader on BCE + eta * fairness) but for the strategy, the sampler and
the epochs named in its row (CelebA: ``fairbinn.vision.paper_config``).

Tabular (groups = the sensitive attribute, real data only): ERM, FairBiNN
(bilevel, eta 100), ERM on Dr-Fairness batches, and FairBiNN on Dr-Fairness
batches, the latter two with the default ratio_k 20, with ratio_k 1, and with
the last layer's Hessian in the hypergradient (ratio_hessian="last_layer") in
place of the identity; and ERM on Dr-Fairness batches of the real rows plus
as many "generated" noise rows (every feature Gaussian with its column's mean
and standard deviation, labels and groups kept), with each Hessian. The
paper's MLP, 50 epochs by default, epoch chosen on validation accuracy.

CelebA (images available here, ResNet-18 from scratch): ERM, FairBiNN, and
Dr-Fairness (identity and last-layer Hessian) on real images only, and on
real plus "generated" images. The
generated source is simulated: the training split's images are cut in two;
the first part is the real training data, every image of the second part is
replaced by Gaussian noise (mean 0.5, std 0.25, clipped to [0, 1]) with its
labels kept. Data this poor should lose the sampler's trust, its real
fraction rising above its starting value of one half; the per-epoch real
fractions are printed so that this can be checked (on 5,000 images over 5
epochs it does for both labels in 2 of 3 seeds; see the README).

``--budget B --budget-metric M`` (tabular only) chooses each run's epoch as
the most accurate on validation whose validation gap M is <= B (else the
epoch of smallest gap) and writes ``drfairness_budget<B>_<M>.md`` / ``.json``
beside the tables chosen on validation accuracy.

Usage::

    python benchmarks/drfairness.py --data-dir ../shared/data
    python benchmarks/drfairness.py --datasets adult health --budget 0.05 --budget-metric eo
    python benchmarks/drfairness.py --datasets adult --seeds 1 --epochs 5   # a quick look

Writes ``<out>/drfairness_runs.jsonl`` (one line per run, keyed by
``reporting.run_key`` of its TrainConfig and data: runs with the same settings
are reused when started again), ``<out>/drfairness.md`` and
``<out>/drfairness.json`` (with a budget: ``drfairness_budget<B>_<M>``), each
headed by the command, commit, machine and every row's TrainConfig.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from fairbinn.core import DrFairnessConfig, Split, Trainer, TrainConfig, seed_everything
from fairbinn.tabular import load_tabular, run_tabular
from fairbinn.vision import create_vision_model, load_celeba, paper_config
from reporting import (RunLog, data_summary, keyed_run_log, mean_std_tables, provenance, run_key, write_json,
                       write_markdown)

TABULAR = [
    # label, strategy, sampler, ratio_k, ratio_hessian
    ("ERM", "erm", "uniform", 20.0, "identity"),
    ("FairBiNN, eta 100", "bilevel", "uniform", 20.0, "identity"),
    ("Dr-Fairness (ERM)", "erm", "drfairness", 20.0, "identity"),
    ("Dr-Fairness + FairBiNN", "bilevel", "drfairness", 20.0, "identity"),
    ("Dr-Fairness (ERM), k 1", "erm", "drfairness", 1.0, "identity"),
    ("Dr-Fairness + FairBiNN, k 1", "bilevel", "drfairness", 1.0, "identity"),
    ("Dr-Fairness (ERM), last-layer Hessian", "erm", "drfairness", 20.0, "last_layer"),
    ("Dr-Fairness + FairBiNN, last-layer Hessian", "bilevel", "drfairness", 20.0, "last_layer"),
    ("Dr-Fairness (ERM), real + noise 'generated' rows", "erm", "drfairness+noise", 20.0, "identity"),
    ("Dr-Fairness (ERM), real + noise 'generated' rows, last-layer Hessian", "erm", "drfairness+noise", 20.0,
     "last_layer"),
]
VISION = [
    ("ERM (real half)", "erm", "uniform", 20.0, "identity"),
    ("FairBiNN, paper eta (real half)", "bilevel", "uniform", 20.0, "identity"),
    ("Dr-Fairness (ERM), real half only, ratio lr 0.05", "erm", "drfairness", 20.0, "identity"),
    ("Dr-Fairness (ERM), real half + noise 'generated' half, ratio lr 0.05", "erm", "drfairness+noise", 20.0,
     "identity"),
    ("Dr-Fairness (ERM), real half only, ratio lr 0.05, last-layer Hessian", "erm", "drfairness", 20.0,
     "last_layer"),
    ("Dr-Fairness (ERM), real half + noise 'generated' half, ratio lr 0.05, last-layer Hessian", "erm",
     "drfairness+noise", 20.0, "last_layer"),
]
VISION_RATIO_LR = 0.05
"""A 2-epoch CelebA run has about 40 minibatches, so the ratios get 40 Adam steps (a tabular run has
thousands): at the default 1e-3 they cannot move more than about 0.04 in logit."""
METRICS = ["accuracy", "auc", "dp", "eo"]


class Rows:
    """Some rows of a map-style ``(image, y, s)`` dataset, optionally with the images replaced by noise."""

    def __init__(self, dataset, indices: torch.Tensor, noise_seed: int | None = None) -> None:
        self.dataset, self.indices, self.noise_seed = dataset, indices, noise_seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, y, s = self.dataset[int(self.indices[i])]
        if self.noise_seed is not None:
            generator = torch.Generator().manual_seed(self.noise_seed * 1_000_003 + i)
            image = (0.5 + 0.25 * torch.randn(image.shape, generator=generator)).clamp(0, 1)
        return image, y, s

    def targets(self):
        y, s = self.dataset.targets()
        return y[self.indices], s[self.indices]


def noise_rows(train: Split, seed: int) -> Split:
    """As many rows as ``train``, every feature Gaussian with its column's mean and std; labels and groups kept."""
    generator = torch.Generator().manual_seed(10_000 + seed)
    x = torch.randn(train.x.shape, generator=generator) * train.x.std(0) + train.x.mean(0)
    return Split(x, train.y.clone(), train.s.clone(), name="noise")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data directory (default $FAIRBINN_DATA)")
    parser.add_argument("--datasets", nargs="+", default=["adult", "health", "celeba"])
    parser.add_argument("--seeds", type=int, default=1, help="seeds K .. K+N-1 (K = --first-seed)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=50, help="tabular epochs (default 50)")
    parser.add_argument("--celeba-epochs", type=int, default=3)
    parser.add_argument("--celeba-images", type=int, default=6000, help="images over the three CelebA splits")
    parser.add_argument("--celeba-target", default="Smiling")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", help="run only the configurations whose label contains one of these")
    parser.add_argument("--budget", type=float, help="tabular: choose each run's epoch under this validation budget")
    parser.add_argument("--budget-metric", default="eo", help="the validation gap of --budget (default eo)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def _wanted(label: str, args) -> bool:
    return not args.only or any(part in label for part in args.only)


def _record(key: str, dataset: str, label: str, seed: int, epochs: int, result, start: float) -> dict:
    history = result.history
    ratios = {k: v for k, v in history[-1].items() if k.startswith(("ratio_", "real_fraction_"))}
    return {
        "run_key": key, "config": result.config,
        "dataset": dataset, "label": label, "seed": seed, "epochs": epochs,
        "selected_epoch": result.selected_epoch, "wall_time_s": time.perf_counter() - start,
        "budget": result.config["fairness_budget"],
        "budget_metric": None if result.config["fairness_budget"] is None else result.config["budget_metric"],
        "budget_met": result.budget_met,
        "test": result.test, "val": result.val, "final_ratios": ratios,
        "real_fraction_by_epoch": {f"y{y}": [r[f"real_fraction_y{y}"] for r in history]
                                   for y in (0, 1) if f"real_fraction_y{y}" in history[-1]},
    }


def run_tabular_dataset(dataset: str, seed: int, args, log: RunLog, done: dict, wanted: list, configs: dict) -> None:
    data = load_tabular(dataset, args.data_dir, seed=seed)
    summary = data_summary(data, seed=seed)
    for label, strategy, sampler, k, hessian in TABULAR:
        if not _wanted(label, args):
            continue
        chosen = "uniform" if sampler == "uniform" else DrFairnessConfig(k=k, hessian=hessian)
        config = TrainConfig(epochs=args.epochs, strategy=strategy, sampler=chosen, seed=seed, progress=False,
                             fairness_budget=args.budget, budget_metric=args.budget_metric,
                             confidence=None if args.budget is None else 0)  # the point-estimate rule for all rows
        configs.setdefault(f"{dataset}: {label}", config)
        key = run_key(config, summary, generated="noise rows" if "+noise" in sampler else None)
        wanted.append(key)
        if key in done:
            continue
        start = time.perf_counter()
        result = run_tabular(data, config, generated=noise_rows(data.train, seed) if "+noise" in sampler else None)
        log.append(_record(key, dataset, label, seed, args.epochs, result, start))
        _print(dataset, seed, label, result)


def run_celeba(seed: int, args, log: RunLog, done: dict, wanted: list, configs: dict) -> None:
    data = None
    summary = {"name": "celeba", "target": args.celeba_target, "max_images": args.celeba_images}
    for label, strategy, sampler, k, hessian in VISION:
        if not _wanted(label, args):
            continue
        config = paper_config(args.celeba_target).replace(
            epochs=args.celeba_epochs, strategy=strategy, seed=seed, progress=False,
            sampler="uniform" if sampler == "uniform" else DrFairnessConfig(lr=VISION_RATIO_LR, k=k, hessian=hessian),
        )
        configs.setdefault(f"celeba: {label}", config)
        key = run_key(config, summary, images="real half" + (" + noise half" if "+noise" in sampler else ""))
        wanted.append(key)
        if key in done:
            continue
        if data is None:
            data = load_celeba(args.celeba_target, data_dir=args.data_dir, max_images=args.celeba_images)
            half = len(data.train) // 2
            order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
            real_rows, held_out = order[:half], order[half:]
            real = Rows(data.train, real_rows)
            noise = Rows(data.train, held_out, noise_seed=seed)
        start = time.perf_counter()
        result = _vision_run(data, real, config, noise if sampler == "drfairness+noise" else None)
        log.append(_record(key, "celeba", label, seed, args.celeba_epochs, result, start))
        _print("celeba", seed, label, result)


def _vision_run(data, real, config: TrainConfig, generated):
    """As run_vision, on the real half of the training images (and the generated noise, when given)."""
    _, val, test = data.loaders(config.batch_size, seed=config.seed)
    train = real if config.sampler.adaptive else torch.utils.data.DataLoader(
        real, batch_size=config.batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(config.seed))
    seed_everything(config.seed)
    model = create_vision_model()
    return Trainer(config).fit(model, train, val, test, generated=generated)


def _print(dataset: str, seed: int, label: str, result) -> None:
    ratios = {k: round(v, 3) for k, v in result.history[-1].items() if k.startswith(("ratio_", "real_fraction"))}
    print(f"{dataset:7s} seed {seed} {label:40s} epoch {result.selected_epoch:3d}  "
          + "  ".join(f"{k} {result.test[k]:.4f}" for k in ("accuracy", "dp", "eo"))
          + (f"  {ratios}" if ratios else ""), flush=True)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.budget is not None and "celeba" in args.datasets:
        raise SystemExit("--budget is for the tabular rows; leave celeba out of --datasets")
    log = keyed_run_log(args.out / "drfairness_runs.jsonl")
    done = log.records()
    wanted, configs = [], {}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for dataset in args.datasets:
            if dataset == "celeba":
                run_celeba(seed, args, log, done, wanted, configs)
            else:
                run_tabular_dataset(dataset, seed, args, log, done, wanted, configs)
    records = log.records()
    write_tables([records[key] for key in wanted if key in records], args, configs)


def write_tables(records: list[dict], args: argparse.Namespace, configs: dict[str, TrainConfig]) -> None:
    rows = [{"dataset": r["dataset"], "label": r["label"], "seed": r["seed"], **r["test"]} for r in records]
    chosen = "epoch chosen on validation accuracy."
    if args.budget is not None:
        met = sum(bool(r["budget_met"]) for r in records)
        chosen = (f"epoch chosen on validation accuracy among the epochs whose validation {args.budget_metric} is "
                  f"<= {args.budget:g} (else the epoch of smallest validation {args.budget_metric}; {met} of "
                  f"{len(records)} runs met the budget).")
    settings = [f"Tabular: {args.epochs} epochs"] if any(r["dataset"] != "celeba" for r in records) else []
    if any(r["dataset"] == "celeba" for r in records):
        settings.append(f"CelebA ({args.celeba_target} vs Male, {args.celeba_images} images, ResNet-18 from "
                        f"scratch): {args.celeba_epochs} epochs")
    lines = [
        f"Test metrics, mean ± std over seeds (n in the last column). {'; '.join(settings)}; {chosen}",
        f"CPU, {args.threads} thread(s); the TrainConfig of each row (its first seed's; the seed varies) above.",
        "",
    ]
    tables, summary = mean_std_tables(pd.DataFrame(rows), section="dataset", row="label", metrics=METRICS,
                                      row_order=[label for label, *_ in VISION + TABULAR])
    lines += tables
    ratio_lines = ["Sampling ratios at the last epoch (Dr-Fairness runs):", ""]
    for r in records:
        if r["final_ratios"]:
            ratios = ", ".join(f"{k} {v:.3f}" for k, v in r["final_ratios"].items())
            ratio_lines.append(f"- {r['dataset']}, {r['label']}, seed {r['seed']}: {ratios}")
            traces = r["real_fraction_by_epoch"]
            if isinstance(traces, list):  # records written before both labels were kept held label 1's
                traces = {"y1": traces} if traces else {}
            for label, trace in traces.items():
                trace = " → ".join(f"{v:.3f}" for v in trace)
                ratio_lines.append(f"  real fraction (label {label[1:]}) by epoch: 0.500 → {trace}")
    lines += ratio_lines
    stem = "drfairness" if args.budget is None else f"drfairness_budget{args.budget:g}_{args.budget_metric}"
    record = provenance(Path(__file__).name, {
        "datasets": " ".join(args.datasets), "seeds": f"{args.first_seed}-{args.first_seed + args.seeds - 1}",
        "epochs": args.epochs, "celeba epochs": args.celeba_epochs, "celeba images": args.celeba_images,
        "budget": args.budget, "budget metric": args.budget_metric, "only": args.only, "threads": args.threads},
        configs=configs)
    write_markdown(args.out / f"{stem}.md", lines, record)
    write_json(args.out / f"{stem}.json", {"summary": summary, "runs": records}, record)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
