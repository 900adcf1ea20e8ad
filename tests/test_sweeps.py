import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import fairbinn
from fairbinn.tabular.preprocess import TabularDataset
from comparing import assert_histories_close, assert_smooth_close, is_smooth
from synthetic import make_biased_split

DATA = TabularDataset(
    name="synthetic",
    train=make_biased_split(300, 0, name="train"),
    val=make_biased_split(150, 1, name="val"),
    test=make_biased_split(150, 2, name="test"),
    feature_names=[f"x{i}" for i in range(6)],
    group_names=["a", "b"],
    sensitive_attribute="group",
    label="y",
)
SETTINGS = dict(epochs=3, batch_size=50, lr=1e-2, fairness_lr=1e-3, progress=False)


def test_sweep_rows_and_columns():
    table = fairbinn.sweep(DATA, ["bilevel", "erm"], [0.0, 30.0], [0, 1], rows="models", **SETTINGS)
    assert len(table) == 2 * 2 + 2  # ERM once per seed
    assert list(table.columns[:5]) == ["strategy", "eta", "seed", "epoch", "selection"]
    for split in ("val", "test"):
        for metric in ("accuracy", "auc", "dp", "eo"):
            assert f"{split}_{metric}" in table.columns
    assert table[table.strategy == "erm"]["eta"].tolist() == [0.0, 0.0]
    assert table[table.strategy == "bilevel"]["stack_size"].tolist() == [4] * 4
    assert (table["train_time_s"] > 0).all()
    assert table["epoch"].between(1, 3).all()


def test_stacked_sweep_equals_one_model_at_a_time_and_run_tabular():
    # a stack rounds differently from its models alone: every checkpoint is compared on the continuous
    # columns (losses, soft gaps), never on accuracy, AUC, a thresholded gap or the selected epoch
    stacked = fairbinn.sweep(DATA, ["lagrangian"], [0.0, 10.0, 100.0], [0, 3], **SETTINGS)
    alone = fairbinn.sweep(DATA, ["lagrangian"], [0.0, 10.0, 100.0], [0, 3], stack=False, **SETTINGS)
    assert alone["stack_size"].eq(1).all() and stacked["stack_size"].eq(6).all()
    columns = [c for c in stacked.columns if is_smooth(c)]
    assert {"train_bce", "train_fairness", "val_soft_dp", "val_soft_eo", "test_soft_dp", "test_soft_eo"} <= set(columns)
    pd.testing.assert_frame_equal(stacked[["eta", "seed", "epoch"]], alone[["eta", "seed", "epoch"]])
    pd.testing.assert_frame_equal(stacked[columns], alone[columns], atol=1e-5, rtol=0)
    one = fairbinn.run_tabular(DATA, strategy="lagrangian", eta=10.0, seed=3, record_test=True, **SETTINGS)
    rows = stacked[(stacked.eta == 10.0) & (stacked.seed == 3)]
    records = [{key: row[key] for key in record} for row, record in zip(rows.to_dict("records"), one.history)]
    assert_histories_close(records, one.history, atol=1e-5)
    # the test metrics run_tabular reports are those of the checkpoint it selected
    row = rows[rows.epoch == one.selected_epoch].iloc[0]
    assert_smooth_close({k: row[f"test_{k}"] for k in one.test}, one.test, atol=1e-5, what="test")


def test_epoch_rows_carry_the_epochs_training_losses():
    table = fairbinn.sweep(DATA, ["lagrangian", "stackelberg"], [10.0], [3], **SETTINGS)
    lagrangian = table[table.strategy == "lagrangian"]
    one = fairbinn.run_tabular(DATA, strategy="lagrangian", eta=10.0, seed=3, **SETTINGS)
    history = one.history_frame()
    np.testing.assert_allclose(lagrangian["train_bce"], history["train_bce"], atol=1e-5)
    np.testing.assert_allclose(lagrangian["train_fairness"], history["train_fairness"], atol=1e-6)
    assert (lagrangian["train_bce"] > 0).all() and (lagrangian["train_fairness"] >= 0).all()
    assert table[table.strategy == "stackelberg"]["train_hypergradient_norm"].gt(0).all()
    assert list(table.columns[-2:]) == ["train_time_s", "stack_size"]
    models = fairbinn.sweep(DATA, ["lagrangian"], [10.0], [3], rows="models", **SETTINGS)
    assert not any(c.startswith("train_") and c != "train_time_s" for c in models.columns)


