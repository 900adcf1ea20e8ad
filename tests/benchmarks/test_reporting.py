"""benchmarks/reporting.py: the run cache key, the keyed run log, and the provenance every results file carries."""

import json
import shlex
import sys
from pathlib import Path

import pandas as pd
import torch

import fairbinn
from fairbinn.tabular.preprocess import TabularDataset
from synthetic import make_biased_split

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import reporting  # noqa: E402


def _dataset(n: int = 40) -> TabularDataset:
    return TabularDataset("toy", make_biased_split(n, 0, name="train"), make_biased_split(n, 1, name="val"),
                          make_biased_split(n, 2, name="test"), [f"x{i}" for i in range(6)], ["a", "b"], "group", "y")


def test_run_key_is_stable_and_changes_with_every_result_setting():
    data = reporting.data_summary(_dataset(), seed=0)
    assert data["name"] == "toy" and data["examples"] == {"train": 40, "val": 40, "test": 40} and data["seed"] == 0
    assert data["features"]["shape"] == [40, 6]
    key = reporting.run_key(fairbinn.TrainConfig(), data)
    assert len(key) == 16 and int(key, 16) >= 0
    # the same settings, given as a config, its dict, or with runtime-only fields changed: the same key
    assert reporting.run_key(fairbinn.TrainConfig().to_dict(), data) == key
    assert reporting.run_key(fairbinn.TrainConfig(progress=False, checkpoint_every=5), data) == key
    others = {reporting.run_key(fairbinn.TrainConfig(follower_optimizer="adam"), data),
              reporting.run_key(fairbinn.TrainConfig(leader_penalty=False), data),
              reporting.run_key(fairbinn.TrainConfig(), {**data, "seed": 1}),
              reporting.run_key(fairbinn.TrainConfig(), data, backbone="gat")}
    assert key not in others and len(others) == 4


def test_swept_rows_name_the_etas_the_sweep_trained_not_the_base_eta():
    base = fairbinn.TrainConfig(eta=100.0, seed=0)
    searched = reporting.swept(base, "auto")
    assert searched["eta"] == "per model: etas='auto' (the eta column)"
    assert {k: v for k, v in searched.items() if k != "eta"} == {k: v for k, v in base.to_dict().items() if k != "eta"}
    assert reporting.swept(base, [0.5, 2])["eta"] == "per model: etas=[0.5, 2.0] (the eta column)"
    assert reporting.swept(base, [1000])["eta"] == 1000.0
    assert reporting.swept(base.replace(strategy="erm"), "auto")["eta"] == 0.0
    assert base.eta == 100.0  # the config given is left as it was
    lines = reporting.provenance_lines(reporting.provenance("x.py", configs={"adult: bilevel": searched}))
    assert "  - adult: bilevel: eta=\"per model: etas='auto' (the eta column)\"" in lines


def test_fingerprint_rounds_the_sum_to_six_digits():
    assert reporting.fingerprint(torch.tensor([[1.0, 2.0], [3.0, 1.0 / 3.0]])) == {"shape": [2, 2], "sum": 6.33333}


def test_keyed_run_log_ignores_lines_without_a_key(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps({"dataset": "adult", "label": "ERM", "seed": 0, "epochs": 50}) + "\n")
    log = reporting.keyed_run_log(path, keep=lambda r: r["epochs"] == 50)
    assert log.records() == {}
    log.append({"run_key": "abc", "epochs": 50})
    log.append({"run_key": "def", "epochs": 5})
    assert list(log.records()) == ["abc"]


def test_provenance_is_written_into_markdown_json_and_beside_csv(tmp_path):
    record = reporting.provenance("tabular.py", {"epochs": 1},
                                  configs={"FairBiNN, Adam follower": fairbinn.TrainConfig(follower_optimizer="adam")})
    words = shlex.split(record["command"])
    assert words[words.index("python") + 1:] == sys.argv
    assert record["threads"] == torch.get_num_threads()
    assert record["configs"]["FairBiNN, Adam follower"] == fairbinn.TrainConfig(follower_optimizer="adam").to_dict()
    assert {"commit", "dirty", "device", "date", "machine", "torch"} <= set(record)

    reporting.write_markdown(tmp_path / "r.md", ["# Title", "", "| a |"], record)
    text = (tmp_path / "r.md").read_text().splitlines()
    assert text[:3] == ["# Title", "", f"- command: `{record['command']}`"]
    assert "  - FairBiNN, Adam follower: follower_optimizer='adam'" in text and text[-1] == "| a |"

    reporting.write_json(tmp_path / "r.json", [{"x": 1}], record)
    assert json.loads((tmp_path / "r.json").read_text()) == {"provenance": json.loads(json.dumps(record)),
                                                             "rows": [{"x": 1}]}

    reporting.write_csv(pd.DataFrame({"x": [1, 2]}), tmp_path / "r.csv", record)
    assert pd.read_csv(tmp_path / "r.csv")["x"].tolist() == [1, 2]
    assert json.loads((tmp_path / "r.provenance.json").read_text())["command"] == record["command"]

    reporting.write_csv(pd.DataFrame({"x": [3, 4]}), tmp_path / "c.csv.xz", record)
    assert (tmp_path / "c.csv.xz").read_bytes()[:6] == b"\xfd7zXZ\x00"  # compressed, as the name says
    assert pd.read_csv(tmp_path / "c.csv.xz")["x"].tolist() == [3, 4]
    assert json.loads((tmp_path / "c.provenance.json").read_text())["command"] == record["command"]


def test_provenance_outside_a_checkout_takes_the_commit_from_the_environment(monkeypatch):
    import subprocess

    def no_git(*args, **kwargs):
        raise OSError("no git here")

    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.setenv("FAIRBINN_COMMIT", "feedc0de")
    record = reporting.provenance("tabular.py")
    assert record["commit"].startswith("feedc0de ") and record["dirty"] is None
    assert reporting.provenance("tabular.py", commit="c0ffee")["commit"].startswith("c0ffee ")  # given wins
    monkeypatch.delenv("FAIRBINN_COMMIT")
    assert reporting.provenance("tabular.py")["commit"] == "unknown"


def test_results_written_by_runs_leave_the_tree_clean_but_code_changes_do_not(monkeypatch):
    import subprocess

    def git(status: str):
        def run(command, **kwargs):
            out = "abc123\n" if "rev-parse" in command else status
            return subprocess.CompletedProcess(command, 0, stdout=out, stderr="")
        return run

    monkeypatch.setattr(subprocess, "run", git(" M benchmarks/results/tabular.md\n M benchmarks/earlier_results/x.json\n"))
    record = reporting.provenance("tabular.py")
    assert (record["commit"], record["dirty"], record["dirty_files"]) == ("abc123", False, [])
    assert "uncommitted" not in "\n".join(reporting.provenance_lines(record))
    monkeypatch.setattr(subprocess, "run", git(" M benchmarks/results/tabular.md\n M fairbinn/core/config.py\n"))
    record = reporting.provenance("tabular.py")
    assert (record["dirty"], record["dirty_files"]) == (True, ["fairbinn/core/config.py"])
    assert "among them fairbinn/core/config.py" in "\n".join(reporting.provenance_lines(record))
