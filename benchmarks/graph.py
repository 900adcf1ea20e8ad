"""ERM, Lagrangian and FairBiNN (bilevel) with GCN and GAT on NBA (and Pokec-z/n when present, Bail with
``--datasets bail``), several seeds.

The paper's graph settings: 2 GNN layers (hidden 64, dropout 0.5), 1 linear
fairness layer, 1 linear output layer; 1000 full-batch epochs, Adam with lr
1e-2 for the network, fairness layer lr 1e-5, eta 1000; everything else is
``fairbinn.TrainConfig()``'s default (FairBiNN's follower on SGD). The node
split is FairGNN's, with split seed 20 fixed and the training seed varying.

Rows: ERM, the Lagrangian, FairBiNN (the default game: the leader also
minimises eta * fairness) and the paper's Algorithm 1 as written (the leader
on BCE alone, ``leader_penalty=False``), eta 1000.

NBA's published protocol lets the test nodes double as validation nodes, so
an epoch "chosen on validation" there is chosen on test. The default here is
therefore ``--nba-split disjoint``: FairGNN's halves (100 training, 78
validation, 79 test nodes), with the epoch chosen on validation accuracy and
the test nodes read once. ``--nba-split published`` runs the published split
and reports the last epoch. ``--budget B`` chooses instead, per run, the most
accurate epoch on validation whose DP is certified at most B (the library's
default: at ``--confidence`` 0.95 over the draw of the validation nodes; the
epoch with the smallest bound when none is certified), and writes
``graph_budget<B>.md``; ``--confidence 0`` takes the point-estimate rule (the
most accurate epoch whose validation DP is <= B, else the epoch of smallest
validation DP) and writes ``graph_budget<B>_conf0.md``.
Pokec-z/n run only when the full published files are in ``<data-dir>/pokec``
(checked by size and sha256).

``--budgets B1 B2 ...`` trains each run once, recording validation and test
metrics every epoch, and reports several selections of the same runs: the
epoch of best validation accuracy, and for each B the most accurate epoch on
validation whose validation DP is <= B (the budget selection of
:class:`~fairbinn.core.selection.EpochSelector`); ``--report NAME`` names the
files (``<out>/graph_NAME.md`` / ``.json``). ``--split-seeds`` draws the split
with other seeds (FairGNN's procedure for NBA and Pokec, NIFTY's for Bail);
``--backbones sage`` adds PyG's GraphSAGE through :func:`register_gnn_body`,
the path any PyG model takes. ``--configs`` chooses rows; ``--surrogate rate`` trains the
constrained rows on the rate surrogate of the thresholded decision (labels
end in ", rate surrogate"); ``--fairness-nodes all`` puts their DP loss on every
node of the graph instead of the training nodes (labels end in ", DP on all
nodes"). ``--sparse-adjacency`` gives the bodies a sparse CSR adjacency
(same model, faster GCN and GraphSAGE steps on a CPU). ``--shard I/N`` trains every N-th run not yet in
the log from the I-th, so that N processes can share a machine (each with its own ``--out``;
concatenate their run logs, then run again to write the tables).

Also measures what a bilevel training step costs next to an ERM step of the
same network on the same graph: median over alternating blocks of steps (and,
on a GPU, each step's peak memory above what the models hold).

Usage::

    python benchmarks/graph.py --data-dir ../shared/data            # NBA, 5 seeds
    python benchmarks/graph.py --seeds 1 --epochs 50                 # a quick look
    python benchmarks/graph.py --datasets bail --backbones gcn gat sage --budgets 0.03 --report bail
    python benchmarks/graph.py --datasets nba --split-seeds 1 2 3 4 5 --seeds 3 --budgets 0.05 --report nba_splits

Writes ``<out>/graph_runs.jsonl`` (one line per run, keyed by ``reporting.run_key`` of its TrainConfig,
graph, split and backbone: runs with the same settings are reused), ``<out>/graph.md`` and
``<out>/graph.json``, each headed by the command, commit, machine and every row's TrainConfig.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fairbinn.core import TrainConfig, seed_everything
from fairbinn.core.strategies import create_strategy
from fairbinn.core.selection import EpochSelector
from fairbinn.graph import BAIL_SETTINGS, PAPER_GRAPH_SETTINGS, load_graph, paper_gnn, register_gnn_body, run_graph
from fairbinn.graph.datasets import GRAPH_DATASETS
from fairbinn.graph.fairgnn_files import check_published
from fairbinn.core.datadir import resolve_data_dir
from reporting import (RunLog, commits_of, config_dict, data_summary, interleaved_step_seconds, keyed_run_log,
                       made_at, mean_std_tables, provenance, run_key, write_json, write_markdown)
from torch_geometric.nn import GraphSAGE

register_gnn_body("sage", GraphSAGE, overwrite=True)  # any PyG model: here GraphSAGE (mean aggregation)

CONFIGURATIONS = [
    # label, strategy, eta, leader_penalty
    ("ERM", "erm", 0.0, True),
    ("Lagrangian, eta 1000", "lagrangian", 1000.0, True),
    ("FairBiNN, eta 1000", "bilevel", 1000.0, True),
    ("FairBiNN, Algorithm 1 (leader on BCE alone), eta 1000", "bilevel", 1000.0, False),
]
CONFIG_KEYS = ["erm", "lagrangian", "default", "paper"]
"""``--configs`` names of the CONFIGURATIONS, in order."""
METRICS = ["accuracy", "auc", "dp", "eo", "eopp", "soft_dp"]
SELECTION_METRICS = ["accuracy", "auc", "f1", "dp", "eo", "eopp", "soft_dp"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data directory (default $FAIRBINN_DATA)")
    parser.add_argument("--datasets", nargs="+", default=["nba", "pokec_z", "pokec_n"])
    parser.add_argument("--backbones", nargs="+", default=["gcn", "gat"])
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0 .. N-1")
    parser.add_argument("--epochs", type=int, default=PAPER_GRAPH_SETTINGS["epochs"])
    parser.add_argument("--lr", type=float, default=None,
                        help="network learning rate (default the paper's 1e-2; Bail: BAIL_SETTINGS' 1e-3 unless given)")
    parser.add_argument("--nba-split", choices=["disjoint", "published"], default="disjoint")
    parser.add_argument("--budget", type=float, help="choose each run's epoch under this validation DP budget")
    parser.add_argument("--confidence", type=float, default=None,
                        help="with --budget: the confidence it is certified at (default the library's, 0.95; "
                             "0: the point-estimate rule)")
    parser.add_argument("--budgets", type=float, nargs="+",
                        help="record every epoch and report the epoch of best validation accuracy and, per budget, "
                             "the best one whose validation DP is within it")
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[20], help="split seeds (default 20)")
    parser.add_argument("--report", default=None, help="with --budgets: files graph_REPORT.md / .json")
    parser.add_argument("--configs", nargs="+", choices=CONFIG_KEYS, default=CONFIG_KEYS,
                        help="rows to train: ERM, the Lagrangian, the default game, the paper's game (default all)")
    parser.add_argument("--surrogate", choices=["score", "rate"], default="score",
                        help="constraint surrogate of the constrained rows (rate: labels get ', rate surrogate')")
    parser.add_argument("--fairness-nodes", choices=["train", "all"], default="train",
                        help="nodes of the constrained rows' DP loss (all: labels get ', DP on all nodes')")
    parser.add_argument("--no-train", action="store_true", help="write the tables from the runs already logged")
    parser.add_argument("--shard", default="0/1", help="I/N: train the runs I, I+N, I+2N, ... (default 0/1)")
    parser.add_argument("--cost-steps", type=int, default=100, help="steps per timed block (0: skip)")
    parser.add_argument("--sparse-adjacency", action="store_true",
                        help="full-batch passes on a sparse CSR adjacency (same model; GCN/SAGE steps faster)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    return parser.parse_args()


def available(name: str, data_dir: str | None) -> bool:
    """NBA always; Pokec only with the full published files (the shared sample is truncated)."""
    spec = GRAPH_DATASETS[name]
    folder = resolve_data_dir(data_dir) / spec.folder
    if not all((folder / f).is_file() for f in spec.file_names):
        print(f"{name}: skipped, {' + '.join(spec.file_names)} not in {folder}")
        return False
    problems = check_published(folder, spec.published)
    if problems:
        print(f"{name}: skipped, not the published files ({'; '.join(problems)})")
        return False
    return True


def step_cost(data, backbone: str, steps: int, config: TrainConfig, blocks: int = 5,
              sparse: bool = False) -> dict[str, float]:
    """Median milliseconds per training step of ERM and bilevel, timed in alternating blocks.

    With ``sparse`` the same two steps on the sparse CSR adjacency join the
    blocks (keys ``sparse_erm_step_ms`` ...), so the two adjacencies are
    compared under the same load. On a GPU also each step's peak memory above
    what was allocated before it (activations, gradients and optimizer state
    being created), in MiB.
    """
    graphs = {"": data.to(config.device)}
    if sparse:
        graphs["sparse_"] = data.with_sparse_adjacency().to(config.device)
    strategies, batches = {}, {}
    for prefix, graph in graphs.items():
        (batch,) = list(graph.train)
        for name in ("erm", "bilevel"):
            seed_everything(0)
            model = paper_gnn(graph, backbone).to(config.device)
            model.train()
            strategies[prefix + name] = create_strategy(model, config.replace(strategy=name),
                                                        config.build_constraint(), graph.num_groups)
            batches[prefix + name] = batch
    seconds = interleaved_step_seconds(strategies, batches, rounds=blocks, steps=steps)
    cost = {f"{name}_step_ms": 1000 * value for name, value in seconds.items()}
    for prefix in graphs:
        cost[f"{prefix}bilevel_over_erm"] = cost[f"{prefix}bilevel_step_ms"] / cost[f"{prefix}erm_step_ms"]
    if sparse:
        for name in ("erm", "bilevel"):
            cost[f"{name}_edge_index_over_sparse"] = cost[f"{name}_step_ms"] / cost[f"sparse_{name}_step_ms"]
    if torch.device(config.device).type == "cuda":
        for name, strategy in strategies.items():
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            strategy.step(batches[name])
            torch.cuda.synchronize()
            cost[f"{name}_step_peak_mib"] = (torch.cuda.max_memory_allocated() - before) / 2**20
    return cost


def selections(history: list[dict], budgets: list[float]) -> dict[str, dict]:
    """The epochs that each selection chooses from a run's per-epoch validation records, with their metrics.

    ``"accuracy"``: best validation accuracy; ``"dp<=B"``: best validation
    accuracy among the epochs whose validation DP is <= B (else the smallest
    validation DP), exactly as :class:`EpochSelector` chooses during training.
    """
    chosen = {}
    for budget in [None, *budgets]:
        selector = EpochSelector("accuracy", budget=budget)
        for record in history:
            selector.update(record["epoch"], record)
        record = history[selector.selected_epoch - 1]
        chosen["accuracy" if budget is None else f"dp<={budget:g}"] = {
            "epoch": selector.selected_epoch, "budget_met": selector.budget_met,
            **{f"{split}_{k}": record[f"{split}_{k}"] for split in ("val", "test") for k in SELECTION_METRICS}}
    return chosen


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    shard, shards = (int(part) for part in args.shard.split("/"))
    if not 0 <= shard < shards:
        raise SystemExit(f"--shard must be I/N with 0 <= I < N, got {args.shard!r}")
    if args.budgets is not None and args.budget is not None:
        raise SystemExit("give --budget (one budget, chosen while training) or --budgets (several, from each "
                         "run's per-epoch records), not both")
    if args.confidence is not None and args.budget is None:
        raise SystemExit("--confidence sets how --budget is certified; give --budget too (--budgets selects from "
                         "each run's records by the point-estimate rule)")
    lr_tag = "" if args.lr in (None, PAPER_GRAPH_SETTINGS["lr"]) else f"-lr{args.lr:g}"
    protocol = f"nba-{args.nba_split}{lr_tag}" + ("" if args.budget is None else f"-budget{args.budget:g}") \
        + ("" if args.budget is None or args.confidence is None else f"-conf{args.confidence:g}")
    if args.budgets is not None:
        protocol = f"selections{lr_tag}"
    log = keyed_run_log(args.out / "graph_runs.jsonl",
                        keep=lambda r: r["epochs"] == args.epochs and r["protocol"] == protocol
                        and (args.budgets is None or all(f"dp<={b:g}" in r["selections"] for b in args.budgets)))
    done = log.records()
    cost_log = RunLog(args.out / "graph_costs.jsonl",
                      key=lambda c: (c["dataset"], c["backbone"], c["device"]),
                      keep=lambda c: True)
    base = TrainConfig(**{**PAPER_GRAPH_SETTINGS, "epochs": args.epochs}, device=args.device,
                       progress=False)
    costs, todo, graphs, wanted, configs = [], [], {}, [], {}
    for name in args.datasets:
        if not available(name, args.data_dir):
            continue
        published = name != "nba" or args.nba_split == "published"
        dataset_base = base.replace(lr=dataset_lr(name, args.lr))
        for split_seed in args.split_seeds:
            data = graphs[name, split_seed] = load_graph(name, args.data_dir, split_seed=split_seed,
                                                         **({} if published else {"test_as_val": False}))
            summary = data_summary(data, split_seed=split_seed)
            select = None if data.val_is_test else "accuracy"
            if (args.budget is not None or args.budgets is not None) and select is None:
                raise SystemExit("--budget and --budgets choose on validation: use --nba-split disjoint")
            for backbone in args.backbones:
                if args.cost_steps and split_seed == args.split_seeds[0] and shard == 0:
                    cost = step_cost(data, backbone, args.cost_steps, dataset_base, sparse=args.sparse_adjacency)
                    costs.append({"dataset": name, "backbone": backbone, "device": args.device,
                                  "adjacency": "both" if args.sparse_adjacency else "edge_index",
                                  "torch": torch.__version__, "threads": torch.get_num_threads(),
                                  **made_at(Path(__file__).name), "steps": args.cost_steps, **cost})
                    if args.budgets is not None:
                        cost_log.append(costs[-1])
                    print(f"{name} {backbone}: ERM {cost['erm_step_ms']:.2f} ms/step, bilevel "
                          f"{cost['bilevel_step_ms']:.2f} ms/step, ratio {cost['bilevel_over_erm']:.3f}"
                          + (f"; sparse adjacency: ERM {cost['sparse_erm_step_ms']:.2f}, bilevel "
                             f"{cost['sparse_bilevel_step_ms']:.2f} ms/step, edge_index / sparse "
                             f"{cost['erm_edge_index_over_sparse']:.2f}x (ERM), "
                             f"{cost['bilevel_edge_index_over_sparse']:.2f}x (bilevel)" if args.sparse_adjacency else ""),
                          flush=True)
                for seed in range(args.seeds):
                    for label, strategy, eta, penalty in configurations(args):
                        config = dataset_base.replace(strategy=strategy, eta=eta, seed=seed, selection_metric=select,
                                                      leader_penalty=penalty, fairness_budget=args.budget,
                                                      record_test=args.budgets is not None)
                        if args.budget is not None and args.confidence is not None:
                            config = config.replace(confidence=args.confidence)
                        if args.surrogate != "score" and strategy != "erm":
                            config = config.replace(surrogate=args.surrogate)
                        configs.setdefault(row_name(name, backbone, label), config)
                        key = run_key(config, summary, backbone=backbone, sparse_adjacency=args.sparse_adjacency,
                                      fairness_nodes="train" if strategy == "erm" else args.fairness_nodes)
                        wanted.append(key)
                        if key in done:
                            continue
                        todo.append((name, split_seed, backbone, label, config, key))
    if args.no_train:
        print(f"--no-train: {len(todo)} run(s) not in the log are left out")
        todo = []
    for name, split_seed, backbone, label, config, key in todo[shard::shards]:  # the runs not done yet, shared out
        log.append(train_one(name, graphs[name, split_seed], config, backbone, label, args, protocol, split_seed)
                   | {"run_key": key, "config": config.to_dict()})
    if args.budgets is not None:  # the latest step cost of each graph, backbone and device, from any invocation
        costs = [c for c in cost_log.records().values() if c["dataset"] in args.datasets
                 and c["backbone"] in args.backbones]
    records = log.records()
    if args.budgets is None:  # exactly the runs of these settings
        chosen = [records[key] for key in wanted if key in records]
    else:  # also the variants' rows trained by other invocations into the same log (one per run: these settings'
        chosen = {}  # when there, else the latest)
        for key, record in records.items():
            if chosen.get(record_identity(record), {}).get("run_key") not in wanted:
                chosen[record_identity(record)] = record
        chosen = list(chosen.values())
    write_tables(chosen, costs, args, protocol, configs)


def configurations(args: argparse.Namespace) -> list[tuple[str, str, float, bool]]:
    """The rows asked for (``--configs``); with ``--surrogate rate`` / ``--fairness-nodes all`` the constrained
    ones on the rate surrogate / with the DP loss on every node."""
    chosen = [c for key, c in zip(CONFIG_KEYS, CONFIGURATIONS) if key in args.configs]
    suffix = ("" if args.surrogate == "score" else ", rate surrogate") \
        + ("" if args.fairness_nodes == "train" else ", DP on all nodes")
    if not suffix:
        return chosen
    return [(label + suffix, *rest) for label, *rest in chosen if rest[0] != "erm"]


VARIANTS = (", rate surrogate", ", DP on all nodes", ", rate surrogate, DP on all nodes")
"""Label suffixes of the constrained rows' variants (``--surrogate rate``, ``--fairness-nodes all``)."""


