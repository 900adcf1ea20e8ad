"""Full-batch versus neighbour-sampled mini-batch GCN training on Pokec-like graphs of growing size.

For each graph size, :func:`fairbinn.graph.pokec_like_graph` builds a graph
with Pokec-z's statistics (power-law degrees, mean degree 18.2, two regions
with homophily 0.95, 276 float32 features), and each training mode runs in a
fresh subprocess of its own so that memory peaks do not mix:

* ``full``: every step is a forward and backward pass over the whole graph
  (:class:`~fairbinn.graph.FullGraph`, what :func:`~fairbinn.graph.run_graph`
  does by default);
* ``mini``: ``--batch-size`` training nodes per step with ``--num-neighbors``
  neighbours sampled per node and hop (:class:`~fairbinn.graph.NeighborBatches`,
  PyG's ``NeighborLoader``); the losses cover the seed nodes only.

Both train the same 2-layer GCN (hidden 64) with the same strategy
(``fairbinn.TrainConfig()``'s defaults but for lr 1e-2, eta 1000 and the
epochs: FairBiNN's follower on SGD) on the same training nodes (by default
half of the labelled nodes, FairGNN's split without its 500-node budget) for
``--warmup`` + ``--epochs`` epochs; the time per
epoch is the mean over the epochs after the warm-up, training only (no
evaluation). Memory is the resident set size of the subprocess:

* ``rss_loaded``: with the graph built, before training;
* ``train_peak``: the peak while training (the kernel's high-water mark,
  reset after the graph is built), which includes the graph itself;
* ``setup``: what building the training loader adds (for mini-batches, the
  sampler's CSC copy of the edge list, which grows with E);
* ``train_overhead`` = ``train_peak - rss_loaded``: what training adds on top
  of holding the graph, the loader's setup included. The graph's own size
  grows with N in both modes; full-batch activations grow with N and E too,
  mini-batch activations with the batch size and fan-out only;
* ``process_peak``: ``ru_maxrss`` over the subprocess' whole life, generation
  included.

Full batch above ``--full-batch-max-nodes`` is not run (recorded as "not run"
with the reason); a configuration that fails, is killed (e.g. out of memory)
or exceeds ``--timeout`` is recorded as such, never with made-up numbers.

``--graph bail`` measures the same on NIFTY's Bail graph (18,876 nodes, read
from ``--data-dir``; its 100 training nodes make one mini-batch), for each of
``--backbones`` and ``--strategy`` (several allowed, e.g. ``--backbones gcn gat
--strategy erm bilevel``), and writes ``large_graph_bail.md`` / ``.json``.

Usage::

    python benchmarks/large_graph.py                              # 100k, 400k, 1.6M nodes
    python benchmarks/large_graph.py --sizes 20000 50000 --out /tmp/large_graph   # a quick check
    python benchmarks/large_graph.py --graph bail --data-dir ../shared/data --backbones gcn gat --strategy erm bilevel

Writes ``<out>/large_graph_runs.jsonl`` (resumable: finished configurations
with the same settings, by ``reporting.run_key`` of the TrainConfig, graph and
mode, are not run again), ``<out>/large_graph.json`` and
``<out>/large_graph.md``, each headed by the command, commit, machine and the
TrainConfig of each strategy. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from reporting import commits_of, keyed_run_log, made_at, provenance, run_key, write_json, write_markdown

MODES = ("full", "mini")
BAIL_NODES = 18_876
RESULT_PREFIX = "LARGE_GRAPH_RESULT "


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 400_000, 1_600_000],
                        help="numbers of nodes (default 100000 400000 1600000)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up (default 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up epochs (default 1)")
    parser.add_argument("--strategy", choices=["erm", "lagrangian", "bilevel"], nargs="+", default=["bilevel"])
    parser.add_argument("--graph", choices=["pokec_like", "bail"], default="pokec_like",
                        help="Pokec-like generated graphs of --sizes (default) or the real Bail graph")
    parser.add_argument("--data-dir", default=None, help="with --graph bail: the data directory")
    parser.add_argument("--backbones", nargs="+", default=["gcn"], help="GNN bodies (default gcn)")
    parser.add_argument("--batch-size", type=int, default=1024, help="seed nodes per mini-batch (default 1024)")
    parser.add_argument("--num-neighbors", type=int, nargs="+", default=[10, 10],
                        help="neighbours sampled per node at each hop (default 10 10, for 2 GCN layers)")
    parser.add_argument("--label-number", type=int, default=None,
                        help="cap on the training nodes (default: half of the labelled nodes)")
    parser.add_argument("--full-batch-max-nodes", type=int, default=500_000,
                        help="largest graph trained full batch (default 500000; 1.6M nodes full batch needs "
                             "more memory than a 24 GB machine has)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per configuration (default 3600)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # JSON settings of one configuration
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- worker (one subprocess)


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _gib(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 2**20, 3)


def worker(settings: dict) -> dict:
    """Build the graph, train one mode, return times and memory (runs in its own process)."""
    import warnings

    import torch

    warnings.filterwarnings("ignore", category=UserWarning)  # e.g. PyG's note on a missing pyg-lib
    from fairbinn.core import seed_everything
    from fairbinn.core.trainer import Trainer
    from fairbinn.graph import NeighborBatches, load_graph, paper_gnn, pokec_like_graph

    torch.set_num_threads(settings["threads"])
    out: dict = {}
    start = time.perf_counter()
    if settings.get("graph", "pokec_like") == "bail":
        dataset = load_graph("bail", settings["data_dir"])
    else:
        dataset = pokec_like_graph(settings["size"], label_number=settings["label_number"], seed=settings["seed"])
    out["generation_s"] = round(time.perf_counter() - start, 2)
    out["generation_peak_gib"] = _gib(_status_kb("VmHWM"))
    notes = dataset.notes
    out["graph"] = {
        "nodes": int(dataset.data.num_nodes), "undirected_edges": notes["undirected_edges"],
        "features": dataset.num_features, "mean_degree": notes.get("mean_degree"),
        "max_degree": notes.get("max_degree"), "within_region_edge_share": notes.get("within_region_edge_share"),
        "train_nodes": int(dataset.data.train_mask.sum()),
        "graph_tensors_gib": round(sum(t.numel() * t.element_size() for t in dataset.data.to_dict().values()
                                       if torch.is_tensor(t)) / 2**30, 3),
    }
    config = train_config(settings)
    seed_everything(settings["seed"])
    model = paper_gnn(dataset, settings.get("backbone", "gcn"))
    out["rss_loaded_gib"] = _gib(_status_kb("VmRSS"))
    out["peak_reset"] = _reset_peak()
    setup_start = time.perf_counter()
    if settings["mode"] == "full":
        train = dataset.to(settings["device"]).train
    else:
        train = NeighborBatches.from_dataset(dataset, "train", batch_size=settings["batch_size"],
                                             num_neighbors=settings["num_neighbors"], shuffle=True,
                                             seed=settings["seed"])
    out["setup_s"] = round(time.perf_counter() - setup_start, 2)
    out["setup_gib"] = round(_gib(_status_kb("VmRSS")) - out["rss_loaded_gib"], 3)
    out["batches_per_epoch"] = len(train)
    result = Trainer(config).fit(model, train)
    epoch_s = [record["train_time_s"] for record in result.history]
    timed = epoch_s[settings["warmup"]:]
    out["epoch_s"] = [round(t, 3) for t in epoch_s]
    out["time_per_epoch_s"] = round(sum(timed) / len(timed), 3)
    out["train_bce_last"] = round(result.history[-1]["train_bce"], 4)
    if out["peak_reset"]:
        out["train_peak_gib"] = _gib(_status_kb("VmHWM"))
        out["train_overhead_gib"] = round(out["train_peak_gib"] - out["rss_loaded_gib"], 3)
    else:
        out["train_peak_gib"] = out["train_overhead_gib"] = None
    out["process_peak_gib"] = _gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    if settings["device"].startswith("cuda"):
        out["cuda_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out


# --------------------------------------------------------------------------- driver


def settings_of(args: argparse.Namespace, size: int, mode: str, backbone: str = "gcn",
                strategy: str = "bilevel") -> dict:
    settings = {"size": size, "mode": mode, "epochs": args.epochs, "warmup": args.warmup, "strategy": strategy,
                "batch_size": args.batch_size, "num_neighbors": args.num_neighbors,
                "label_number": args.label_number, "threads": args.threads, "device": args.device, "seed": args.seed}
    if args.graph != "pokec_like" or backbone != "gcn":  # the Pokec-like GCN runs' settings stay as they were
        settings.update(graph=args.graph, data_dir=args.data_dir, backbone=backbone)
    return settings


def train_config(settings: dict):
    """The TrainConfig of one configuration: the defaults but for the strategy, the epochs (warm-up included),
    lr 1e-2, eta 1000, the batch size, device and seed, and no epoch selection (no validation)."""
    from fairbinn.core import TrainConfig

    return TrainConfig(strategy=settings["strategy"], epochs=settings["warmup"] + settings["epochs"], lr=1e-2,
                       eta=1000.0, batch_size=settings["batch_size"], device=settings["device"],
                       seed=settings["seed"], selection_metric=None, progress=False)


def configuration_key(settings: dict) -> str:
    """:func:`reporting.run_key` of one configuration: its TrainConfig, the graph, and every other setting."""
    graph = {"graph": settings.get("graph", "pokec_like"), "size": settings["size"],
             "label_number": settings["label_number"], "seed": settings["seed"]}
    return run_key(train_config(settings), graph, **{k: v for k, v in settings.items() if k != "data_dir"})


def run_one(settings: dict, timeout: float) -> dict:
    """Run one configuration in a fresh interpreter; its record, with ``status`` "ok" or why not."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(settings)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "not run", "reason": f"timed out after {timeout:g} s"}
    wall = round(time.perf_counter() - start, 1)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return {"status": "ok", "wall_s": wall, **json.loads(line[len(RESULT_PREFIX):])}
    if done.returncode < 0:
        reason = f"killed by signal {-done.returncode}" + (" (probably out of memory)" if done.returncode == -9 else "")
    else:
        reason = f"exit code {done.returncode}"
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"status": "failed", "reason": reason + (": " + " | ".join(tail) if tail else ""), "wall_s": wall}


