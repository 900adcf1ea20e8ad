"""``fairbinn train`` / ``sweep`` lose no finished work: resumable multi-mode runs, checkpoints that are not
written over by accident, every setting and output path checked before the first epoch, clear messages."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
import torch

import fairbinn
from fairbinn.cli import main
from fairbinn.core.checkpoint import load_checkpoint
from fairbinn.core.runs import SingleRun
from fairbinn.core.trainer import Trainer
from fairbinn.tabular.preprocess import TabularEncoder, seeded_partition


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """400 rows: two numeric columns, a categorical one, a group column g (a / b) and a label y that depends
    on the group."""
    rng = np.random.default_rng(0)
    n = 400
    g = rng.integers(0, 2, n)
    x1, x2 = rng.normal(size=n) + g, rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x2 + g - 0.5)))).astype(int)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "color": rng.choice(["red", "green", "blue"], n),
                          "g": np.where(g == 1, "b", "a"), "y": y})
    path = tmp_path_factory.mktemp("table") / "table.csv"
    frame.to_csv(path, index=False)
    return path


def train(table, *args):
    return main(["train", "--csv", str(table), "--label", "y", "--sensitive", "g", "--batch-size", "50",
                 "--no-progress", *args])


def refused(capsys, *args):
    """The command's exit code must be 2; returns its error message."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def no_training(monkeypatch):
    """Any training fails the test: the error must come before the first epoch."""
    def fit(*args, **kwargs):
        raise AssertionError("a model started training")

    monkeypatch.setattr(Trainer, "fit", fit)


@pytest.fixture
def epochs_trained(monkeypatch):
    """(strategy, epoch) of every epoch trained from now on."""
    trained, original = [], SingleRun.train_epoch

    def counting(self, epoch):
        trained.append((self.strategy.name, epoch))
        return original(self, epoch)

    monkeypatch.setattr(SingleRun, "train_epoch", counting)
    return trained


def _reported(path):
    """Per strategy: the selected epoch, val and test metrics, and the history without timings."""
    runs = json.loads(path.read_text())["runs"]
    return {run["config"]["strategy"]: (run["selected_epoch"], run["val"], run["test"],
                                        [{k: v for k, v in row.items() if "time" not in k and "second" not in k}
                                         for row in run["history"]])
            for run in runs}


@pytest.mark.parametrize("killed_in", [2, 1])
def test_a_killed_multi_mode_run_resumes_each_mode(table, tmp_path, caplog, monkeypatch, epochs_trained, killed_in):
    checkpoints = tmp_path / "ckpt"
    common = ["--mode", "erm", "bilevel", "--eta", "5", "--epochs", "3", "--checkpoint-dir", str(checkpoints)]
    with monkeypatch.context() as patch:  # the process dies in bilevel's epoch `killed_in`, ERM done
        original = SingleRun.train_epoch

        def dying(self, epoch):
            if self.strategy.name == "bilevel" and epoch == killed_in:
                raise KeyboardInterrupt
            return original(self, epoch)

        patch.setattr(SingleRun, "train_epoch", dying)
        with pytest.raises(KeyboardInterrupt):
            train(table, *common)
    assert load_checkpoint(checkpoints / "erm")["epoch"] == 3
    bilevel_saved = killed_in - 1
    assert (checkpoints / "bilevel" / "checkpoint.pt").is_file() == (bilevel_saved > 0)
    caplog.clear()

    epochs_trained.clear()
    assert train(table, *common, "--resume", "--output", str(tmp_path / "resumed.json")) == 0
    # ERM is reported from its finished checkpoint; bilevel continues (or, without a checkpoint, starts)
    assert epochs_trained == [("bilevel", epoch) for epoch in range(bilevel_saved + 1, 4)]
    said = caplog.text
    assert (f"bilevel: no checkpoint in {checkpoints / 'bilevel'} yet; --resume trains it from the start"
            in said) == (bilevel_saved == 0)
    assert "erm/checkpoint.pt: the run already finished (epoch 3 of 3)" in said
    assert load_checkpoint(checkpoints / "bilevel")["epoch"] == 3

    assert train(table, "--mode", "erm", "bilevel", "--eta", "5", "--epochs", "3",
                 "--output", str(tmp_path / "whole.json")) == 0
    assert _reported(tmp_path / "resumed.json") == _reported(tmp_path / "whole.json")


