"""benchmarks/run_all.sh: its parts, their expected times and the commands it would run."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_all(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "benchmarks/run_all.sh", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_the_list_adds_up_and_names_each_part_once():
    listed = _run_all("--list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    parts = [re.fullmatch(r"(\S+)\s+(\d+) min", line) for line in lines[:-1]]
    assert all(parts), lines
    names = [p.group(1) for p in parts]
    assert len(names) == len(set(names))
    total = re.fullmatch(r"total\s+(\d+) min \(about (\d+) h\)", lines[-1])
    assert total and int(total.group(1)) == sum(int(p.group(2)) for p in parts)
    assert int(total.group(2)) == int(total.group(1)) // 60


def test_every_command_runs_a_script_of_the_repository_with_the_out_dir():
    dry = _run_all("--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.strip().splitlines()
    headers, commands = lines[0::2], lines[1::2]
    assert len(headers) == len(commands) and all(h.startswith("# ") for h in headers)
    for header, command in zip(headers, commands):
        scripts = re.findall(r"benchmarks/[\w/]+\.py", command)
        assert scripts, header
        assert all((REPO / script).is_file() for script in scripts), (header, scripts)
        assert "--out benchmarks/results" in command, header


def test_only_selects_parts_and_names_an_unknown_one():
    one = _run_all("--dry-run", "--only", "graph_bail_costs")
    assert one.returncode == 0 and one.stdout.startswith("# graph_bail_costs (expected ")
    assert one.stdout.count("\n# ") == 0  # one part
    unknown = _run_all("--only", "no_such_part")
    assert unknown.returncode == 2 and "unknown part 'no_such_part'" in unknown.stderr
