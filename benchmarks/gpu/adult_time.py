"""Wall time of ``fairbinn train`` on UCI Adult, one process per mode (ERM, Lagrangian, FairBiNN bilevel).

Each mode runs as its own ``python -m fairbinn train --data Adult --mode <mode> --epochs N --device D
--no-progress -o <tmp>/<mode>.json`` with every other option at its default (eta 100, the library's bilevel
game), timed from process start to exit, so the figure includes Python start-up, the import of the library,
loading and encoding the data, training, every epoch's validation and the final test evaluation. The JSON
each process writes also gives the training-only seconds (the sum of ``train_time_s`` over epochs) and the
time of ``Trainer.fit`` (``wall_time_s``). A mode still running when ``--time-limit`` seconds have passed
since the start is stopped and recorded as timed out, and the modes after it are skipped; the results
written so far are kept.

Usage::

    python benchmarks/gpu/adult_time.py --data-dir /tmp/data --device cuda --out $OUT     # 50 epochs

Writes ``<out>/<name>.json`` (default ``adult_gpu_time``: per mode the seconds, the exit status, the chosen
epoch, the test metrics and the full output of ``fairbinn train -o``, with provenance: command, git commit
(or ``--commit`` / ``$FAIRBINN_COMMIT`` where the tree is not a git checkout), machine, device, threads, date
and every mode's TrainConfig) and ``<out>/<name>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for reporting

from reporting import provenance, provenance_lines  # noqa: E402

MODES = ("erm", "lagrangian", "bilevel")
METRICS = ("accuracy", "auc", "ap", "dp", "eo", "soft_dp")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data directory holding adult/ (default $FAIRBINN_DATA)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds from the start after which a running mode is stopped (default: none)")
    parser.add_argument("--commit", default=os.environ.get("FAIRBINN_COMMIT"),
                        help="git commit to record where the tree is not a git checkout (default $FAIRBINN_COMMIT)")
    parser.add_argument("--name", default="adult_gpu_time", help="output file stem (default adult_gpu_time)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def run_mode(mode: str, args: argparse.Namespace, folder: Path, limit: float | None) -> dict:
    """Run one mode of ``fairbinn train`` in its own process; its seconds, exit status and JSON output."""
    output = folder / f"{mode}.json"
    command = [sys.executable, "-m", "fairbinn", "train", "--data", "Adult", "--mode", mode,
               "--epochs", str(args.epochs), "--device", args.device, "--no-progress", "-o", str(output)]
    if args.data_dir is not None:
        command[6:6] = ["--data-dir", args.data_dir]
    print(f"$ {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, timeout=limit)
        returncode, timed_out = completed.returncode, False
    except subprocess.TimeoutExpired:
        returncode, timed_out = None, True
    seconds = time.perf_counter() - start
    row: dict = {"mode": mode, "command": "python " + shlex.join(command[1:]), "wall_s": seconds,
                 "returncode": returncode, "timed_out": timed_out}
    if returncode == 0 and output.is_file():
        payload = json.loads(output.read_text())
        run = payload["runs"][0]
        row.update(label=run["label"], selected_epoch=run["selected_epoch"],
                   train_s=sum(record["train_time_s"] for record in run["history"]),
                   fit_s=run.get("wall_time_s"), epochs=len(run["history"]),
                   test={m: run["test"][m] for m in METRICS}, config=run["config"], output=payload)
    state = "timed out" if timed_out else f"exit {returncode}"
    print(f"{mode}: {seconds:.1f} s wall ({state})"
          + (f", training {row['train_s']:.1f} s, fit {row['fit_s']:.1f} s" if "train_s" in row else ""), flush=True)
    return row


def provenance_of(args: argparse.Namespace, rows: list[dict]) -> dict:
    """:func:`reporting.provenance` of this script with its options and each finished row's TrainConfig;
    ``--commit`` is the commit recorded where the tree is not a git checkout."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return provenance("gpu/adult_time.py", settings, commit=args.commit,
                      configs={row["label"]: row["config"] for row in rows if "config" in row})


def write(rows: list[dict], args: argparse.Namespace) -> None:
    record = provenance_of(args, rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps({"provenance": record, "runs": rows}, indent=2) + "\n")
    lines = [f"# fairbinn train on Adult, {args.epochs} epochs, device {args.device}: wall time per mode", ""]
    lines += provenance_lines(record)
    lines += ["", "Wall: the whole `python -m fairbinn train` process of one mode (start-up, import, data, "
              "training, validation every epoch, test). Training: the epochs' training steps only. "
              "fit: `Trainer.fit`, training and evaluation.", "",
              "| mode | wall s | training s | fit s | s/epoch (training) | epochs | chosen epoch | "
              + " | ".join(METRICS) + " |", "|---" * (7 + len(METRICS)) + "|"]
    for row in rows:
        if "train_s" in row:
            lines.append(f"| {row['label']} | {row['wall_s']:.1f} | {row['train_s']:.1f} | {row['fit_s']:.1f} | "
                         f"{row['train_s'] / row['epochs']:.3f} | {row['epochs']} | {row['selected_epoch']} | "
                         + " | ".join(f"{row['test'][m]:.4f}" for m in METRICS) + " |")
        else:
            state = ("skipped" if row.get("skipped") else "timed out" if row["timed_out"]
                     else f"failed (exit {row['returncode']})")
            lines.append(f"| {row['mode']} | {row['wall_s']:.1f} ({state}) |" + " - |" * (5 + len(METRICS)))
    (args.out / f"{args.name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    args = parse_args()
    deadline = None if args.time_limit is None else time.perf_counter() + args.time_limit
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="adult_time_") as folder:
        for mode in args.modes:
            limit = None if deadline is None else deadline - time.perf_counter()
            if limit is not None and limit < 1:
                print(f"{mode}: skipped, --time-limit {args.time_limit:g} s spent", flush=True)
                rows.append({"mode": mode, "wall_s": 0.0, "returncode": None, "timed_out": True, "skipped": True})
                continue
            rows.append(run_mode(mode, args, Path(folder), limit))
            write(rows, args)
    write(rows, args)
    print((args.out / f"{args.name}.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
