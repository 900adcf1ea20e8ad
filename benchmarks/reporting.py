"""What the benchmark scripts share: a resumable log of runs, interleaved step timing, mean ± std tables.

Imported by the scripts beside it (``python benchmarks/<name>.py`` puts this
folder on the import path).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

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


RUNTIME_FIELDS = ("progress", "checkpoint_dir", "checkpoint_every", "resume", "overwrite")
"""``TrainConfig`` fields that change how a run is carried out but not its numbers; :func:`run_key` leaves them out."""


def config_dict(config: Any) -> dict[str, Any]:
    """A ``TrainConfig`` (or a dict of its fields) as plain data: ``config.to_dict()``."""
    return dict(config) if isinstance(config, dict) else config.to_dict()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(tensor: torch.Tensor) -> dict[str, Any]:
    """``{"shape": [...], "sum": s}``: the shape and the float64 sum of ``tensor`` rounded to 6 significant digits
    (the same on every machine, so a cache key built on it is too)."""
    return {"shape": list(tensor.shape), "sum": float(f"{float(tensor.detach().double().sum()):.6g}")}


def data_summary(data: Any, **extra: Any) -> dict[str, Any]:
    """What identifies a loaded dataset in a cache key: its name, split sizes (``data.summary()``'s ``name`` and
    ``examples``, node and edge counts for a graph) and the :func:`fingerprint` of the training features
    (``data.train.x``, or a graph's node features ``data.data.x``); ``extra`` (e.g. ``split_seed``) is added."""
    summary = data.summary()
    out = {k: summary[k] for k in ("name", "examples", "num_nodes", "num_edges", "val_is_test") if k in summary}
    features = getattr(getattr(data, "train", None), "x", None)
    if not isinstance(features, torch.Tensor):
        features = getattr(getattr(data, "data", None), "x", None)
    if isinstance(features, torch.Tensor):
        out["features"] = fingerprint(features)
    return {**out, **extra}


def run_key(config: Any, data_summary: dict[str, Any], **extra: Any) -> str:
    """The cache key of one run: the first 16 hex digits of the sha256 of the canonical JSON (sorted keys) of
    ``{"config": config.to_dict() without RUNTIME_FIELDS, "data": data_summary, "extra": extra}``.

    ``config`` is a ``TrainConfig`` or its ``to_dict()``; ``data_summary`` identifies the data (e.g.
    :func:`data_summary`); ``extra`` holds whatever else decides the run (backbone, model settings). Equal
    settings give equal keys on any machine; any other setting gives another key."""
    values = {k: v for k, v in config_dict(config).items() if k not in RUNTIME_FIELDS}
    payload = {"config": values, "data": data_summary, "extra": extra}
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()[:16]


def sweep_config(data: Any, strategy: str, **overrides: Any) -> Any:
    """The TrainConfig that ``fairbinn.sweep(data, [strategy], ..., **overrides)`` trains (eta and seed vary per
    model): the dataset's paper settings with ``overrides`` and ``record_test=True``, for ``strategy``."""
    from fairbinn.benchmark import get_benchmark

    base = get_benchmark(data).paper_config(data).replace(**{**overrides, "record_test": True})
    return base.for_strategy(strategy)


def swept(config: Any, etas: Any) -> dict[str, Any]:
    """The provenance of a row whose models ``fairbinn.sweep(..., etas)`` trained: ``config`` as plain data
    (:func:`config_dict`) with its ``eta`` replaced by what the sweep trained, since ``config.eta`` is only the
    base eta: ERM's rows have eta 0, a single eta is that eta, and a grid or ``"auto"`` (a search, the etas
    varying per model) reads ``"per model: etas=... (the eta column)"``, each model's eta being in the
    results' ``eta`` column."""
    values = config_dict(config)
    grid = etas if isinstance(etas, str) else [float(eta) for eta in etas]
    if values.get("strategy") == "erm":
        values["eta"] = 0.0
    elif not isinstance(grid, str) and len(grid) == 1:
        values["eta"] = grid[0]
    else:
        values["eta"] = f"per model: etas={grid!r} (the eta column)"
    return values


def commits_of(records: list[dict], done: str = "ok") -> str:
    """The commits and dates that ``records`` (run-log records that keep ``commit`` and ``date`` when they were
    made; those with a ``status`` other than ``done`` are left out) were made at, with how many each."""
    counts: dict[str, int] = {}
    for r in records:
        if r.get("status", done) != done:
            continue
        when = (f"commit {r['commit'][:7]}, {r['date'][:10]}" if "commit" in r
                else "an earlier commit (not recorded)")
        counts[when] = counts.get(when, 0) + 1
    return "; ".join(f"{when} ({n} run{'s' if n != 1 else ''})" for when, n in counts.items()) or "none"


def made_at(script: str) -> dict[str, str]:
    """The ``commit`` and ``date`` to keep in a run-log record made now (see :func:`commits_of`)."""
    record = provenance(script)
    return {"commit": record["commit"], "date": record["date"]}


def keyed_run_log(path: Path, keep: Callable[[dict], bool] = lambda record: True) -> RunLog:
    """A :class:`RunLog` whose records are identified by their ``"run_key"`` (:func:`run_key`); lines written
    without one (by older versions of the scripts) are ignored, and their runs trained again."""
    return RunLog(path, key=lambda record: record["run_key"],
                  keep=lambda record: isinstance(record.get("run_key"), str) and keep(record))


RESULT_FOLDERS = ("benchmarks/results/", "benchmarks/earlier_results/")
"""Folders of results files: changes there do not make :func:`provenance`'s tree dirty."""


def _cpu_model() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(script: str, settings: dict[str, Any] | None = None, *,
               configs: dict[str, Any] | None = None, commit: str | None = None) -> dict[str, Any]:
    """How a results file was made; call it when the file is written (the commit is read then).

    Keys: ``command`` (``python`` and ``sys.argv``, with ``OMP_NUM_THREADS`` when set), ``commit`` (the git
    HEAD; outside a checkout the ``commit`` given, else ``$FAIRBINN_COMMIT`` when set, else "unknown"), ``dirty`` (whether the working
    tree had uncommitted changes outside the results folders; None when unknown), ``dirty_files`` (those of ``fairbinn/`` and ``script``), ``machine`` (platform and CPU count),
    ``device`` (the CPU model, and the CUDA device when there is one), ``threads``
    (``torch.get_num_threads()``), ``torch``, ``date``, ``settings`` (the script's options) and ``configs``
    (row label -> the row's full ``TrainConfig.to_dict()``).
    """
    import datetime
    import os
    import platform
    import shlex
    import subprocess
    import sys

    here = Path(__file__).resolve().parent

    def git(*command: str) -> str:
        return subprocess.run(["git", *command], cwd=here, capture_output=True, text=True, check=True).stdout

    given = commit or os.environ.get("FAIRBINN_COMMIT")
    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
                   if not line[3:].startswith(RESULT_FOLDERS)]  # results written by runs leave the code clean
        dirty: bool | None = bool(changed)
        mine = [line[3:] for line in changed
                if line[3:].startswith("fairbinn/") or line[3:].endswith(Path(script).name)]
    except (OSError, subprocess.CalledProcessError):
        commit, dirty, mine = "unknown", None, []
        if given:  # a copy of the tree without .git, e.g. on a GPU machine
            commit = f"{given} (as given: the tree here is not a git checkout)"
    threads = os.environ.get("OMP_NUM_THREADS")
    command = ("" if threads is None else f"OMP_NUM_THREADS={threads} ") + "python " + " ".join(
        shlex.quote(a) for a in sys.argv)
    device = _cpu_model()
    if torch.cuda.is_available():
        device += f"; CUDA: {torch.cuda.get_device_name(0)}"
    return {"command": command, "commit": commit, "dirty": dirty, "dirty_files": mine,
            "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
            "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "settings": settings or {},
            "configs": {label: config_dict(config) for label, config in (configs or {}).items()}}


