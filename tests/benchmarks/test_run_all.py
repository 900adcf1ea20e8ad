"""benchmarks/run_all.sh: its parts, their expected times, the commands it would run, and that each command's
arguments are accepted by its script."""

import argparse
import importlib.util
import re
import shlex
import subprocess
import sys
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


def test_help_prints_the_whole_header_and_the_options():
    shown = _run_all("--help")
    assert shown.returncode == 0
    script = (REPO / "benchmarks/run_all.sh").read_text().splitlines()
    header = [line[2:] for line in script[1:script.index("set -euo pipefail")] if line.startswith("# ")]
    assert header and all(line in shown.stdout for line in header)
    assert "set -euo" not in shown.stdout
    assert shown.stdout.rstrip().endswith("--gpu, -h/--help")


def test_only_selects_parts_and_names_an_unknown_one():
    one = _run_all("--dry-run", "--only", "graph_bail_costs")
    assert one.returncode == 0 and one.stdout.startswith("# graph_bail_costs (expected ")
    assert one.stdout.count("\n# ") == 0  # one part
    unknown = _run_all("--only", "no_such_part")
    assert unknown.returncode == 2 and "unknown part 'no_such_part'" in unknown.stderr


class _Parsed(Exception):
    """Raised in place of training once a script has parsed its command line."""


def _script_commands() -> list[tuple[str, str, list[str]]]:
    """(part, script path, arguments) for every script invocation of every part's command."""
    dry = _run_all("--dry-run")
    lines = dry.stdout.strip().splitlines()
    invocations = []
    for header, command in zip(lines[0::2], lines[1::2]):
        part = header[2:].split(" (expected")[0]
        for segment in command.split("&&"):
            words = shlex.split(segment)
            words = [w for w in words if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # environment assignments
            assert words[0] == "python" and words[1].endswith(".py"), (part, segment)
            invocations.append((part, words[1], words[2:]))
    return invocations


_INVOCATIONS = _script_commands()


@pytest.mark.parametrize("part, script, argv", _INVOCATIONS,
                         ids=[f"{part}-{Path(script).stem}-{i}" for i, (part, script, _) in enumerate(_INVOCATIONS)])
def test_every_command_line_is_accepted_by_its_script(part, script, argv, monkeypatch):
    """Each part's arguments parse with the script's own parser (stopped before any data is read)."""
    parsed = {}

    def parse_and_stop(parser, args=None, namespace=None):
        parsed["args"] = original(parser, args, namespace)
        raise _Parsed

    original = argparse.ArgumentParser.parse_args
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    monkeypatch.setattr(sys, "argv", [script, *argv])
    monkeypatch.syspath_prepend(str(REPO / Path(script).parent))
    spec = importlib.util.spec_from_file_location(f"run_all_{Path(script).stem}", REPO / script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    with pytest.raises(_Parsed):
        module.main()
    assert str(parsed["args"].out).startswith("benchmarks/results"), part
