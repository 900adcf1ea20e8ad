"""The benchmark registry: built-in names, look-up by name and by dataset, a user's CSV benchmark end to end."""

import runpy
from pathlib import Path

import pytest
import torch

import fairbinn
from fairbinn import benchmark as registry
from fairbinn.cli import main
from fairbinn.download import DOWNLOADS
from fairbinn.tabular.preprocess import TabularDataset
from synthetic import make_biased_split

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _dataset(name: str, n: int) -> TabularDataset:
    return TabularDataset(name, make_biased_split(n, 0, name="train"), make_biased_split(n, 1, name="val"),
                          make_biased_split(n, 2, name="test"), [f"x{i}" for i in range(6)], ["a", "b"], "group", "y")


@pytest.fixture
def forget_toy(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield
    registry._BENCHMARKS.pop("toy_csv", None)


def test_built_in_benchmarks_and_their_download_sources():
    assert fairbinn.list_benchmarks()[:7] == ["adult", "health", "nba", "pokec_z", "pokec_n", "bail", "celeba"]
    modalities = {name: registry.get_benchmark(name).modality for name in fairbinn.list_benchmarks()[:7]}
    assert modalities == {"adult": "tabular", "health": "tabular", "nba": "graph", "pokec_z": "graph",
                          "pokec_n": "graph", "bail": "graph", "celeba": "vision"}
    assert registry.get_benchmark("Pokec-Z").name == "pokec_z"  # case and dash as the command line takes them
    # download reads its sources from the registry: one place for file names and checksums
    assert list(DOWNLOADS) == ["adult", "health", "nba", "pokec_z", "pokec_n", "bail", "celeba"]
    assert [f.name for f in DOWNLOADS["nba"].files] == ["nba.csv", "nba_relationship.txt"]
    assert DOWNLOADS["nba"].files[0].url.endswith("/dataset/NBA/nba.csv")
    assert registry.get_benchmark("adult").stackable and not registry.get_benchmark("nba").stackable


def test_paper_settings_per_dataset():
    assert registry.get_benchmark("nba").paper_config(None) == fairbinn.TrainConfig(
        epochs=1000, lr=1e-2, fairness_lr=1e-5, eta=1000.0)
    assert registry.get_benchmark("adult").paper_config(None) == fairbinn.TrainConfig()


def test_unknown_names_and_datasets_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of adult, bail, celeba, health, nba"):
        registry.get_benchmark("mnist")
    with pytest.raises(TypeError, match="no benchmark trains a list"):
        registry.get_benchmark([1, 2])
    with pytest.raises(ValueError, match="dataset 'adult' is already registered; pass overwrite=True"):
        registry.register_benchmark(registry.get_benchmark("adult"))


def test_a_loaded_dataset_uses_its_own_benchmark_or_its_types():
    assert registry.get_benchmark(_dataset("health", 50)).name == "health"
    assert registry.get_benchmark(_dataset("mine", 50)).name == "adult"  # the first tabular benchmark: the paper's MLP


def test_summaries_share_one_set_of_keys():
    data = _dataset("mine", 40)
    assert isinstance(data, registry.FairDataset)
    summary = data.summary()
    assert {"name", "label", "sensitive_attribute", "groups"} <= set(summary)
    assert summary["examples"] == {"train": 40, "val": 40, "test": 40}
    assert set(summary["test"]) >= {"positive_rate", "group_shares"}


def test_csv_benchmark_example_trains_by_name_in_library_cli_and_sweep(forget_toy, capsys):
    path = EXAMPLES / "csv_benchmark.py"
    code = [line for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith(("#", '"""'))]
    assert len(code) < 30
    namespace = runpy.run_path(str(path), run_name="__main__")
    result = namespace["result"]
    assert len(result.history) == 20 and result.config["strategy"] == "lagrangian"
    assert result.test["accuracy"] > 0.75  # the toy problem's majority class is about 0.55
    out = capsys.readouterr().out
    assert "toy: test metrics, 200 test examples, groups ['0', '1'] (seed 0, 20 epochs" in out
    assert "erm " in out and "bilevel (eta=1)" in out
    # the same run through fairbinn.run again: same seed, same numbers
    again = fairbinn.run("toy_csv", strategy="lagrangian", eta=1, progress=False)
    assert again.test == result.test
    table = fairbinn.sweep("toy_csv", ["lagrangian"], [0.0, 1.0], [0], epochs=2, progress=False, rows="models")
    assert table["eta"].tolist() == [0.0, 1.0] and table["test_accuracy"].between(0, 1).all()
    assert main(["sweep", "--data", "toy_csv", "--mode", "erm", "--etas", "0", "--epochs", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "toy: 1 models" in out
    assert "no checkpoint's validation dp meets any of the budgets [0.01, 0.02, 0.05, 0.1]" in out  # ERM's DP ~0.3


def test_run_equals_the_modality_function():
    data = _dataset("mine", 200)
    settings = dict(strategy="bilevel", eta=2.0, epochs=2, progress=False)
    first, second = fairbinn.run(data, **settings), fairbinn.run_tabular(data, **settings)
    assert first.test == second.test and first.selected_epoch == second.selected_epoch
    assert first.extra["model"]["follower_parameters"] == second.extra["model"]["follower_parameters"]
    assert torch.isfinite(torch.tensor(first.test["accuracy"]))
