"""The top-level package: a short public list, graph and vision imported on first use, moved names that say where."""

import importlib
import pkgutil
import subprocess
import sys

import pytest

import fairbinn
import fairbinn.graph
import fairbinn.vision


def test_import_fairbinn_loads_no_graph_or_vision_library():
    code = ("import sys, fairbinn; fairbinn.sweep; fairbinn.load_adult; dir(fairbinn); "
            "exec('try: fairbinn.load_pokec\\nexcept ImportError: pass'); "
            "print(sorted(m for m in ('torch_geometric', 'timm', 'torchvision', 'fairbinn.graph', 'fairbinn.vision') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


SUBPACKAGES = ["core", "core.certify", "tabular", "graph", "vision", "benchmark", "sweeps", "search", "plotting"]


def test_top_level_is_short_and_every_name_resolves():
    assert len(fairbinn.__all__) <= 40
    assert len(set(fairbinn.__all__)) == len(fairbinn.__all__)
    for name in fairbinn.__all__:
        assert getattr(fairbinn, name) is not None, name
    for name in ("core", "tabular", "graph", "vision", "metrics"):
        assert getattr(fairbinn, name) is importlib.import_module(f"fairbinn.{name}")
    assert fairbinn.Trainer is fairbinn.core.Trainer and fairbinn.load_adult is fairbinn.tabular.load_adult
    assert fairbinn.sweep is fairbinn.sweeps.sweep and fairbinn.run is fairbinn.benchmark.run


def test_lazy_names_are_their_modules_public_names():
    assert set(fairbinn._LAZY) <= set(fairbinn.__all__)
    for name, module in fairbinn._LAZY.items():
        package = importlib.import_module(f"fairbinn.{module}")
        assert name in package.__all__
        assert getattr(fairbinn, name) is getattr(package, name)


@pytest.mark.parametrize("module", SUBPACKAGES)
def test_every_subpackage_name_imports_from_its_subpackage(module):
    package = importlib.import_module(f"fairbinn.{module}")
    for name in package.__all__:
        assert getattr(package, name) is not None, name


@pytest.mark.parametrize("module", fairbinn._SUBPACKAGES)
def test_public_names_read_without_import_match_the_package(module):
    package = importlib.import_module(f"fairbinn.{module}")
    assert fairbinn._public_names(module) == list(package.__all__)


def test_a_name_that_is_not_at_the_top_level_says_where_it_lives():
    expected = {"EpochSelector": "fairbinn.core", "seed_everything": "fairbinn.core", "load_pokec": "fairbinn.graph",
                "PAPER_CELEBA_SETTINGS": "fairbinn.vision", "TabularEncoder": "fairbinn.tabular",
                "get_benchmark": "fairbinn.benchmark", "PAPER_ETAS": "fairbinn.sweeps", "EtaSearch": "fairbinn.search",
                "save_figure": "fairbinn.plotting"}
    for name, home in expected.items():
        message = f"fairbinn.{name} moved: import it from {home} (from {home} import {name})"
        assert fairbinn._homes()[name] == home
        with pytest.raises(ImportError) as raised:
            getattr(fairbinn, name)
        assert str(raised.value) == message
        with pytest.raises(ImportError) as raised:
            exec(f"from fairbinn import {name}", {})
        assert str(raised.value) == message
    # every public name of every subpackage is either at the top level or has a home, and homes are right
    for module in fairbinn._SUBPACKAGES:
        for name in importlib.import_module(f"fairbinn.{module}").__all__:
            assert name in fairbinn.__all__ or name in fairbinn._homes(), name
    for name, home in fairbinn._homes().items():
        assert name not in fairbinn.__all__ and name in importlib.import_module(home).__all__
    # `from fairbinn import <submodule>` still imports the submodule
    assert not set(fairbinn._homes()) & {module.name for module in pkgutil.iter_modules(fairbinn.__path__)}
    namespace: dict = {}
    exec("from fairbinn import benchmark, download", namespace)
    assert namespace["download"] is importlib.import_module("fairbinn.download")


def test_star_import_and_unknown_names():
    namespace: dict = {}
    exec("from fairbinn import *", namespace)
    assert set(fairbinn.__all__) <= set(namespace)
    assert namespace["load_nba"] is fairbinn.graph.load_nba
    assert namespace["run_vision"] is fairbinn.vision.run_vision
    assert namespace["sweep"] is fairbinn.sweep
    assert "EpochSelector" not in namespace
    assert {"load_nba", "run_vision", "sweep"} <= set(dir(fairbinn))
    with pytest.raises(AttributeError, match="module 'fairbinn' has no attribute 'load_mnist'"):
        fairbinn.load_mnist
    assert not hasattr(fairbinn, "load_mnist")
