"""The extension examples in examples/ run, do what they say, and stay short."""

import runpy
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def _forget_example_layer(monkeypatch):
    """Run as `python examples/x.py` would (toy_data importable); forget the example's registered layer."""
    from fairbinn.core import fairness_layers

    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield
    fairness_layers._FAIRNESS_LAYERS.pop("example_gated", None)


def _code_lines(path: Path) -> int:
    """Lines that are neither blank, comments nor one-line docstrings."""
    return sum(1 for line in path.read_text().splitlines()
               if line.strip() and not line.strip().startswith(("#", '"""')))


@pytest.mark.parametrize("name", ["custom_fairness_layer", "custom_constraint", "custom_backbone"])
def test_examples_are_under_30_lines_and_train(name, capsys):
    path = EXAMPLES / f"{name}.py"
    assert _code_lines(path) < 30
    namespace = runpy.run_path(str(path), run_name="__main__")
    result = namespace["result"]
    assert len(result.history) == 20
    assert result.test["accuracy"] > 0.75  # the toy problem's majority class is about 0.55
    assert "'accuracy'" in capsys.readouterr().out


def test_registered_layer_is_used():
    import fairbinn

    namespace = runpy.run_path(str(EXAMPLES / "custom_fairness_layer.py"))
    assert "example_gated" in fairbinn.core.list_fairness_layers()
    assert isinstance(namespace["model"].fairness, namespace["Gated"])


def test_custom_constraint_by_hand():
    namespace = runpy.run_path(str(EXAMPLES / "custom_constraint.py"))
    constraint = namespace["FalsePositiveParity"]()
    probs = torch.tensor([0.2, 0.8, 0.6, 0.9])
    y, groups = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 1])
    # true negatives: group 0 mean 0.5, group 1 mean 0.6 -> gap 0.1, squared 0.01
    assert constraint(probs, y, groups).item() == pytest.approx(0.01)
    rows = constraint(probs.repeat(2, 1), y.repeat(2, 1), groups.repeat(2, 1), 2)
    assert rows.tolist() == pytest.approx([0.01, 0.01])
