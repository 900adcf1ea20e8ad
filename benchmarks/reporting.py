"""What the benchmark scripts share: a resumable log of runs and mean ± std tables.

Imported by the scripts beside it (``python benchmarks/<name>.py`` puts this
folder on the import path).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

HEADERS = {"accuracy": "accuracy", "auc": "AUC", "ap": "AP", "dp": "DP", "eo": "EO", "eopp": "EOpp",
           "soft_dp": "soft DP", "soft_eo": "soft EO"}


class RunLog:
    """A JSON-lines file of finished runs; runs already in it are skipped when a script restarts.

    ``key`` maps a record to its identity; records whose ``match`` fields
    differ from the current settings (e.g. another number of epochs) are ignored.
    """

    def __init__(self, path: Path, key: Callable[[dict], tuple], match: dict[str, Any] | None = None) -> None:
        self.path, self.key, self.match = path, key, match or {}

    def records(self) -> dict[tuple, dict]:
        done = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                record = json.loads(line)
                if all(record.get(k) == v for k, v in self.match.items()):
                    done[self.key(record)] = record
        return done

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


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
            stats = {m: (float(group[m].mean()), float(group[m].std(ddof=1)) if len(group) > 1 else 0.0)
                     for m in metrics}
            lines.append(f"| {label} | " + " | ".join(f"{mu:.{decimals}f} ± {sd:.{decimals}f}" for mu, sd in stats.values())
                         + f" | {len(group)} |")
            summary.setdefault(name, {})[label] = {
                m: {"mean": mu, "std": sd} for m, (mu, sd) in stats.items()
            } | {"runs": len(group)}
        lines.append("")
    return lines, summary