def machine() -> dict:
    import torch
    import torch_geometric

    from fairbinn.graph import neighbor_sampling_backend

    info = {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
            "sampler_backend": neighbor_sampling_backend(), "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as handle:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    try:
        with open("/proc/meminfo") as handle:
            kb = next(int(line.split()[1]) for line in handle if line.startswith("MemTotal"))
        info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        info["memory_gib"] = None
    info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def main() -> None:
    args = parse_args()
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    from fairbinn.graph import neighbor_sampling_backend

    torch.set_num_threads(args.threads)  # as the workers, so the report's thread count is theirs

    backend = neighbor_sampling_backend()
    log = keyed_run_log(args.out / "large_graph_runs.jsonl", keep=lambda r: r["status"] == "ok")
    done = log.records()
    info = machine()
    sizes = args.sizes if args.graph == "pokec_like" else [BAIL_NODES]
    wanted = []
    for size, backbone, strategy, mode in [(size, backbone, strategy, mode) for size in sizes
                                           for backbone in args.backbones for strategy in args.strategy
                                           for mode in args.modes]:
        settings = settings_of(args, size, mode, backbone, strategy)
        key = configuration_key(settings)
        wanted.append(key)
        if key in done:
            continue
        if mode == "full" and size > args.full_batch_max_nodes:
            record = {"status": "not run",
                      "reason": f"{size} nodes > --full-batch-max-nodes {args.full_batch_max_nodes}"}
        elif mode == "mini" and backend is None:
            record = {"status": "not run", "reason": "no neighbour-sampling backend (pyg-lib or torch-sparse)"}
        else:
            print(f"{size} nodes, {mode}: running ...", flush=True)
            record = {**run_one(settings, args.timeout), **made_at(Path(__file__).name)}
        record = {"run_key": key, "size": size, "mode": mode, "settings": settings,
                  "config": train_config(settings).to_dict(), **record}
        if record["status"] == "ok":
            log.append(record)  # only finished runs are kept for a restart
        done[key] = record
        print(summary_line(record), flush=True)
    records = [done[key] for key in wanted if key in done]
    write_report(records, info, args)


def summary_line(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['size']} nodes, {r['mode']}: {r['status']} ({r['reason']})"
    return (f"{r['size']} nodes, {r['mode']}: {r['time_per_epoch_s']:.2f} s/epoch, {r['batches_per_epoch']} "
            f"step(s)/epoch, RSS loaded {r['rss_loaded_gib']:.2f} GiB, training peak "
            f"{_fmt(r['train_peak_gib'])} GiB (+{_fmt(r['train_overhead_gib'])}), process peak "
            f"{r['process_peak_gib']:.2f} GiB")


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _count(value) -> str:
    return "–" if value is None else f"{value:,}"


def write_report(records: list[dict], info: dict, args: argparse.Namespace) -> None:
    graphs_text = ("graphs from `pokec_like_graph` (mean degree 18.2, power-law degrees, two regions with "
                   "homophily 0.95, 276 float32 features)" if args.graph == "pokec_like" else
                   "NIFTY's Bail graph (`load_bail`: 18 features, NIFTY's split with 100 training nodes)")
    lines = [
        "# Full-batch vs neighbour-sampled mini-batch training on "
        + ("Pokec-like graphs" if args.graph == "pokec_like" else "Bail"),
        "",
        f"2-layer {'/'.join(b.upper() for b in args.backbones)} (hidden 64) + 1 linear fairness layer + linear "
        f"head, strategy {' / '.join(args.strategy)}, eta 1000; {graphs_text}. Mini-batch: {args.batch_size} seed nodes per step, "
        f"{args.num_neighbors} neighbours sampled per hop. Time per epoch: mean of {args.epochs} epoch(s) "
        f"after {args.warmup} warm-up epoch(s), training only. Each configuration ran in its own process.",
        "",
        "Memory (GiB, resident set size): *loaded* = with the graph built, before training; *setup* = what "
        "building the training loader adds (mini-batch: the sampler's CSC copy of the edges); *training "
        "peak* = high-water mark while training (graph included); *overhead* = training peak - loaded; "
        "*process peak* = over the process' life, graph generation included.",
        "",
        f"Machine: {info['cpu']}, {info['cpu_count']} logical CPUs, {info['memory_gib']} GiB RAM, "
        f"{info['platform']}; Python {info['python']}, torch {info['torch']}, PyG {info['torch_geometric']}, "
        f"neighbour sampler backend: {info['sampler_backend']}; {args.threads} torch thread(s), device "
        f"{args.device}; load average at start {info['load_average_at_start']}.",
        "",
        "| nodes | undirected edges | train nodes | body | strategy | mode | steps/epoch | s/epoch | loaded | "
        "setup | training peak | overhead | process peak | status |",
        "|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    graphs = {r["size"]: r["graph"] for r in records if r["status"] == "ok"}
    for r in records:
        graph = graphs.get(r["size"], {})
        if r["status"] == "ok":
            cells = [f"{r['batches_per_epoch']}", f"{r['time_per_epoch_s']:.2f}", f"{r['rss_loaded_gib']:.2f}",
                     f"{r['setup_gib']:.2f}", _fmt(r["train_peak_gib"]), _fmt(r["train_overhead_gib"]),
                     f"{r['process_peak_gib']:.2f}", "ok"]
        else:
            cells = ["–"] * 7 + [f"{r['status']}: {r['reason']}"]
        lines.append(f"| {r['size']:,} | {_count(graph.get('undirected_edges'))} | {_count(graph.get('train_nodes'))} | "
                     f"{r['settings'].get('backbone', 'gcn')} | {r['settings']['strategy']} | {r['mode']} | "
                     + " | ".join(cells) + " |")
    lines += ["", "Timed at: " + commits_of(records) + " (a row whose configuration the run log already holds is "
              "reused, not timed again; the load average above is this invocation's)."]
    generation = {r["size"]: r for r in records if r["status"] == "ok"}
    if generation and args.graph == "pokec_like":
        lines += ["", "Graph generation (in the first subprocess of each size that ran):", "",
                  "| nodes | seconds | peak RSS (GiB) | graph tensors (GiB) | max degree | within-region edges |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for size, r in sorted(generation.items()):
            g = r["graph"]
            lines.append(f"| {size:,} | {r['generation_s']:.1f} | {_fmt(r['generation_peak_gib'])} | "
                         f"{g['graph_tensors_gib']:.2f} | {g['max_degree']:,} | {g['within_region_edge_share']:.3f} |")
    name = "large_graph" if args.graph == "pokec_like" else f"large_graph_{args.graph}"
    record = provenance(Path(__file__).name, {
        "graph": args.graph, "sizes": " ".join(map(str, args.sizes)) if args.graph == "pokec_like" else BAIL_NODES,
        "modes": " ".join(args.modes), "backbones": " ".join(args.backbones), "epochs": args.epochs,
        "warmup": args.warmup, "batch size": args.batch_size, "num neighbors": args.num_neighbors,
        "threads": args.threads, "device": args.device, "seed": args.seed},
        configs={strategy: train_config(settings_of(args, BAIL_NODES, "full", strategy=strategy))
                 for strategy in args.strategy})
    write_markdown(args.out / f"{name}.md", lines, record)
    write_json(args.out / f"{name}.json", {"machine": info, "runs": records}, record)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
