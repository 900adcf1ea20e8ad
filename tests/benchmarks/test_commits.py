"""benchmarks/reporting.commits_of: which commits and dates a report's logged runs come from."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import reporting  # noqa: E402


def test_commits_of_counts_the_runs_of_each_commit_and_leaves_out_runs_not_done():
    now = {"status": "ok", "commit": "a645e8b2720da8a9", "date": "2026-12-06T11:20:00+00:00"}
    records = [now, dict(now), {"status": "ok"}, {"status": "not run", "reason": "too large"}]
    assert reporting.commits_of(records) == (
        "commit a645e8b, 2026-12-06 (2 runs); an earlier commit (not recorded) (1 run)")
    assert reporting.commits_of(records[3:]) == "none"
    graph_runs = [{"commit": "0123456789", "date": "2026-12-07T01:00:00+00:00"}, {}]  # no status: all done
    assert reporting.commits_of(graph_runs) == "commit 0123456, 2026-12-07 (1 run); an earlier commit (not recorded) (1 run)"