def _differences(config: dict[str, Any]) -> str:
    """The fields of a ``TrainConfig.to_dict()`` that differ from ``TrainConfig()``'s, as ``name=value``."""
    from fairbinn import TrainConfig

    default = TrainConfig().to_dict()
    changed = [f"{k}={v!r}" for k, v in config.items() if k not in RUNTIME_FIELDS and default.get(k, object()) != v]
    return ", ".join(changed) or "TrainConfig() defaults"


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """:func:`provenance` as the bullet lines that head a Markdown results file: the command, settings, commit,
    machine, device, threads and date, then each row's ``TrainConfig`` fields that differ from the defaults, and
    every row's full ``TrainConfig`` in a collapsed JSON block."""
    settings = "; ".join(f"{k} {v}" for k, v in record.get("settings", {}).items())
    commit = record["commit"]
    if record.get("dirty"):
        commit += " (uncommitted changes in the tree" + (
            f", among them {', '.join(record['dirty_files'])})" if record.get("dirty_files") else ")")
    lines = [f"- command: `{record['command']}`"] + ([f"- settings: {settings}"] if settings else []) + [
        f"- git commit: {commit}", f"- machine: {record['machine']}"]
    if "device" in record:
        lines += [f"- device: {record['device']}; torch {record.get('torch', '')} with {record['threads']} threads"]
    lines += [f"- date: {record['date']}"]
    configs = record.get("configs") or {}
    if configs:
        lines += ["- TrainConfig of each row (fields that differ from `fairbinn.TrainConfig()`):"]
        lines += [f"  - {label}: {_differences(config)}" for label, config in configs.items()]
        lines += ["", "<details><summary>Every row's full TrainConfig</summary>", "", "```json",
                  json.dumps(configs, indent=1, sort_keys=True, default=str), "```", "", "</details>"]
    return lines


