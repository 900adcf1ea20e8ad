"""TrainConfig(compile=...): compiled strategies train like eager ones; a failing compiler falls back."""

import warnings

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from fairbinn import Trainer, TrainConfig
from fairbinn.core import seed_everything
from fairbinn.core.config import compile_backends
from fairbinn.core.stacked import stack_models
from fairbinn.tabular import build_mlp
from tests.synthetic import make_biased_split

TRAIN = make_biased_split(260, seed=0)  # 4 batches of 64 and one of 4: a second shape to compile


@torch._dynamo.register_backend
def failing_backend_TESTING(gm, example_inputs):
    raise RuntimeError("no C++ compiler here")


def _train(**settings):
    seed_everything(0)
    model = build_mlp(6, (12, 12), dropout=0.1)
    config = TrainConfig(epochs=1, batch_size=64, eta=5.0, progress=False, selection_metric=None, **settings)
    history = Trainer(config).fit(model, TRAIN).history
    return model, history


def _largest_difference(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("strategy, order", [
    ("erm", "follower_first"), ("lagrangian", "follower_first"), ("bilevel", "follower_first"),
    ("bilevel", "leader_first"), ("bilevel", "simultaneous"),
])
def test_compiled_strategy_trains_like_the_eager_one(strategy, order):
    eager, eager_history = _train(strategy=strategy, order=order)
    torch._dynamo.reset()
    counters.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled, history = _train(strategy=strategy, order=order, compile="aot_eager")
    assert not [w for w in caught if "torch.compile" in str(w.message)]  # no fallback taken
    assert counters["stats"]["unique_graphs"] >= 1  # the losses really went through dynamo
    assert _largest_difference(eager, compiled) <= 1e-5
    assert [r["train_bce"] for r in history] == pytest.approx([r["train_bce"] for r in eager_history], abs=1e-5)


def test_inductor_compiled_erm_matches_eager_to_1e_5_with_dropout():
    eager, _ = _train(strategy="erm")
    torch._dynamo.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled, _ = _train(strategy="erm", compile=True)
    assert not [w for w in caught if "torch.compile" in str(w.message)]
    assert _largest_difference(eager, compiled) <= 1e-5


def test_compiled_stack_matches_the_eager_stack():
    def fit(**settings):
        seed_everything(0)
        stack = stack_models([build_mlp(6, (12, 12)) for _ in range(2)])
        config = TrainConfig(epochs=1, batch_size=64, progress=False, selection_metric=None, **settings)
        Trainer(config).fit(stack, TRAIN, etas=[1.0, 10.0], seeds=[0, 1])
        return stack

    eager, compiled = fit(), fit(compile="aot_eager")
    assert _largest_difference(eager, compiled) <= 1e-5


def test_a_failing_compiler_falls_back_once_from_the_same_state():
    eager, eager_history = _train(strategy="bilevel")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallen_back, history = _train(strategy="bilevel", compile="failing_backend_TESTING")
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    assert "torch.compile (backend 'failing_backend_TESTING') failed in the first training step" in messages[0]
    assert "no C++ compiler here" in messages[0] and "continues uncompiled from the same state" in messages[0]
    assert _largest_difference(eager, fallen_back) == 0.0  # nothing of the failed attempt remains
    assert [r["train_bce"] for r in history] == [r["train_bce"] for r in eager_history]


def test_a_real_error_still_raises_after_the_fallback():
    seed_everything(0)
    model = build_mlp(5, (4,))  # the data has 6 features
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Trainer(TrainConfig(epochs=1, progress=False, compile="aot_eager")).fit(model, TRAIN)


@pytest.mark.parametrize("value, message", [
    ("no_such_backend", "compile must be True, False or a torch.compile backend's name (one of aot_eager"),
    (3, "compile must be True, False or a torch.compile backend's name, got 3"),
])
def test_bad_compile_settings_are_refused(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TrainConfig(compile=value)


def test_backends_listed_include_the_default_and_the_debugging_ones():
    assert {"inductor", "aot_eager", "eager"} <= set(compile_backends())


def test_a_strategy_without_a_compiled_path_says_so_and_trains_eagerly():
    eager, _ = _train(strategy="stackelberg")
    with pytest.warns(RuntimeWarning, match="the stackelberg strategy has no compiled path; training runs uncompiled"):
        compiled, _ = _train(strategy="stackelberg", compile="aot_eager")
    assert _largest_difference(eager, compiled) == 0.0
