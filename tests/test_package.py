"""The top-level package: graph and vision are imported on first use, and every public name resolves."""

import subprocess
import sys

import pytest

import fairbinn
import fairbinn.graph
import fairbinn.vision


def test_import_fairbinn_loads_no_graph_or_vision_library():
    code = ("import sys, fairbinn; fairbinn.sweep; fairbinn.load_adult; "
            "print(sorted(m for m in ('torch_geometric', 'timm', 'torchvision', 'fairbinn.graph', 'fairbinn.vision') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("modality", ["graph", "vision"])
def test_lazy_names_are_the_modality_packages_public_names(modality):
    package = getattr(fairbinn, modality)
    assert set(fairbinn._LAZY[modality]) == set(package.__all__)
    assert len(fairbinn._LAZY[modality]) == len(package.__all__)
    for name in package.__all__:
        assert getattr(fairbinn, name) is getattr(package, name)
        assert name in fairbinn.__all__


def test_star_import_and_unknown_names():
    namespace: dict = {}
    exec("from fairbinn import *", namespace)
    assert namespace["load_nba"] is fairbinn.graph.load_nba
    assert namespace["run_vision"] is fairbinn.vision.run_vision
    assert namespace["sweep"] is fairbinn.sweep
    assert {"load_nba", "run_vision", "sweep"} <= set(dir(fairbinn))
    with pytest.raises(AttributeError, match="module 'fairbinn' has no attribute 'load_mnist'"):
        fairbinn.load_mnist