def test_unstackable_networks_fall_back_with_a_warning():
    with pytest.warns(UserWarning, match="one at a time: dropout"):
        table = fairbinn.sweep(DATA, ["bilevel"], [1.0], [0, 1], model_kwargs={"dropout": 0.2}, rows="models",
                               **SETTINGS)
    assert table["stack_size"].tolist() == [1, 1]


def test_max_stack_splits_the_models():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = fairbinn.sweep(DATA, ["bilevel"], [0.0, 1.0, 2.0], [0], max_stack=2, rows="models", **SETTINGS)
    assert table["stack_size"].tolist() == [2, 2, 1]


@pytest.mark.parametrize("kwargs,message", [
    ({"strategies": ["fair"]}, "strategies must be"),
    ({"seeds": []}, "seeds must not be empty"),
    ({"etas": []}, "etas must not be empty"),
    ({"max_stack": 0}, "max_stack"),
    ({"data": "mnist"}, "unknown dataset 'mnist'"),
    ({"lr": -1.0}, "lr must be"),
])
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"data": DATA, **kwargs}
    data = arguments.pop("data")
    with pytest.raises(ValueError, match=message):
        fairbinn.sweep(data, **{**SETTINGS, **arguments})


def test_plot_and_reference_points(tmp_path):
    pytest.importorskip("matplotlib")
    table = fairbinn.sweep(DATA, ["bilevel", "lagrangian"], [0.0, 30.0], [0, 1], **SETTINGS)
    reference = tmp_path / "paper.csv"
    reference.write_text("label,accuracy,dp\npaper,0.8,0.05\n")
    figure = fairbinn.plot_fronts(table, reference=reference, title="synthetic")
    axis = figure.axes[0]
    assert axis.get_xlabel().startswith("test demographic parity")
    assert {t.get_text() for t in axis.texts} == {"paper"}
    written = fairbinn.plotting.save_figure(figure, tmp_path / "front.png")
    assert [p.name for p in written] == ["front.png", "front.svg"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in written[1].read_bytes()[:500]


def test_each_strategy_of_a_front_plot_has_its_own_colour():
    pytest.importorskip("matplotlib")
    from matplotlib.colors import to_hex
    table = fairbinn.sweep(DATA, ["lagrangian"], [0.0, 30.0], [0], **SETTINGS)
    names = ["bilevel", "lagrangian", "erm", "bilevel-paper"] + [f"variant-{i}" for i in range(10)]
    many = pd.concat([table.assign(strategy=name) for name in names], ignore_index=True)
    axis = fairbinn.plot_fronts(many, budgets=()).axes[0]
    colours = {c.get_label().split(":")[0]: to_hex(c.get_facecolor()[0], keep_alpha=False) for c in axis.collections}
    assert list(colours) == names and len(set(colours.values())) == len(names)
    assert colours["bilevel"] == to_hex("tab:blue") and colours["lagrangian"] == to_hex("tab:orange")


def test_reference_points_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("label,accuracy\npaper,0.8\n")
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['dp'\]"):
        fairbinn.plotting.read_reference_points(bad)
    bad.write_text("label,accuracy,dp\npaper,0.8,0.05\nother,high,0.1\n")
    with pytest.raises(ValueError, match="bad.csv: column 'accuracy' must hold numbers in \\[0, 1\\]; bad value on line 3"):
        fairbinn.plotting.read_reference_points(bad)
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        fairbinn.plotting.read_reference_points(tmp_path / "nothing.csv")


def test_graph_sweep_trains_one_model_at_a_time(data_dir):
    nba = fairbinn.load_nba(data_dir, test_as_val=False)
    table = fairbinn.sweep(nba, ["bilevel", "erm"], [0.0, 1000.0], [0], backbone="gcn", epochs=2,
                           progress=False, rows="models")
    assert table["strategy"].tolist() == ["bilevel", "bilevel", "erm"]
    assert table["stack_size"].eq(1).all()
    one = fairbinn.run_graph(nba, strategy="bilevel", eta=1000.0, seed=0, epochs=2, progress=False)
    assert table.loc[1, "test_accuracy"] == pytest.approx(one.test["accuracy"])
    assert table.loc[1, "test_dp"] == pytest.approx(one.test["dp"])


def test_training_curves_have_one_colour_per_run():
    pytest.importorskip("matplotlib")
    runs = [(strategy, fairbinn.run_tabular(DATA, strategy=strategy, **SETTINGS)) for strategy in ("erm", "bilevel")]
    figure = fairbinn.plotting.plot_history(runs)
    bce, fairness, accuracy, dp = figure.axes
    assert bce.get_title() == "training BCE" and dp.get_title() == "validation DP"
    # ERM has no fairness loss: that panel holds only the bilevel line (and its selected-epoch dot), in its colour
    assert {line.get_color() for line in fairness.lines} == {"C1"}
    assert [line.get_color() for line in accuracy.lines] == ["C0", "C0", "C1", "C1"]
    assert list(accuracy.lines[0].get_ydata()) == [r["val_accuracy"] for r in runs[0][1].history]


def test_every_checkpoint_is_a_row_with_its_own_test_metrics():
    epochs = fairbinn.sweep(DATA, ["bilevel", "erm"], [0.0, 30.0], [0, 1], **SETTINGS)
    models = fairbinn.sweep(DATA, ["bilevel", "erm"], [0.0, 30.0], [0, 1], rows="models", **SETTINGS)
    assert len(epochs) == (2 * 2 + 2) * 3 and list(epochs.columns[:5]) == ["strategy", "eta", "seed", "epoch",
                                                                           "selected"]
    assert all(list(part) == [1, 2, 3] for _, part in epochs.groupby(["strategy", "eta", "seed"])["epoch"])
    chosen = epochs[epochs["selected"]].reset_index(drop=True)
    intervals = [c for c in models.columns if c.startswith("test_") and c.endswith(("_lo", "_hi"))]
    metrics = [c for c in models.columns if c.startswith(("val_", "test_"))]
    pd.testing.assert_frame_equal(chosen[["strategy", "eta", "seed", "epoch", *metrics]],
                                  models[["strategy", "eta", "seed", "epoch", *metrics]])
    # every row carries exact 95% intervals on its test gaps, holding the observed gap
    gaps = ["dp", "eo", "eopp", "soft_dp", "soft_eo"]
    assert sorted(intervals) == sorted(f"test_{g}_{end}" for g in gaps for end in ("lo", "hi"))
    for gap in gaps:
        assert (epochs[f"test_{gap}_lo"] <= epochs[f"test_{gap}"]).all()
        assert (epochs[f"test_{gap}"] <= epochs[f"test_{gap}_hi"]).all()
    for gap in gaps:
        assert (models[f"test_{gap}_lo"] <= models[f"test_{gap}"]).all()
        assert (models[f"test_{gap}"] <= models[f"test_{gap}_hi"]).all()
    # a checkpoint's test columns are that epoch's: a run stopped there gives them (up to rounding, as the
    # sweep trained a stack: compared on the continuous columns)
    one = fairbinn.run_tabular(DATA, strategy="bilevel", eta=30.0, seed=1, selection_metric=None,
                               **{**SETTINGS, "epochs": 2})
    row = epochs[(epochs.strategy == "bilevel") & (epochs.eta == 30.0) & (epochs.seed == 1) & (epochs.epoch == 2)]
    assert_smooth_close({k: row[f"test_{k}"].item() for k in one.test}, one.test, atol=1e-5, what="test")
    assert_smooth_close({k: row[k].item() for k in one.history[-1]}, one.history[-1], atol=1e-5, what="epoch 2")
    later = epochs[(epochs.strategy == "bilevel") & (epochs.eta == 30.0) & (epochs.seed == 1) & (epochs.epoch == 3)]
    assert abs(later["test_soft_dp"].item() - one.test["soft_dp"]) > 1e-4  # epoch 3's would not pass


def test_automatic_etas_search_then_refine():
    table = fairbinn.sweep(DATA, ["lagrangian", "erm"], "auto", [0], **{**SETTINGS, "epochs": 5})
    lagrangian = table[table.strategy == "lagrangian"]
    assert lagrangian["eta"].nunique() == 16
    passes = lagrangian.groupby("search")["epoch"].max().to_dict()
    assert passes == {"coarse": 1, "refined": 5}  # the coarse pass trains a fifth of the epochs
    assert set(lagrangian[lagrangian.search == "coarse"]["eta"]) == set(fairbinn.search.EtaSearch().coarse)
    assert len(table[table.strategy == "erm"]) == 5 and table[table.strategy == "erm"]["search"].isna().all()
    models = fairbinn.sweep(DATA, ["lagrangian"], "auto", [0], rows="models",
                            search=fairbinn.search.EtaSearch(refined=2), **{**SETTINGS, "epochs": 5})
    assert len(models) == 10 and models["search"].tolist() == ["coarse"] * 8 + ["refined"] * 2
    with pytest.raises(ValueError, match="etas='auto' searches eta, and ERM has none"):
        fairbinn.sweep(DATA, ["erm"], "auto", **SETTINGS)
    with pytest.raises(ValueError, match="etas must be a list of numbers or 'auto', got 'many'"):
        fairbinn.sweep(DATA, ["lagrangian"], "many", **SETTINGS)


def _permute_test_columns(table, seed):
    shuffled = table.copy()
    order = np.random.default_rng(seed).permutation(len(table))
    for column in [c for c in table.columns if c.startswith("test_")]:
        shuffled[column] = table[column].to_numpy()[order]
    return shuffled


def test_no_choice_reads_the_test_columns():
    table = fairbinn.sweep(DATA, ["bilevel", "lagrangian"], [0.0, 3.0, 30.0], [0, 1], **SETTINGS)
    shuffled = _permute_test_columns(table, 0)
    assert not shuffled["test_accuracy"].equals(table["test_accuracy"])
    keys = ["strategy", "eta", "seed", "epoch"]
    front = fairbinn.core.pareto_front(table, accuracy="val_accuracy", unfairness="val_dp")
    assert front.index.equals(fairbinn.core.pareto_front(shuffled, accuracy="val_accuracy", unfairness="val_dp").index)
    for fairness in ("dp", "soft_dp"):
        chosen = fairbinn.accuracy_at_budgets(table, [0.01, 0.05, 0.2, 1.0], fairness=fairness)
        again = fairbinn.accuracy_at_budgets(shuffled, [0.01, 0.05, 0.2, 1.0], fairness=fairness)
        pd.testing.assert_frame_equal(chosen[["budget", "found", *keys]], again[["budget", "found", *keys]])
    pytest.importorskip("matplotlib")
    axis = fairbinn.plot_fronts(shuffled, budgets=[0.05, 1.0]).axes[0]
    # the dots are the rows on each seed's validation front, placed at their (shuffled) test metrics
    expected = pd.concat([fairbinn.core.pareto_front(part, accuracy="val_accuracy", unfairness="val_dp")
                          for _, part in shuffled[shuffled.strategy == "bilevel"].groupby("seed")])
    drawn = axis.collections[0].get_offsets()
    assert np.allclose(drawn, expected[["test_dp", "test_accuracy"]].to_numpy())


def test_choose_under_budget_takes_the_best_checkpoint_on_validation():
    choice = fairbinn.choose_under_budget(DATA, "lagrangian", 0.1, confidence=0, etas=[0.0, 3.0, 30.0], **SETTINGS)
    table = choice.table
    assert "test_accuracy" not in table.columns  # candidates are compared on validation only
    meeting = table[table["val_dp"] <= 0.1]
    best = meeting.sort_values(["val_accuracy", "val_dp"], ascending=[False, True], kind="stable").iloc[0]
    assert choice.budget_met and (choice.eta, choice.epoch) == (best["eta"], best["epoch"])
    assert choice.result.val["accuracy"] == pytest.approx(best["val_accuracy"])
    # the model holds the chosen checkpoint: its test metrics are the ones reported (the stack evaluated them,
    # rounding differently from the model alone: compared on the continuous ones)
    reevaluated = fairbinn.Trainer().evaluate(choice.result.model, DATA.test)
    assert_smooth_close(reevaluated, choice.result.test, atol=1e-6, what="test")
    assert [r["epoch"] for r in choice.result.history] == [1, 2, 3]
    with pytest.warns(UserWarning, match=r"lagrangian: no checkpoint met the validation soft_dp budget 1e-09"):
        unmet = fairbinn.choose_under_budget(DATA, "lagrangian", 1e-9, budget_metric="soft_dp", confidence=0,
                                             etas=[0.0, 3.0], **SETTINGS)
    assert not unmet.budget_met and unmet.result.val["soft_dp"] == pytest.approx(unmet.table["val_soft_dp"].min())
    erm = fairbinn.choose_under_budget(DATA, "erm", 0.5, **SETTINGS)
    assert erm.eta == 0.0 and erm.table["eta"].eq(0.0).all()


def test_a_gap_the_data_cannot_measure_is_nan_with_its_reason():
    positives_only = dataclasses.replace(DATA.test, y=torch.ones_like(DATA.test.y))
    data = dataclasses.replace(DATA, name="one label", test=positives_only)
    table = fairbinn.sweep(data, ["lagrangian"], [1.0], **SETTINGS)
    assert table["test_eo"].isna().all() and table["test_dp"].notna().all()
    reason = "groups 'a' and 'b' have no negative labels"  # the dataset's group names
    assert table.attrs["undefined"] == {"test": {"eo": reason, "soft_eo": reason}}


def test_an_interrupted_sweep_resumes_to_the_uninterrupted_table(tmp_path, monkeypatch):
    from fairbinn.core import checkpoint

    arguments = dict(strategies=["bilevel", "lagrangian"], etas=[0.0, 10.0], seeds=[0, 1], **SETTINGS)
    whole = fairbinn.sweep(DATA, **arguments)
    save = checkpoint.RunCheckpoints.save

    def killed_after_epoch_2(self, epoch, *args, **kwargs):  # the lagrangian stack dies after epoch 2
        save(self, epoch, *args, **kwargs)
        if epoch == 2 and self.config.strategy == "lagrangian":
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.RunCheckpoints, "save", killed_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **arguments)
    assert [p.name for p in (tmp_path / "bilevel").glob("*/rows.json")] == ["rows.json"]
    assert not list((tmp_path / "lagrangian").glob("*/rows.json"))
    monkeypatch.setattr(checkpoint.RunCheckpoints, "save", save)
    epochs = []
    monkeypatch.setattr(fairbinn.sweeps.Trainer, "fit", _counting(fairbinn.sweeps.Trainer.fit, epochs))
    resumed = fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **arguments)
    assert epochs == ["lagrangian"]  # the finished bilevel stack was read, not trained again
    pd.testing.assert_frame_equal(resumed.drop(columns="train_time_s"), whole.drop(columns="train_time_s"))
    again = fairbinn.sweep(DATA, checkpoint_dir=tmp_path, **arguments)  # everything read back
    assert epochs == ["lagrangian"]
    pd.testing.assert_frame_equal(again.drop(columns="train_time_s"), whole.drop(columns="train_time_s"))