def row_order() -> list[str]:
    labels = [label for label, *_ in CONFIGURATIONS]
    return labels + [label + suffix for suffix in VARIANTS for label in labels[1:]]


def row_name(dataset: str, backbone: str, label: str) -> str:
    """How a report names a row in its list of TrainConfigs: ``"<dataset>, <backbone>: <label>"``."""
    return f"{dataset}, {backbone}: {label}"


def record_identity(record: dict) -> tuple:
    """The run a record reports, whatever its settings: dataset, backbone, row label, split seed, training seed."""
    return (record["dataset"], record["backbone"], record["label"], record.get("split_seed", 20), record["seed"])


def row_configs(records: list[dict], configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The full TrainConfig (as a dict) of every row the records fill, keyed by :func:`row_name`: ``configs`` (the
    rows of this invocation) first, then for each row that another invocation trained into the log, the config of
    its first run (the smallest split seed, then training seed). Records without a config add nothing."""
    rows = {label: config_dict(config) for label, config in configs.items()}
    for r in sorted(records, key=lambda r: record_identity(r)[3:]):  # (split seed, training seed)
        if r.get("config") is not None:
            rows.setdefault(row_name(r["dataset"], r["backbone"], r["label"]), config_dict(r["config"]))
    return rows


def train_one(name: str, data, config: TrainConfig, backbone: str, label: str, args: argparse.Namespace,
              protocol: str, split_seed: int) -> dict:
    """One run and its record; with ``--budgets`` the record holds every selection of its epochs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # val = test, or a budget not met: both are in the tables
        result = run_graph(data, config, backbone=backbone, sparse_adjacency=args.sparse_adjacency,
                           fairness_nodes="train" if config.strategy == "erm" else args.fairness_nodes)
    record = {
        "dataset": name, "backbone": backbone, "label": label, "seed": config.seed, "split_seed": split_seed,
        "epochs": args.epochs, "protocol": protocol, "selected_epoch": result.selected_epoch,
        "epoch_ms": 1000 * statistics.median(r["train_time_s"] for r in result.history),
        "wall_time_s": result.extra["wall_time_s"], "device": args.device, "torch": torch.__version__,
        "adjacency": result.extra["adjacency"], "fairness_nodes": result.extra["fairness_nodes"],
        "split": {k: result.extra["dataset"][k]["nodes"] for k in ("train", "val", "test")},
        "test": result.test, "val": result.val, "budget_met": result.budget_met, **made_at(Path(__file__).name),
    }
    if args.budgets is not None:
        record["selections"] = selections(result.history, args.budgets)
    print(f"{name} split {split_seed} {backbone} seed {config.seed} {label:28s} epoch {result.selected_epoch:4d}  "
          + "  ".join(f"{k} {result.test[k]:.4f}" for k in ("accuracy", "auc", "dp", "eopp")), flush=True)
    return record


def dataset_lr(name: str, lr: float | None) -> float:
    """The network learning rate of ``name``'s runs: ``--lr`` when given, else Bail's BAIL_SETTINGS rate (1e-3) or
    the paper's (1e-2)."""
    if lr is not None:
        return lr
    return BAIL_SETTINGS["lr"] if name == "bail" else PAPER_GRAPH_SETTINGS["lr"]


def network_lr(datasets: list[str], lr: float | None) -> str:
    """The network learning rate of the runs, as a report states it: ``"0.01"``, or ``"0.001 (bail), 0.01 (nba)"``
    when the datasets' rates differ."""
    rates = {name: f"{dataset_lr(name, lr):g}" for name in datasets}
    if len(set(rates.values())) == 1:
        return next(iter(rates.values()))
    return ", ".join(f"{rate} ({name})" for name, rate in sorted(rates.items()))


def write_tables(records: list[dict], costs: list[dict], args: argparse.Namespace, protocol: str,
                 configs: dict[str, TrainConfig]) -> None:
    record = provenance(Path(__file__).name, {
        "datasets": " ".join(args.datasets), "backbones": " ".join(args.backbones), "seeds": args.seeds,
        "split seeds": " ".join(map(str, args.split_seeds)), "epochs": args.epochs,
        "lr": network_lr(args.datasets, args.lr),
        "nba split": args.nba_split, "budget": args.budget, "budgets": args.budgets, "configs": " ".join(args.configs),
        "surrogate": args.surrogate, "fairness nodes": args.fairness_nodes, "sparse adjacency": args.sparse_adjacency,
        "cost steps": args.cost_steps, "device": args.device, "threads": args.threads}, configs=configs)
    if args.budgets is not None:
        write_selection_tables(records, costs, args, record)
        return
    rows = [{"section": f"{r['dataset']}, {r['backbone'].upper()}", "label": r["label"], "epoch_ms": r["epoch_ms"],
             **{k: 100 * r["test"][k] for k in METRICS}} for r in records]
    frame = pd.DataFrame(rows)
    splits = {(r["dataset"]): r["split"] for r in records}
    split_text = "; ".join(f"{d}: {s['train']} train / {s['val']} validation / {s['test']} test nodes"
                           for d, s in splits.items())
    selection = ("the last epoch (NBA's published split: validation nodes = test nodes)"
                 if protocol.startswith("nba-published") else "validation accuracy; test nodes read once")
    if args.budget is not None:
        met = {label: (sum(bool(r.get("budget_met")) for r in records if r["label"] == label),
                       sum(r["label"] == label for r in records)) for label, *_ in CONFIGURATIONS}
        confidence = next(iter(configs.values())).budget_confidence if configs else 0.0
        if confidence > 0:
            selection = (f"validation accuracy among the epochs whose DP is certified at most {args.budget:g} at "
                         f"{confidence:.0%} confidence over the draw of the validation nodes (every epoch a "
                         "candidate; the epoch with the smallest bound when none is certified); runs certified: ")
        else:
            selection = (f"validation accuracy among the epochs whose validation DP is <= {args.budget:g} (else the "
                         "epoch of smallest validation DP); runs meeting the budget: ")
        selection += ", ".join(f"{label} {n} of {total}" for label, (n, total) in met.items() if total) \
            + " (every backbone's runs together); test nodes read once"
    lines = [
        f"Test metrics in percent, mean ± std over training seeds (n in the last column); {args.epochs} "
        f"full-batch epochs, network lr {record['settings']['lr']}, epoch chosen by {selection}. {split_text} "
        "(split seed 20).",
        "DP: demographic parity difference; EO: equalized odds difference; EOpp: equal opportunity "
        "difference (the true-positive-rate gap that FairGNN and FairBiNN call 'EO'); soft DP: gap of "
        "mean predicted probability.",
        f"Device {args.device}, {args.threads} thread(s); the TrainConfig of each row (its first seed's) above. "
        f"Runs trained at: {commits_of(records)}.",
        "",
    ]
    tables, summary = mean_std_tables(frame, section="section", row="label", metrics=METRICS,
                                      row_order=[label for label, *_ in CONFIGURATIONS], decimals=2)
    lines += tables
    epoch_ms = frame.groupby(["section", "label"], sort=False)["epoch_ms"].median()
    lines += ["Training time per epoch (median over runs, ms, evaluation excluded):", "",
              "| graph, backbone | " + " | ".join(label for label, *_ in CONFIGURATIONS) + " |",
              "|---" * (len(CONFIGURATIONS) + 1) + "|"]
    for section in frame["section"].unique():
        lines.append(f"| {section} | " + " | ".join(
            f"{epoch_ms.get((section, label), float('nan')):.1f}" for label, *_ in CONFIGURATIONS) + " |")
    if costs:
        lines += ["", "Step cost measured in alternating blocks of "
                  f"{args.cost_steps} steps (median of 5 blocks after a warm-up block):", "",
                  "| graph | backbone | ERM ms/step | bilevel ms/step | bilevel / ERM |", "|---|---|---|---|---|"]
        lines += [f"| {c['dataset']} | {c['backbone']} | {c['erm_step_ms']:.2f} | {c['bilevel_step_ms']:.2f} | "
                  f"{c['bilevel_over_erm']:.3f} |" for c in costs]
    lines.append("")
    suffix = protocol.removeprefix("nba-disjoint").replace("nba-", "_").replace("-", "_")
    write_markdown(args.out / f"graph{suffix}.md", lines, record)
    write_json(args.out / f"graph{suffix}.json", {"runs": summary, "step_cost": costs}, record)
    print("\n".join(lines))


def measured_with(cost: dict) -> str:
    """How a step cost was measured, as far as its record says: torch, threads, commit and date."""
    parts = [f"torch {cost['torch']}"]
    if "threads" in cost:
        parts.append(f"{cost['threads']} thread" + ("s" if cost["threads"] != 1 else ""))
    if "commit" in cost:
        parts.append(f"commit {cost['commit'][:7]}, {cost['date'][:10]}")
    return ", ".join(parts)


def write_selection_tables(records: list[dict], costs: list[dict], args: argparse.Namespace, record: dict) -> None:
    """``graph_<report>.md`` / ``.json``: one table per selection, rows = backbone x configuration."""
    labels = {label for key, (label, *_) in zip(CONFIG_KEYS, CONFIGURATIONS) if key in args.configs}
    labels |= {label + suffix for suffix in VARIANTS for label in labels}  # the same rows in every variant
    wanted = [r for r in records if r["dataset"] in args.datasets and r["backbone"] in args.backbones
              and r["split_seed"] in args.split_seeds and r["seed"] < args.seeds and r["label"] in labels]
    if not wanted:
        print("no runs to report")
        return
    names = ["accuracy", *(f"dp<={b:g}" for b in args.budgets)]
    rows = []
    for r in wanted:
        for selection in names:
            chosen = r["selections"][selection]
            rows.append({"section": f"{r['dataset']}, {r['backbone'].upper()}, epoch chosen by "
                         + ("validation accuracy" if selection == "accuracy" else
                            f"validation accuracy under validation DP {selection.removeprefix('dp')}"),
                         "label": r["label"], "epoch": chosen["epoch"], "met": chosen["budget_met"],
                         **{k: 100 * chosen[f"test_{k}"] for k in SELECTION_METRICS},
                         **{f"val_{k}": 100 * chosen[f"val_{k}"] for k in ("accuracy", "dp")}})
    record = {**record, "configs": row_configs(wanted, record["configs"])}
    frame = pd.DataFrame(rows)
    split_text = "; ".join(sorted({f"{r['dataset']}: {r['split']['train']} train / {r['split']['val']} validation / "
                                   f"{r['split']['test']} test nodes" for r in wanted}))
    devices = sorted({f"{r['device']} (torch {r['torch']}, {r.get('adjacency', 'edge_index')})" for r in wanted})
    lines = [
        f"Test metrics in percent, mean ± std over runs (n: runs = split seeds {args.split_seeds} x training "
        f"seeds 0-{args.seeds - 1}); {args.epochs} full-batch epochs; validation and test metrics recorded at "
        "every epoch and each table a different choice of epoch from the same runs, made on validation only. "
        f"{split_text}. Under a budget, a run with no epoch within it on validation reports its epoch of smallest "
        "validation DP (\"met\" counts the runs within it).",
        "DP: demographic parity difference (SP gap); EO: equalized odds difference; EOpp: equal opportunity "
        "difference (the TPR gap that FairGNN, NIFTY and PyGDebias call 'EO'); soft DP: gap of mean predicted "
        "probability; F1 of the positive class.",
        f"Devices (and the adjacency the body was given): {', '.join(devices)}. Runs trained at: "
        f"{commits_of(wanted)}. Rows ending in ', rate surrogate' "
        "or ', DP on all nodes' are runs of the same log trained with `--configs lagrangian default --surrogate "
        "rate` / `--fairness-nodes all` (the command above writes the tables; the TrainConfigs above are every "
        "row's, each its first run's); the step costs come from `graph_costs.jsonl`, measured with "
        "`--cost-steps N`.", "",
    ]
    tables, summary = mean_std_tables(frame, section="section", row="label", metrics=SELECTION_METRICS,
                                      row_order=row_order(), decimals=2)
    lines += tables
    met = frame.groupby(["section", "label"], sort=False)["met"].agg(lambda v: f"{int(v.sum())}/{len(v)}")
    lines += ["Runs within the budget on validation (of all runs):", ""]
    lines += [f"- {section} / {label}: {value}" for (section, label), value in met.items()
              if frame.loc[frame["section"] == section, "met"].notna().all()]  # the budget selections
    epoch_ms = pd.DataFrame([{"backbone": r["backbone"], "label": r["label"],
                              "device": f"{r['device']}, {r.get('adjacency', 'edge_index')}",
                              "epoch_ms": r["epoch_ms"]} for r in wanted])
    lines += ["", "Training time per epoch (median over runs, ms, evaluation excluded; runs shared the machine "
              "with other runs, so these are not benchmark timings):", ""]
    for (backbone, device), part in epoch_ms.groupby(["backbone", "device"], sort=False):
        lines.append(f"- {backbone}, {device}: " + ", ".join(
            f"{label} {part[part['label'] == label]['epoch_ms'].median():.1f}" for label in part["label"].unique()))
    if costs:
        lines += ["", "Step cost measured in alternating blocks of steps (median of 5 blocks after a warm-up block; "
                  "steps per block in the table), one process alone on the machine:", "",
                  "| graph | backbone | device | adjacency | steps | ERM ms/step | bilevel ms/step | bilevel / ERM | "
                  "ERM step peak MiB | bilevel step peak MiB |", "|---|---|---|---|---|---|---|---|---|---|"]
        for c in costs:
            for prefix, adjacency in (("", "edge_index"), ("sparse_", "sparse csr")):
                if f"{prefix}erm_step_ms" in c:
                    lines.append(
                        f"| {c['dataset']} | {c['backbone']} | {c['device']} ({measured_with(c)}) | {adjacency} | "
                        f"{c['steps']} | {c[prefix + 'erm_step_ms']:.2f} | {c[prefix + 'bilevel_step_ms']:.2f} | "
                        f"{c[prefix + 'bilevel_over_erm']:.3f} | " + " | ".join(
                            f"{c[k]:.0f}" if k in c else "n/a"
                            for k in (f"{prefix}erm_step_peak_mib", f"{prefix}bilevel_step_peak_mib")) + " |")
        lines.append("\nStep peak memory is measured on a GPU only (CUDA's allocator); for the CPU's resident memory "
                     "see `benchmarks/large_graph.py --graph bail`.")
    lines.append("")
    report = args.report or "_".join(args.datasets)
    write_markdown(args.out / f"graph_{report}.md", lines, record)
    write_json(args.out / f"graph_{report}.json", {"runs": summary, "step_cost": costs}, record)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