def test_existing_checkpoints_are_refused_before_any_mode_trains(table, tmp_path, capsys, monkeypatch):
    checkpoints = tmp_path / "ckpt"
    assert train(table, "--mode", "erm", "--epochs", "1", "--checkpoint-dir", str(checkpoints)) == 0
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "fit", lambda *a, **k: pytest.fail("a model started training"))
        base = ["train", "--csv", str(table), "--label", "y", "--sensitive", "g", "--no-progress", "--epochs", "1"]
        # bilevel comes first and has no checkpoint: it must not train before erm's is refused
        err = refused(capsys, *base, "--mode", "bilevel", "erm", "--checkpoint-dir", str(checkpoints))
        assert (f"--checkpoint-dir {checkpoints} already holds checkpoints: {checkpoints / 'erm' / 'checkpoint.pt'}; "
                "give --resume to continue them, or --overwrite to train from the start and write over them") in err
        assert not (checkpoints / "bilevel").exists()
        err = refused(capsys, *base, "--mode", "erm", "--checkpoint-dir", str(checkpoints), "--resume", "--overwrite")
        assert "--resume continues the checkpoints in --checkpoint-dir and --overwrite writes over them" in err
        for flag in (["--overwrite"], ["--resume"], ["--checkpoint-every", "2"]):
            assert f"{flag[0]} needs --checkpoint-dir" in refused(capsys, *base, *flag)
    assert load_checkpoint(checkpoints / "erm")["epoch"] == 1  # untouched


def test_overwrite_trains_again_in_place(table, tmp_path, epochs_trained):
    checkpoints = tmp_path / "ckpt"
    assert train(table, "--mode", "erm", "--epochs", "1", "--checkpoint-dir", str(checkpoints)) == 0
    epochs_trained.clear()
    assert train(table, "--mode", "erm", "--epochs", "2", "--lr", "0.01", "--checkpoint-dir", str(checkpoints),
                 "--overwrite") == 0
    assert epochs_trained == [("erm", 1), ("erm", 2)]
    state = load_checkpoint(checkpoints / "erm")
    assert state["epoch"] == 2 and state["config"]["lr"] == 0.01


@pytest.mark.parametrize("args, message", [
    # ERM would train first; the stackelberg configuration is refused before it does
    (["--mode", "erm", "stackelberg", "--order", "simultaneous"],
     "a stackelberg leader anticipates the follower's response, so the players step in turn"),
    (["--mode", "erm", "bilevel", "--order", "simultaneous", "--separate-batches"],
     "it cannot be combined with separate_batches=True"),
    (["--mode", "erm", "stackelberg", "--unroll-steps", "0"], "unroll_steps must be an integer >= 1, got 0"),
])
def test_every_mode_is_checked_before_the_first_trains(table, capsys, no_training, args, message):
    err = refused(capsys, "train", "--csv", str(table), "--label", "y", "--sensitive", "g", "--no-progress", *args)
    assert message in err