def _counting(fit, calls):
    def counted(self, *args, **kwargs):
        calls.append(self.config.strategy)
        return fit(self, *args, **kwargs)
    return counted


@pytest.mark.parametrize("confidence", [0.95, 0])
def test_the_budget_path_and_a_fixed_eta_run_train_the_same_model(confidence):
    """choose_under_budget trains its etas in the loop and with the optimiser of a single run: the row it reports
    for eta E is what Trainer.fit with eta E trains, up to the rounding of a stack (continuous quantities)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        choice = fairbinn.choose_under_budget(DATA, "lagrangian", 0.3, confidence=confidence, etas=[3.0, 30.0],
                                              **SETTINGS)
    eta = choice.eta
    config = fairbinn.core.config.TrainConfig(strategy="lagrangian", eta=eta, seed=0, selection_metric=None,
                                              **SETTINGS)
    fairbinn.core.seed_everything(0)
    model = fairbinn.benchmark.get_benchmark(DATA).build_model(DATA)
    alone = fairbinn.Trainer(config).fit(model, DATA.train, DATA.val, DATA.test)
    rows = choice.table[choice.table["eta"] == eta].sort_values("epoch")
    for record, (_, row) in zip(alone.history, rows.iterrows()):
        for key in ("train_bce", "train_fairness", "val_soft_dp", "val_soft_eo"):
            assert row[key] == pytest.approx(record[key], abs=1e-5), (key, record["epoch"])
    # the chosen checkpoint's parameters are the fixed-eta run's at that epoch, up to rounding
    config = config.replace(epochs=choice.epoch)
    fairbinn.core.seed_everything(0)
    model = fairbinn.benchmark.get_benchmark(DATA).build_model(DATA)
    fairbinn.Trainer(config).fit(model, DATA.train, DATA.val, DATA.test)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(choice.result.model.state_dict()[name], value, atol=1e-5, rtol=1e-4)