def with_provenance(lines: Sequence[str], record: dict[str, Any]) -> str:
    """A Markdown results file's text: ``lines`` with :func:`provenance_lines` after the title (the first line,
    when it is a ``#`` heading) or at the top."""
    lines = list(lines)
    head = lines[:1] + [""] if lines and lines[0].startswith("#") else []
    body = lines[len(head) - 1:] if head else lines
    body = body[1:] if head and body and body[0] == "" else body
    return "\n".join([*head, *provenance_lines(record), "", *body]).rstrip("\n") + "\n"


def write_markdown(path: Path, lines: Sequence[str], record: dict[str, Any]) -> None:
    """Write ``lines`` to ``path`` headed by the provenance of ``record`` (:func:`with_provenance`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(with_provenance(lines, record))


def write_json(path: Path, payload: Any, record: dict[str, Any]) -> None:
    """Write ``{"provenance": record, **payload}`` to ``path`` (``{"provenance": ..., "rows": payload}`` when
    ``payload`` is not a dict)."""
    body = payload if isinstance(payload, dict) else {"rows": payload}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": record, **body}, indent=2, default=str) + "\n")


def write_csv(frame: pd.DataFrame, path: Path, record: dict[str, Any], **to_csv: Any) -> None:
    """Write ``frame`` to ``path`` (``to_csv`` goes to :meth:`pandas.DataFrame.to_csv`, ``index=False`` unless
    given; a name ending in ``.xz``, ``.gz`` ... compresses it) and its provenance beside it, as
    ``<name>.provenance.json`` (not compressed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, **{"index": False, **to_csv})
    sidecar(path).write_text(json.dumps(record, indent=2, default=str) + "\n")


COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip")
"""Suffixes by which pandas infers a compressed CSV."""


def sidecar(path: Path) -> Path:
    """Where :func:`write_csv` puts the provenance of the CSV file ``path``: ``<name>.provenance.json``, ``<name>``
    without ``.csv`` and without a compression suffix (``r.csv.xz`` -> ``r.provenance.json``)."""
    name = path.name
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    return path.with_name(Path(name).stem + ".provenance.json")