@pytest.mark.parametrize("command, flag, target, message", [
    ("train", "--output", "folder", "--output {folder} is a directory; give a file name"),
    ("train", "--output", "file/run.json", "--output {file}/run.json: {file} is a file, not a directory"),
    ("train", "--plot", "plots/curves", "--plot {plots}/curves.png is a directory; give a file name"),
    ("train", "--plot", "file/curves.svg", "--plot {file}/curves.png: {file} is a file, not a directory"),
    ("train", "--save", "file", "--save {file} is a file, not a directory"),
    ("train", "--save", "file/models", "--save {file}/models: {file} is a file, not a directory"),
    ("train", "--checkpoint-dir", "file", "--checkpoint-dir {file} is a file, not a directory"),
    ("train", "--checkpoint-dir", "ckpt", "--checkpoint-dir {ckpt}/erm is a file, not a directory"),
    ("sweep", "--table", "folder", "--table {folder} is a directory; give a file name"),
    ("sweep", "--plot", "file/front", "--plot {file}/front.png: {file} is a file, not a directory"),
])
def test_outputs_that_cannot_be_written_are_refused_before_training(table, tmp_path, capsys, no_training, command,
                                                                     flag, target, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "plots" / "curves.png").mkdir(parents=True)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "erm").write_text("x")  # where erm's checkpoints would go
    places = {name: tmp_path / name for name in ("folder", "file", "plots", "ckpt")}
    extra = ["--etas", "1"] if command == "sweep" else []
    err = refused(capsys, command, "--csv", str(table), "--label", "y", "--sensitive", "g", "--no-progress",
                  "--mode", "erm", "lagrangian", "--epochs", "1", *extra, flag, str(tmp_path / target))
    assert message.format(**places) in err


def test_an_output_folder_without_write_permission_is_refused(table, tmp_path, capsys, monkeypatch, no_training):
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access  # the folder is read-only for this process (as root, chmod would not stop it)
    monkeypatch.setattr(os, "access", lambda path, mode: access(path, mode) and os.fspath(path) != str(locked))
    err = refused(capsys, "train", "--csv", str(table), "--label", "y", "--sensitive", "g", "--no-progress",
                  "--output", str(locked / "out" / "run.json"))
    assert f"--output {locked / 'out' / 'run.json'}: no permission to write in {locked}" in err


