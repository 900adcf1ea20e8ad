"""What the benchmark scripts share: a resumable log of runs, interleaved step timing, mean ± std tables.

Imported by the scripts beside it (``python benchmarks/<name>.py`` puts this
folder on the import path).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

COMMITTED_FOLLOWER = "adam"
"""The follower optimizer of the committed FairBiNN figures: Adam, the authors' released code's. ``TrainConfig``'s
default is SGD, so every script pins Adam and a re-run reproduces the figures; pass another value to a script's
config to measure the SGD follower."""

HEADERS = {"accuracy": "accuracy", "auc": "AUC", "ap": "AP", "f1": "F1", "dp": "DP", "eo": "EO", "eopp": "EOpp",
           "soft_dp": "soft DP", "soft_eo": "soft EO"}


class RunLog:
    """A JSON-lines file of finished runs; runs already in it are skipped when a script restarts.

    ``key`` maps a record to its identity; ``keep`` says whether a record was
    made with the current settings (e.g. the same number of epochs); others
    are ignored.
    """

    def __init__(self, path: Path, key: Callable[[dict], Any], keep: Callable[[dict], bool]) -> None:
        self.path, self.key, self.keep = path, key, keep

    def records(self) -> dict[Any, dict]:
        done = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                record = json.loads(line)
                if self.keep(record):
                    done[self.key(record)] = record
        return done

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def interleaved_step_seconds(strategies: dict, batch, *, rounds: int, steps: int = 1) -> dict[str, float]:
    """Median seconds per training step of each strategy, timed in interleaved rounds.

    Each round runs ``steps`` steps of every strategy in turn on ``batch`` (or
    on ``batch[name]`` when ``batch`` is a dict keyed like ``strategies``), so
    all see the same machine load; the first round is a warm-up and is not counted.
    """
    times: dict[str, list[float]] = {name: [] for name in strategies}
    for round_ in range(rounds + 1):
        for name, strategy in strategies.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                strategy.step(batch[name] if isinstance(batch, dict) else batch)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if round_:
                times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in times.items()}


def mean_std(values: pd.Series, decimals: int = 3) -> tuple[str, float, float]:
    """``"mean ± std"`` of ``values`` (std 0 for a single value), and the two numbers."""
    mean, std = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}", mean, std


def mean_std_tables(
    frame: pd.DataFrame,
    *,
    section: str,
    row: str,
    metrics: Sequence[str],
    row_order: Sequence[str] = (),
    decimals: int = 3,
) -> tuple[list[str], dict]:
    """Markdown tables (one per value of ``section``) of ``metrics`` as mean ± std over the runs of each ``row``.

    Returns the Markdown lines and the same figures as a nested dict
    ``{section: {row: {metric: {"mean", "std"}, "runs": n}}}``.
    """
    order = {label: i for i, label in enumerate(row_order)}
    lines: list[str] = []
    summary: dict = {}
    for name, part in frame.groupby(section, sort=False):
        lines += [f"**{name}**", "",
                  "| model | " + " | ".join(HEADERS.get(m, m) for m in metrics) + " | n |",
                  "|---" * (len(metrics) + 2) + "|"]
        groups = sorted(part.groupby(row, sort=False), key=lambda item: order.get(item[0], len(order)))
        for label, group in groups:
            stats = {m: mean_std(group[m], decimals) for m in metrics}
            lines.append(f"| {label} | " + " | ".join(cell for cell, _, _ in stats.values()) + f" | {len(group)} |")
            summary.setdefault(name, {})[label] = {
                m: {"mean": mu, "std": sd} for m, (_, mu, sd) in stats.items()
            } | {"runs": len(group)}
        lines.append("")
    return lines, summary


def provenance(script: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """How a results file was made: the exact command line, the git commit (and whether the library or
    ``script`` had uncommitted changes), the machine, the torch threads and device, the date, and ``settings``."""
    import datetime
    import os
    import platform
    import shlex
    import subprocess
    import sys

    here = Path(__file__).resolve().parent

    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=here, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        if git("status", "--porcelain", "--", "../fairbinn", script):
            commit += " (with uncommitted changes to fairbinn/ or the script)"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    threads = os.environ.get("OMP_NUM_THREADS")
    command = ("" if threads is None else f"OMP_NUM_THREADS={threads} ") + "python " + " ".join(
        shlex.quote(a) for a in sys.argv)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    return {"command": command, "commit": commit,
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, {device}, "
                       f"torch {torch.__version__} with {torch.get_num_threads()} threads",
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "settings": settings or {}}


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """:func:`provenance` as the bullet lines that head a Markdown results file."""
    settings = "; ".join(f"{k} {v}" for k, v in record["settings"].items())
    return [f"- command: `{record['command']}`", f"- settings: {settings}", f"- git commit: {record['commit']}",
            f"- machine: {record['machine']}", f"- date: {record['date']}"]
