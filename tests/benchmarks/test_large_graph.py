"""benchmarks/large_graph.py: a report says which commit and date its timed rows come from."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import large_graph  # noqa: E402


def test_timed_at_counts_the_rows_of_each_commit_and_leaves_out_rows_not_run():
    now = {"status": "ok", "commit": "a645e8b2720da8a9", "date": "2026-12-06T11:20:00+00:00"}
    records = [now, dict(now), {"status": "ok"}, {"status": "not run", "reason": "too large"}]
    assert large_graph.timed_at(records) == (
        "commit a645e8b, 2026-12-06 (2 rows); an earlier commit (not recorded) (1 row)")
    assert large_graph.timed_at(records[3:]) == "no row timed"
