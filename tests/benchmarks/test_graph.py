"""benchmarks/graph.py: the TrainConfig listed for every row of a report, including rows other invocations trained;
how a step cost was measured; the network learning rate a report states."""

import sys
from pathlib import Path

import fairbinn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import graph  # noqa: E402


def _record(label: str, split_seed: int, seed: int, config: fairbinn.TrainConfig | None) -> dict:
    record = {"dataset": "nba", "backbone": "gcn", "label": label, "split_seed": split_seed, "seed": seed}
    return record | ({} if config is None else {"config": config.to_dict()})


def test_row_configs_adds_each_logged_row_from_its_first_run():
    mine = fairbinn.TrainConfig(strategy="lagrangian", eta=1000.0)
    rate = mine.replace(surrogate="rate")
    records = [
        _record("Lagrangian, eta 1000, rate surrogate", 2, 0, rate.replace(seed=0)),
        _record("Lagrangian, eta 1000, rate surrogate", 1, 1, rate.replace(seed=1)),
        _record("Lagrangian, eta 1000, rate surrogate", 1, 0, rate.replace(seed=0, epochs=7)),
        _record("Lagrangian, eta 1000", 1, 0, mine.replace(seed=5)),  # this invocation's row: its config stays
        _record("ERM", 1, 0, None),  # a record without a config adds nothing
    ]
    rows = graph.row_configs(records, {"nba, gcn: Lagrangian, eta 1000": mine})
    assert list(rows) == ["nba, gcn: Lagrangian, eta 1000", "nba, gcn: Lagrangian, eta 1000, rate surrogate"]
    assert rows["nba, gcn: Lagrangian, eta 1000"] == mine.to_dict()
    # split seed 1 before 2, then training seed 0 before 1: the run with epochs=7
    assert rows["nba, gcn: Lagrangian, eta 1000, rate surrogate"] == rate.replace(seed=0, epochs=7).to_dict()
    assert rows["nba, gcn: Lagrangian, eta 1000, rate surrogate"]["surrogate"] == "rate"


def test_a_step_cost_says_how_it_was_measured_as_far_as_its_record_knows():
    earlier = {"torch": "2.11.0+cu130"}
    assert graph.measured_with(earlier) == "torch 2.11.0+cu130"
    now = {"torch": "2.14.1+cu130", "threads": 2, "commit": "77386e2abcdef0123", "date": "2026-12-06T11:30:00+00:00"}
    assert graph.measured_with(now) == "torch 2.14.1+cu130, 2 threads, commit 77386e2, 2026-12-06"
    assert graph.measured_with({**now, "threads": 1}).startswith("torch 2.14.1+cu130, 1 thread, ")


def test_a_report_states_each_datasets_learning_rate_unless_lr_is_given():
    assert graph.dataset_lr("bail", None) == 0.001 and graph.dataset_lr("nba", None) == 0.01
    assert graph.dataset_lr("bail", 0.005) == 0.005
    assert graph.network_lr(["bail"], None) == "0.001"
    assert graph.network_lr(["nba", "bail"], None) == "0.001 (bail), 0.01 (nba)"
    assert graph.network_lr(["nba", "bail"], 0.005) == "0.005"
    assert graph.network_lr(["nba"], None) == "0.01"