@pytest.mark.parametrize("args, message", [
    (["--budget", "1.5"], "--budget bounds a gap between groups' rates, so it must be in (0, 1]; got 1.5"),
    (["--budget", "-0.1"], "--budget bounds a gap between groups' rates, so it must be in (0, 1]; got -0.1"),
    (["--budget", "nan"], "--budget bounds a gap between groups' rates, so it must be in (0, 1]; got nan"),
    (["--mode", "lagrangian", "--paper-game", "--hypergradient", "implicit"],
     "--hypergradient does not apply to --mode lagrangian; it is for stackelberg"),
    (["--mode", "lagrangian", "--paper-game"], "--paper-game does not apply to --mode lagrangian; it is for bilevel "
                                               "and stackelberg"),
    (["--mode", "erm", "lagrangian", "--fairness-lr", "1e-4"],
     "--fairness-lr does not apply to --mode erm lagrangian; it is for bilevel and stackelberg"),
    (["--mode", "erm", "--eta", "5"], "--eta does not apply to --mode erm; it is for lagrangian, bilevel and "
                                      "stackelberg"),
    (["--mode", "erm", "--surrogate", "rate"], "--surrogate does not apply to --mode erm; it is for lagrangian"),
    (["--mode", "bilevel", "lagrangian", "--cg-iters", "3"],
     "--cg-iters does not apply to --mode bilevel lagrangian; it is for stackelberg"),
    (["--mode", "lagrangian", "--separate-batches"], "--separate-batches does not apply to --mode lagrangian"),
    (["--mode", "erm", "--order", "leader-first"], "--order does not apply to --mode erm; it is for bilevel"),
    (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
])
def test_clear_messages_for_values_and_flags_that_do_not_apply(table, capsys, no_training, args, message):
    err = refused(capsys, "train", "--csv", str(table), "--label", "y", "--sensitive", "g", "--no-progress", *args)
    assert message in err


def test_a_flag_is_accepted_when_one_of_the_modes_reads_it(table, tmp_path):
    out = tmp_path / "run.json"
    assert train(table, "--mode", "lagrangian", "stackelberg", "--hypergradient", "implicit", "--cg-iters", "2",
                 "--eta", "1", "--epochs", "1", "--output", str(out)) == 0
    configs = {run["config"]["strategy"]: run["config"] for run in json.loads(out.read_text())["runs"]}
    assert configs["stackelberg"]["hypergradient"] == "implicit" and configs["stackelberg"]["cg_iters"] == 2
    assert configs["lagrangian"]["hypergradient"] == "unrolled"


def test_csv_directory_and_sweep_flags(tmp_path, capsys, no_training):
    err = refused(capsys, "train", "--csv", str(tmp_path), "--label", "y", "--sensitive", "g", "--no-progress")
    assert f"--csv {tmp_path} is a directory, not a CSV file" in err
    sweep = ["sweep", "--csv", str(tmp_path / "t.csv"), "--label", "y", "--sensitive", "g", "--no-progress"]
    assert "--seeds must be a non-negative integer, got -2" in refused(capsys, *sweep, "--seeds", "0", "-2")
    assert "fairbinn sweep writes its results with --table FILE.csv; --output is for train" in refused(
        capsys, *sweep, "--output", str(tmp_path / "x.json"))
    assert "--overwrite are for train" in refused(capsys, *sweep, "--overwrite")
    assert "--reference adds points to the plot; give --plot PATH too" in refused(
        capsys, *sweep, "--reference", str(tmp_path / "points.csv"))


def test_a_failing_plot_keeps_the_saved_models_and_json(table, tmp_path, capsys, monkeypatch):
    import fairbinn.plotting

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(fairbinn.plotting, "plot_history", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        train(table, "--mode", "erm", "--epochs", "1", "--save", str(tmp_path / "models"),
              "--output", str(tmp_path / "run.json"), "--plot", str(tmp_path / "curves"))
    assert json.loads((tmp_path / "run.json").read_text())["runs"][0]["config"]["strategy"] == "erm"
    assert (tmp_path / "models" / "erm" / "model.pt").is_file()


def test_a_saved_csv_model_scores_raw_rows(table, tmp_path, capsys):
    assert train(table, "--mode", "lagrangian", "--eta", "1", "--epochs", "1", "--save", str(tmp_path / "m")) == 0
    saved = fairbinn.read_saved(tmp_path / "m" / "lagrangian")
    encoder = TabularEncoder.from_dict(saved["model"]["info"]["encoder"])
    model = fairbinn.load_model(tmp_path / "m" / "lagrangian")
    # the raw test rows of the table (load_csv's split with seed 0) encode to the test features the model saw
    frame = pd.read_csv(table)
    test_rows = frame.iloc[seeded_partition(len(frame), [0.2, 0.2], 0)[0]]
    data = fairbinn.load_csv(table, "y", "g", seed=0)
    features = encoder.transform(test_rows.drop(columns="y"))
    np.testing.assert_array_equal(features, data.test.x.numpy())
    with torch.no_grad():
        scores = torch.sigmoid(model(torch.from_numpy(features)))
        expected = torch.sigmoid(model(data.test.x))
    assert scores.shape == (len(test_rows),)
    torch.testing.assert_close(scores, expected)


def test_load_model_scores_raw_rows_with_its_encoder(table, tmp_path):
    assert train(table, "--mode", "erm", "--epochs", "1", "--save", str(tmp_path / "m")) == 0
    model = fairbinn.load_model(tmp_path / "m" / "erm")
    assert isinstance(model.table_encoder, TabularEncoder)
    frame = pd.read_csv(table)
    test_rows = frame.iloc[seeded_partition(len(frame), [0.2, 0.2], 0)[0]]
    data = fairbinn.load_csv(table, "y", "g", seed=0)
    with torch.no_grad():
        expected = torch.sigmoid(model(data.test.x)).double().numpy()
    np.testing.assert_allclose(fairbinn.score_frame(model, test_rows), expected, rtol=0, atol=1e-12)
    # the group ids of raw rows follow the saved group names
    groups = model.table_encoder.transform_groups(test_rows)
    assert [model.table_encoder.group_names_[g] for g in groups] == [data.group_names[g] for g in data.test.s.tolist()]
    with pytest.raises(ValueError, match="carries no table encoder"):
        del model.table_encoder
        fairbinn.score_frame(model, test_rows)


def test_the_table_marks_a_budget_met_by_one_class():
    from types import SimpleNamespace

    from fairbinn.cli import results_table

    def result(constant):
        metrics = {"accuracy": 0.6, "dp": 0.0}
        return SimpleNamespace(test=metrics, val=metrics, budget_met=True, selected_epoch=3, undefined={},
                               constant_prediction=constant)

    table = results_table([("erm", result(0)), ("lagrangian (eta=1)", result(None))], "dp")
    lines = table.splitlines()
    assert " yes*  " in lines[2] and " yes  " in lines[3] and "yes*" not in lines[3]
    assert lines[-1] == "*: met by predicting one class for every validation row: erm (class 0)"


@pytest.mark.parametrize("args,message", [
    (["--budget", "0.1", "--confidence", "1"], r"--confidence is a probability in \[0, 1\)"),
    (["--budget", "0.1", "--confidence", "-0.5"], r"--confidence is a probability in \[0, 1\)"),
    (["--budget", "0.1", "--confidence", "nan"], r"--confidence is a probability in \[0, 1\)"),
    (["--confidence", "0.9"], "--confidence certifies a fairness budget; give --budget B too"),
])
def test_bad_confidence_is_refused_before_training(table, capsys, args, message):
    with pytest.raises(SystemExit):
        train(table, "--mode", "lagrangian", "--eta", "1", "--epochs", "1", *args)
    assert re.search(message, capsys.readouterr().err)


def test_a_certified_budget_is_reported_in_the_table_and_the_json(table, tmp_path, capsys):
    with pytest.warns(UserWarning, match="cannot certify the dp budget 0.3"):  # 80 validation rows
        assert train(table, "--mode", "lagrangian", "--eta", "1", "--epochs", "2", "--budget", "0.3",
                     "--output", str(tmp_path / "run.json")) == 0
    out = capsys.readouterr().out
    assert "certified to have a population dp <= 0.3 at 95% confidence" in out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert "val bound" in header and "certified" in header
    run = json.loads((tmp_path / "run.json").read_text())["runs"][0]
    certificate = run["certificate"]
    assert certificate["confidence"] == 0.95 and certificate["metric"] == "dp" and certificate["budget"] == 0.3
    assert isinstance(certificate["certified"], bool) and certificate["upper_bound"] >= run["val"]["dp"]
    assert set(run["test_intervals"]) == {"dp", "eo", "eopp", "soft_dp", "soft_eo"}
    lo, hi = run["test_intervals"]["dp"]
    assert lo <= run["test"]["dp"] <= hi  # the exact interval holds the observed gap
    assert "test gaps, 95% intervals" in out
    # --confidence 0: the point-estimate rule, no certificate
    assert train(table, "--mode", "lagrangian", "--eta", "1", "--epochs", "2", "--budget", "0.3",
                 "--confidence", "0", "--output", str(tmp_path / "point.json")) == 0
    assert json.loads((tmp_path / "point.json").read_text())["runs"][0]["certificate"] is None
    assert "val bound" not in capsys.readouterr().out


def test_a_sweep_with_a_budget_reports_certified_choices(table, capsys):
    assert main(["sweep", "--csv", str(table), "--label", "y", "--sensitive", "g", "--batch-size", "50",
                 "--no-progress", "--mode", "lagrangian", "--etas", "1", "10", "--epochs", "2",
                 "--budget", "0.5", "--budgets", "0.5", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "whose dp is certified (95% confidence) to meet the budget" in out
    assert main(["sweep", "--csv", str(table), "--label", "y", "--sensitive", "g", "--batch-size", "50",
                 "--no-progress", "--mode", "lagrangian", "--etas", "1", "--epochs", "2",
                 "--budget", "0.5", "--confidence", "0", "--budgets", "0.5"]) == 0
    assert "whose validation dp meets the budget" in capsys.readouterr().out
