"""Model and checkpoint folders are data: loading them never runs code, and what they describe is checked."""

import json
import logging
import os
import pickle
import random
import sys

import numpy as np
import pytest
import torch
from torch import nn

import fairbinn
from fairbinn import TrainConfig, Trainer, build_mlp
from fairbinn.core import seed_everything, stack_models
from fairbinn.core.runs import SingleRun, StackRun
from fairbinn.core.checkpoint import (CHECKPOINT_NAME, load_checkpoint, plain_state, restore_rng_states,
                                      rng_states, save_checkpoint)
from fairbinn.core.saving import load_model, records_build, registered_builders, save_model
from fairbinn.tabular.preprocess import TabularDataset
from synthetic import make_biased_split

SETTINGS = dict(strategy="bilevel", eta=10.0, batch_size=20, lr=1e-2, fairness_lr=1e-3, lr_decay=0.9,
                progress=False, seed=3)
TRAIN, VAL = make_biased_split(200, 0), make_biased_split(80, 1, name="val")
TEST = make_biased_split(80, 2, name="test")


class _Payload:
    """Unpickling this would create ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _no_weights_only_advice(error):
    assert "weights_only" not in str(error.value) and error.value.__cause__ is None and error.value.__suppress_context__


def _train(epochs, **extra):
    seed_everything(3)
    model = build_mlp(6, (8,), dropout=0.1)
    result = Trainer(**{**SETTINGS, "epochs": epochs, **extra}).fit(model, TRAIN, VAL, TEST)
    return model, result


# ---------------------------------------------------------------- checkpoints


def test_a_checkpoint_is_tensors_and_plain_data(tmp_path):
    _train(2, checkpoint_dir=str(tmp_path))
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)  # no other object inside
    assert state["epoch"] == 2 and isinstance(state["rng"]["numpy"]["key"], torch.Tensor)
    assert isinstance(state["history"][0]["val_accuracy"], float)


def test_generator_states_round_trip_through_plain_data():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # leaves a cached Gaussian in NumPy's state
    saved = plain_state(rng_states())
    expected = (random.random(), np.random.normal(), np.random.random(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_states(saved)
    again = (random.random(), np.random.normal(), np.random.random(), torch.rand(2))
    assert expected[:3] == again[:3] and torch.equal(expected[3], again[3])


def test_plain_state_turns_numpy_scalars_into_numbers_and_refuses_objects():
    assert plain_state({"a": [np.float64(0.25), np.int64(3), np.bool_(True)]}) == {"a": [0.25, 3, True]}
    assert type(plain_state(np.float64(0.25))) is float
    with pytest.raises(TypeError, match=r"tensors and plain data only; state\['selector'\]\['x'\] is a ndarray"):
        save_checkpoint("unused", {"selector": {"x": np.zeros(2)}})


@pytest.mark.parametrize("write", ["torch.save", "pickle.dump"])
def test_a_crafted_checkpoint_is_refused_without_running_it(tmp_path, write):
    created = tmp_path / "created"
    payload = {"epoch": 1, "model": _Payload(created)}
    if write == "torch.save":
        torch.save(payload, tmp_path / CHECKPOINT_NAME)
    else:
        with open(tmp_path / CHECKPOINT_NAME, "wb") as handle:
            pickle.dump(payload, handle)
    with pytest.raises(ValueError, match=f"^{tmp_path / CHECKPOINT_NAME}: .*nothing in it was run") as error:
        load_checkpoint(tmp_path)
    _no_weights_only_advice(error)
    if write == "torch.save":
        assert "holds other objects (it names io.open)" in str(error.value)
    with pytest.raises(ValueError, match=f"^{tmp_path / CHECKPOINT_NAME}: "):  # resuming reads nothing else first
        _train(3, checkpoint_dir=str(tmp_path), resume=True)
    assert not created.exists()


def test_a_truncated_checkpoint_is_an_error_naming_it(tmp_path):
    _train(1, checkpoint_dir=str(tmp_path))
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=f"^{path}: not a readable fairbinn checkpoint: the file is corrupt or "
                                         "truncated") as error:
        load_checkpoint(tmp_path)
    _no_weights_only_advice(error)
    torch.save({"epoch": 1}, path)  # plain data, but not a run's checkpoint
    with pytest.raises(ValueError, match=f"^{path}: not a checkpoint of a fairbinn training run \\(missing config"):
        _train(3, checkpoint_dir=str(tmp_path), resume=True)


def test_a_directory_holding_a_run_needs_resume_or_overwrite(tmp_path, monkeypatch):
    _, first = _train(2, checkpoint_dir=str(tmp_path))
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    epochs = []
    monkeypatch.setattr(SingleRun, "train_epoch", lambda self, epoch: epochs.append(epoch))
    with pytest.raises(ValueError, match=f"{tmp_path / CHECKPOINT_NAME} already holds a run: pass resume=True "
                                         r"\(CLI --resume\) to continue it, or overwrite=True \(CLI --overwrite\)"):
        _train(2, checkpoint_dir=str(tmp_path))
    assert epochs == [] and (tmp_path / CHECKPOINT_NAME).read_bytes() == before  # refused before epoch 1
    monkeypatch.undo()
    _, again = _train(3, checkpoint_dir=str(tmp_path), overwrite=True, eta=5.0)
    assert load_checkpoint(tmp_path)["epoch"] == 3 and load_checkpoint(tmp_path)["config"]["eta"] == 5.0
    with pytest.raises(ValueError, match="pass one of them"):
        TrainConfig(checkpoint_dir=str(tmp_path), resume=True, overwrite=True)


def test_a_checkpoint_dir_naming_a_file_is_refused_before_training(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("mine")
    monkeypatch.setattr(SingleRun, "train_epoch", lambda *a: pytest.fail("trained"))
    for directory in (tmp_path / "file", tmp_path / "file" / "run"):
        with pytest.raises(ValueError, match=f"checkpoint_dir '{directory}': {tmp_path / 'file'} is a file, "
                                             "not a directory"):
            _train(2, checkpoint_dir=str(directory))
    assert (tmp_path / "file").read_text() == "mine"


def test_resuming_a_finished_run_returns_its_result_without_training(tmp_path, monkeypatch, caplog):
    model, result = _train(3, checkpoint_dir=str(tmp_path))
    monkeypatch.setattr(SingleRun, "train_epoch", lambda *a: pytest.fail("trained"))
    with caplog.at_level(logging.WARNING, logger="fairbinn"):
        resumed_model, resumed = _train(3, checkpoint_dir=str(tmp_path), resume=True)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / CHECKPOINT_NAME}: the run already finished (epoch 3 of 3); returning its result without training"]
    assert resumed.config == {**result.config, "resume": True}
    assert {**resumed.to_dict(), "config": None} == {**result.to_dict(), "config": None}  # history, epoch, metrics
    for (name, a), b in zip(model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="written with other settings: \\['eta'\\]"):  # settings still checked
        _train(3, checkpoint_dir=str(tmp_path), resume=True, eta=1.0)


def test_resuming_a_finished_stack_returns_its_results(tmp_path, monkeypatch):
    config = TrainConfig(**{**SETTINGS, "epochs": 3, "checkpoint_dir": str(tmp_path)})

    def run(**extra):
        models = []
        for seed in (0, 1):
            seed_everything(seed)
            models.append(build_mlp(6, (8,)))
        stack = stack_models(models)
        return stack, Trainer(config.replace(**extra)).fit(stack, TRAIN, VAL, TEST, etas=[1.0, 10.0], seeds=[0, 1])

    stack, results = run()
    monkeypatch.setattr(StackRun, "train_epoch", lambda *a: pytest.fail("trained"))
    again, resumed = run(resume=True)
    assert [{**r.to_dict(), "config": r.config["eta"]} for r in resumed] == [
        {**r.to_dict(), "config": r.config["eta"]} for r in results]
    assert all(torch.equal(a, b) for a, b in zip(stack.state_dict().values(), again.state_dict().values()))


# ---------------------------------------------------------------- saved models


@records_build(drop=("weights",))
def _tiny_builder(width: int, *, depth: int = 1, weights: str | None = None) -> nn.Module:
    return fairbinn.FairModel(nn.Linear(3, width), nn.Linear(width, 1), nn.Sequential(
        *[nn.Linear(width, width) for _ in range(depth)]))


def _saved(tmp_path, model=None):
    model = model if model is not None else build_mlp(4, (5,))
    save_model(model, tmp_path / "m")
    return tmp_path / "m", json.loads((tmp_path / "m" / "model.json").read_text())


def test_a_builder_of_ones_own_is_registered_by_importing_it(tmp_path):
    name = f"{__name__}:_tiny_builder"
    assert name in registered_builders() and "fairbinn.tabular.mlp:build_mlp" in registered_builders()
    model = _tiny_builder(4, depth=2, weights="ignored.pt")
    directory, spec = _saved(tmp_path, model)
    assert spec["builder"] == name and spec["kwargs"] == {"depth": 2, "weights": None}
    loaded = load_model(directory)
    x = torch.randn(5, 3)
    with torch.inference_mode():
        assert torch.equal(loaded(x), model.eval()(x))
    (directory / "model.json").write_text(json.dumps({**spec, "kwargs": {"depth": 2, "weights": "other.pt"}}))
    with pytest.raises(ValueError, match="model.json: .*_tiny_builder loads no weights here .*it must be null"):
        load_model(directory)


def test_load_model_never_imports_the_module_a_file_names(tmp_path, monkeypatch):
    created = tmp_path / "created"
    (tmp_path / "planted_builder.py").write_text(
        f"open({str(created)!r}, 'w').close()\ndef build(*a, **k):\n    raise AssertionError('called')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    directory, spec = _saved(tmp_path)
    (directory / "model.json").write_text(json.dumps({**spec, "builder": "planted_builder:build"}))
    with pytest.raises(ValueError, match=f"^{directory / 'model.json'}: 'planted_builder:build' is not a registered "
                                         r"fairbinn model builder \(registered: .*build_mlp"):
        load_model(directory)
    assert not created.exists() and "planted_builder" not in sys.modules


def test_a_crafted_model_pt_is_refused_without_running_it(tmp_path):
    directory, _ = _saved(tmp_path)
    created = tmp_path / "created"
    torch.save({"weight": _Payload(created)}, directory / "model.pt")
    with pytest.raises(ValueError, match=f"^{directory / 'model.pt'}: refused: .*nothing in it was run") as error:
        load_model(directory)
    _no_weights_only_advice(error)
    assert not created.exists()
    (directory / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=f"^{directory / 'model.pt'}: not a readable fairbinn model state: the file "
                                         r"is corrupt or truncated \(the file is empty\)"):
        load_model(directory)


def test_recorded_arguments_are_checked_against_the_builder(tmp_path):
    directory, spec = _saved(tmp_path)
    path = directory / "model.json"
    path.write_text(json.dumps({**spec, "kwargs": {**spec["kwargs"], "bogus": 1}}))
    with pytest.raises(ValueError, match=f"^{path}: fairbinn.tabular.mlp:build_mlp cannot build a model from its "
                                         "arguments: .*unexpected keyword argument 'bogus'"):
        load_model(directory)  # build_mlp takes **fairness_kwargs: its fairness layer refuses the name
    path.write_text(json.dumps({**spec, "kwargs": {"hidden_dims": [5]}}))
    with pytest.raises(ValueError, match=f"^{path}: the arguments do not fit fairbinn.tabular.mlp:build_mlp.*"
                                         "multiple values for argument 'hidden_dims'"):
        load_model(directory)
    path.write_text(json.dumps({**spec, "args": [4, [5], 6, 7, 8]}))
    with pytest.raises(ValueError, match="too many positional arguments"):
        load_model(directory)
    path.write_text(json.dumps({**spec, "args": "4"}))
    with pytest.raises(ValueError, match=f"^{path}: not a fairbinn model description"):
        load_model(directory)


def test_a_model_json_describing_other_sizes_is_refused_before_allocating(tmp_path):
    directory, spec = _saved(tmp_path)
    path = directory / "model.json"
    path.write_text(json.dumps({**spec, "args": [4, [1_000_000, 1_000_000]]}))  # 10^12 weights: built on meta only
    with pytest.raises(ValueError, match=f"^{path}: it describes a network \\(2000008000001 values\\) that does not "
                                         f"fit {directory / 'model.pt'}: .*of another shape \\(encoder.0.weight: "
                                         r"\(1000000, 4\) built, \(5, 4\) saved"):
        load_model(directory)
    path.write_text(json.dumps({**spec, "args": [4, [5, 5]]}))
    with pytest.raises(ValueError, match=r"\(91 values\) .*: 2 not in model.pt \(encoder.2.bias, encoder.2.weight\)$"):
        load_model(directory)


# ---------------------------------------------------------------- sweep rows

DATA = TabularDataset(name="synthetic", train=make_biased_split(120, 0), val=make_biased_split(60, 1, name="val"),
                      test=make_biased_split(60, 2, name="test"), feature_names=[f"x{i}" for i in range(6)],
                      group_names=["a", "b"], sensitive_attribute="group", label="y")
SWEEP = dict(strategies=["lagrangian"], etas=[1.0, 10.0], seeds=[0], epochs=2, batch_size=40, progress=False)


def test_sweep_rows_are_checked_against_their_configuration(tmp_path):
    whole = fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **SWEEP)
    (rows,) = (tmp_path / "lagrangian").glob("*/rows.json")
    saved = json.loads(rows.read_text())
    assert saved["key"] == rows.parent.name and not list(rows.parent.glob(".*.tmp"))
    again = fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **SWEEP)  # read back
    assert again.drop(columns="train_time_s").equals(whole.drop(columns="train_time_s"))
    for broken, problem in (
        ({**saved, "key": "0123456789abcdef"}, "not the rows of this configuration \\(its key '0123456789abcdef' "
                                               f"is not '{rows.parent.name}'"),
        ({k: v for k, v in saved.items() if k != "key"}, "its key None"),
        ({**saved, "extra": 1}, "expected the entries key, epochs, models and undefined"),
        ({**saved, "models": [{**saved["models"][0], "val_accuracy": {"x": 1}}]}, "models row 0 holds other than "
                                                                                  "plain values in val_accuracy"),
        ({**saved, "epochs": [{k: v for k, v in saved["epochs"][0].items() if k != "eta"}]}, "epochs row 0 lacks eta"),
        ({**saved, "epochs": [{**saved["epochs"][0], "eta": 3.0}]}, "epochs row 0 is of lagrangian eta=3.0 seed=0, "
                                                                    "not of these models"),
        ({**saved, "undefined": {"val": {"eo": 1}}}, "undefined must map each split"),
    ):
        rows.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=f"^{rows}: .*{problem}.*delete {rows} to train these models again"):
            fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **SWEEP)
    rows.write_text('{"key": ')
    with pytest.raises(ValueError, match=f"^{rows}: not valid JSON"):
        fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **SWEEP)
    os.remove(rows)  # the chunk's checkpoint is at its last epoch: resumed, its result returned, rows written again
    resumed = fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **SWEEP)
    assert resumed.drop(columns="train_time_s").equals(whole.drop(columns="train_time_s"))
