import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from fairbinn import Trainer, build_mlp
from fairbinn.core import seed_everything
from fairbinn.core.checkpoint import CHECKPOINT_NAME, load_checkpoint
from synthetic import make_biased_split

TESTS = Path(__file__).resolve().parents[1]
SETTINGS = dict(strategy="bilevel", eta=10.0, batch_size=10, lr=1e-2, fairness_lr=1e-3, lr_decay=0.95,
                progress=False, seed=3)


def _data():
    return make_biased_split(600, 0), make_biased_split(200, 1, name="val")


def _train(epochs, **extra):
    train, val = _data()
    seed_everything(3)
    model = build_mlp(6, (16, 16), dropout=0.1)  # dropout: the random generators must be restored too
    result = Trainer(epochs=epochs, **SETTINGS, **extra).fit(model, train, val)
    return model, result


def _assert_same(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_resume_ends_exactly_like_an_uninterrupted_run(tmp_path):
    whole, whole_result = _train(6)
    _train(3, checkpoint_dir=str(tmp_path))
    assert load_checkpoint(tmp_path)["epoch"] == 3
    resumed, resumed_result = _train(6, checkpoint_dir=str(tmp_path), resume=True)
    _assert_same(whole, resumed)
    assert resumed_result.history == [
        {**r, "train_time_s": resumed_result.history[i]["train_time_s"]} for i, r in enumerate(whole_result.history)
    ]
    assert resumed_result.selected_epoch == whole_result.selected_epoch


CHILD = """
import sys
sys.path.insert(0, {tests!r})
from core.test_checkpoint import _train
_train(24, checkpoint_dir={directory!r})
"""


def test_a_killed_run_resumes_to_the_same_parameters(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=str(TESTS), directory=str(tmp_path))],
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    checkpoint, deadline = tmp_path / CHECKPOINT_NAME, time.monotonic() + 120
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if checkpoint.exists() and load_checkpoint(tmp_path)["epoch"] >= 3:
                break
            time.sleep(0.01)
        assert child.poll() is None, "the child finished before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
    killed_at = load_checkpoint(tmp_path)["epoch"]
    assert 3 <= killed_at < 24
    assert not [p.name for p in tmp_path.iterdir() if p.name != CHECKPOINT_NAME and not p.name.endswith(".tmp")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the child trained on one thread: the same rounding
    try:
        resumed, _ = _train(24, checkpoint_dir=str(tmp_path), resume=True)
        whole, _ = _train(24)
    finally:
        torch.set_num_threads(threads)
    _assert_same(whole, resumed)


class _Poisoned(nn.Linear):
    poisoned = False

    def forward(self, x):
        out = super().forward(x)
        return out * float("nan") if self.poisoned else out


def test_divergence_names_epoch_step_and_last_checkpoint(tmp_path):
    train, val = _data()
    seed_everything(0)
    model = build_mlp(6, (8,))
    model.head[-1] = _Poisoned(8, 1)
    Trainer(epochs=2, checkpoint_dir=str(tmp_path), **SETTINGS).fit(model, train, val)
    model.head[-1].poisoned = True
    with pytest.raises(FloatingPointError, match=r"diverged in epoch 3, step 1 of 60: non-finite train_bce.*"
                                                 r"last good checkpoint is .*checkpoint.pt \(epoch 2\)"):
        Trainer(epochs=4, checkpoint_dir=str(tmp_path), resume=True, **SETTINGS).fit(model, train, val)
    assert load_checkpoint(tmp_path)["epoch"] == 2  # nothing written after the bad step
    with pytest.raises(FloatingPointError, match="no checkpoint was written"):
        Trainer(epochs=4, **SETTINGS).fit(model, train, val)


def test_resume_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from: .*checkpoint.pt does not exist"):
        _train(2, checkpoint_dir=str(tmp_path), resume=True)
    _train(2, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"written with other settings: \['eta'\]"):
        train, val = _data()
        Trainer(epochs=4, checkpoint_dir=str(tmp_path), resume=True, **{**SETTINGS, "eta": 5.0}).fit(
            build_mlp(6, (16, 16), dropout=0.1), train, val)
    with pytest.raises(ValueError, match="is at epoch 2, past the 1 epochs of this run"):
        _train(1, checkpoint_dir=str(tmp_path), resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        Trainer(resume=True)
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable fairbinn checkpoint"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("budget", [
    dict(fairness_budget=0.05, budget_metric="soft_dp", confidence=0),  # the point-estimate rule, never met
    dict(fairness_budget=0.3),  # certified: some epochs pass, and the sequence stops at a later failing one
], ids=["point-estimate", "certified"])
def test_resume_keeps_the_budget_choice(tmp_path, budget):
    whole, whole_result = _train(6, **budget)
    _train(3, checkpoint_dir=str(tmp_path), **budget)
    resumed, resumed_result = _train(6, checkpoint_dir=str(tmp_path), resume=True, **budget)
    _assert_same(whole, resumed)  # both hold the selected epoch's parameters
    assert (resumed_result.selected_epoch, resumed_result.budget_met) == (whole_result.selected_epoch,
                                                                          whole_result.budget_met)
    assert resumed_result.val == whole_result.val
    assert resumed_result.certificate == whole_result.certificate
    if "confidence" not in budget:
        assert whole_result.certificate["certified"] is True
