"""Wall time of ``import fairbinn`` in a fresh interpreter, and which heavy libraries it loads.

Each source tree (default: this repository) is imported ``--rounds`` times,
the trees interleaved so that all see the same machine load; one untimed
warm-up round first fills the file cache. Compare two versions by passing
both trees, e.g. a ``git worktree`` of an older commit and this one::

    git worktree add /tmp/before <commit>
    python benchmarks/import_time.py /tmp/before .

Writes nothing; prints a Markdown table (median and min seconds per tree).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "torch_geometric", "torchvision", "timm", "pandas", "sklearn", "matplotlib")
PROBE = (
    "import sys, time; start = time.perf_counter(); import fairbinn; seconds = time.perf_counter() - start; "
    "import json; print(json.dumps({'seconds': seconds, 'file': fairbinn.__file__, "
    f"'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))"
)


def import_once(tree: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tree, capture_output=True, text=True, check=True)
    record = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(record["file"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{tree}: imported fairbinn from {record['file']}, not from this tree")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="*", type=Path, default=[Path(__file__).resolve().parents[1]])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    times: dict[Path, list[float]] = {tree: [] for tree in args.trees}
    loaded: dict[Path, list[str]] = {}
    for round_ in range(args.rounds + 1):
        for tree in args.trees:
            record = import_once(tree)
            loaded[tree] = record["loaded"]
            if round_:  # round 0 warms the file cache
                times[tree].append(record["seconds"])
    print(f"`import fairbinn`, {args.rounds} interleaved rounds after one warm-up, Python {sys.version.split()[0]}\n")
    print("| tree | median s | min s | heavy libraries loaded |")
    print("|---|---|---|---|")
    for tree, values in times.items():
        print(f"| {tree} | {statistics.median(values):.2f} | {min(values):.2f} | {', '.join(loaded[tree])} |")


if __name__ == "__main__":
    main()
