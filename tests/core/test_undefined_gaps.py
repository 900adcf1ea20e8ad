"""Undefined fairness gaps: never a number, never chosen on; budgets met by a constant classifier are flagged."""

import dataclasses
import json
import math
import warnings

import numpy as np
import pytest
import torch

import fairbinn
import fairbinn.sweeps
from fairbinn import Trainer, build_mlp
from fairbinn.core import Split
from fairbinn.core import metrics as fm
from fairbinn.core.saving import json_ready
from fairbinn.core.selection import EpochSelector
from fairbinn.core.runs import SingleRun, StackRun
from fairbinn.core.stacked import stack_models
from fairbinn.core.trainer import TrainConfig
from fairbinn.tabular.preprocess import TabularDataset
from synthetic import make_biased_split

FAST = dict(epochs=1, batch_size=50, progress=False, lr=1e-3, fairness_lr=1e-3)
NAMES = ["Female", "Male"]


# --- metrics: hand-computed small cases -------------------------------------------------------------------------


def test_a_group_without_positives_leaves_the_tpr_gaps_undefined_and_names_it():
    y = [1, 0, 1, 0, 0, 0]  # group 1 ("Male") has no positive label
    s = [0, 0, 0, 1, 1, 1]
    score = [0.9, 0.2, 0.4, 0.7, 0.1, 0.3]  # predictions 1 0 0 1 0 0
    report = fm.binary_fairness_report(y, score, sensitive_features=s, groups=NAMES)
    # selection rates 1/3 and 1/3; defined
    assert report["dp"] == pytest.approx(0.0) and report["soft_dp"] == pytest.approx(0.5 - 1.1 / 3)
    assert np.isnan(report["eopp"]) and np.isnan(report["eo"]) and np.isnan(report["soft_eo"])
    assert fm.undefined_gaps(y, sensitive_features=s, groups=NAMES) == {
        "eo": "group 'Male' has no positive labels",
        "eopp": "group 'Male' has no positive labels",
        "soft_eo": "group 'Male' has no positive labels",
    }
    # fairlearn's value is unchanged: Male's TPR counts as 0, Female's is 1/2
    assert fm.equal_opportunity_difference(y, [1, 0, 0, 1, 0, 0], sensitive_features=s) == pytest.approx(0.5)
    assert fm.equalized_odds_difference(y, [1, 0, 0, 1, 0, 0], sensitive_features=s) == pytest.approx(0.5)
    # FPRs: Female 0/1, Male 1/3 -> the FPR part is 1/3, the TPR part 1/2
    frame = fm.group_metrics(y, score, sensitive_features=s)
    assert frame["true_positive_rate"].tolist()[0] == 0.5 and np.isnan(frame["true_positive_rate"].tolist()[1])


def test_a_group_without_negatives_leaves_eo_undefined_but_eopp_defined():
    y = [1, 1, 1, 0, 1, 0]  # group 0 has positives only: its FPR is undefined
    s = [0, 0, 0, 1, 1, 1]
    score = [0.9, 0.8, 0.2, 0.7, 0.6, 0.1]  # predictions 1 1 0 1 1 0
    report = fm.binary_fairness_report(y, score, sensitive_features=s, groups=NAMES)
    assert report["eopp"] == pytest.approx(1 - 2 / 3)  # TPR Male 1/1, Female 2/3
    assert np.isnan(report["eo"]) and np.isnan(report["soft_eo"])
    assert fm.undefined_gaps(y, sensitive_features=s, groups=NAMES) == {
        "eo": "group 'Female' has no negative labels", "soft_eo": "group 'Female' has no negative labels"}
    # fairlearn: Female's FPR counts as 0; Male's is 1/2 -> max(1/3, 1/2)
    assert fm.equalized_odds_difference(y, [1, 1, 0, 1, 1, 0], sensitive_features=s) == pytest.approx(0.5)


def test_a_two_row_split_measures_dp_only():
    report = fm.binary_fairness_report([1, 0], [0.8, 0.3], sensitive_features=[0, 1], groups=NAMES)
    assert report["dp"] == 1.0 and report["soft_dp"] == pytest.approx(0.5)
    assert all(np.isnan(report[k]) for k in ("eo", "eopp", "soft_eo"))
    assert fm.undefined_gaps([1, 0], sensitive_features=[0, 1], groups=NAMES) == {
        "eo": "group 'Male' has no positive labels; group 'Female' has no negative labels",
        "eopp": "group 'Male' has no positive labels",
        "soft_eo": "group 'Male' has no positive labels; group 'Female' has no negative labels",
    }
    assert fm.equal_opportunity_difference([1, 0], [1, 0], sensitive_features=[0, 1]) == 1.0  # fairlearn's


def test_a_group_of_the_dataset_without_rows_leaves_every_gap_undefined():
    y, score, s = [1, 0, 1, 0], [0.9, 0.1, 0.8, 0.4], [0, 0, 1, 1]
    assert fm.undefined_gaps(y, sensitive_features=s) == {}  # two groups present, both labels in each
    names = ["18-29", "30-49", "50+"]
    reasons = fm.undefined_gaps(y, sensitive_features=s, groups=names)
    assert reasons == {k: "group '50+' has no rows" for k in fm.GAP_METRICS}
    report = fm.binary_fairness_report(y, score, sensitive_features=s, groups=names)
    assert all(np.isnan(report[k]) for k in fm.GAP_METRICS) and report["accuracy"] == 1.0
    # a count of groups, and labels given by name, work the same way
    assert fm.undefined_gaps(y, sensitive_features=s, groups=3) == {k: "group '2' has no rows" for k in fm.GAP_METRICS}
    by_name = fm.undefined_gaps(y, sensitive_features=["18-29", "18-29", "30-49", "30-49"], groups=names)
    assert by_name == reasons
    # one group of one: no gap at all
    assert fm.undefined_gaps(y, sensitive_features=[0, 0, 0, 0], groups=["all"]) == {
        k: "one group (all)" for k in fm.GAP_METRICS}


def test_groups_that_do_not_fit_the_data_are_errors():
    with pytest.raises(ValueError, match=r"group index 2, outside the 2 groups \['Female', 'Male'\]"):
        fm.undefined_gaps([0, 1, 1], sensitive_features=[0, 1, 2], groups=NAMES)
    with pytest.raises(ValueError, match=r"'Other', which is not one of the groups"):
        fm.binary_fairness_report([0, 1], [0.1, 0.9], sensitive_features=["Male", "Other"], groups=NAMES)


def test_fairlearn_signature_functions_keep_fairlearn_values():
    fairlearn = pytest.importorskip("fairlearn.metrics")
    y = np.array([1, 0, 0, 1, 0, 0, 1, 1])
    p = np.array([1, 0, 1, 1, 0, 0, 0, 1])
    s = np.array([0, 0, 0, 1, 1, 1, 2, 2])  # group 2 has no negatives, group 1 one positive
    for ours, theirs in ((fm.demographic_parity_difference, fairlearn.demographic_parity_difference),
                         (fm.equalized_odds_difference, fairlearn.equalized_odds_difference)):
        assert ours(y, p, sensitive_features=s) == pytest.approx(theirs(y, p, sensitive_features=s))
    assert np.isnan(fm.binary_fairness_report(y, p.astype(float), sensitive_features=s)["eo"])


def test_a_nan_budget_gap_never_counts_as_met():
    selector = EpochSelector("accuracy", budget=0.1)
    selector.update(1, {"val_accuracy": 0.6, "val_dp": 0.05}, lambda: "one")
    selector.update(2, {"val_accuracy": 0.99, "val_dp": math.nan}, lambda: "two")
    assert selector.selected_epoch == 1 and selector.best_state == "one" and selector.budget_met


# --- training: reasons, NaN and JSON; budgets on undefined gaps ------------------------------------------------


def _model(seed=0):
    torch.manual_seed(seed)
    return build_mlp(6, (8,), num_fairness_layers=1)


def _without_positives_in(split: Split, group: int) -> Split:
    return dataclasses.replace(split, y=torch.where(split.s == group, torch.zeros_like(split.y), split.y))


def test_trainer_reports_nan_with_the_named_reason_and_json_null():
    train, val = make_biased_split(200, 0), make_biased_split(80, 1, name="val")
    test = _without_positives_in(make_biased_split(80, 2, name="test"), 1)
    result = Trainer(strategy="erm", **FAST).fit(_model(), train, val, test, group_names=NAMES)
    assert np.isnan(result.test["eopp"]) and np.isnan(result.test["eo"]) and not np.isnan(result.test["dp"])
    assert result.undefined == {"test": {k: "group 'Male' has no positive labels" for k in ("eo", "eopp", "soft_eo")}}
    saved = json.loads(json.dumps(json_ready(result.to_dict())))
    assert saved["test"]["eopp"] is None and saved["undefined"]["test"]["eopp"] == "group 'Male' has no positive labels"


def test_trainer_with_group_names_flags_a_group_absent_from_a_split():
    train = make_biased_split(200, 0)
    val = make_biased_split(80, 1, name="val")
    only_female = Split(val.x[val.s == 0], val.y[val.s == 0], val.s[val.s == 0], name="test")
    result = Trainer(strategy="erm", **FAST).fit(_model(), train, val, only_female, group_names=NAMES)
    assert all(np.isnan(result.test[k]) for k in fm.GAP_METRICS)
    assert result.undefined["test"] == {k: "group 'Male' has no rows" for k in fm.GAP_METRICS}
    # without names the groups are the training data's, named by index
    unnamed = Trainer(strategy="erm", **FAST).fit(_model(), train, val, only_female)
    assert unnamed.undefined["test"]["dp"] == "group '1' has no rows"
    with pytest.raises(ValueError, match=r"group index 1, but group_names names 1 groups: \['Female'\]"):
        Trainer(strategy="erm", **FAST).fit(_model(), train, val, group_names=["Female"])


def _never_trains(*args, **kwargs):
    raise AssertionError("training started")


def test_a_budget_on_an_undefined_gap_is_an_error_before_training(monkeypatch):
    monkeypatch.setattr(SingleRun, "train_epoch", _never_trains)
    monkeypatch.setattr(StackRun, "train_epoch", _never_trains)
    train = make_biased_split(200, 0)
    val = _without_positives_in(make_biased_split(80, 1, name="val"), 1)
    message = r"cannot measure the budget metric 'eopp'.*group 'Male' has no positive labels"
    with pytest.raises(ValueError, match=message):
        Trainer(strategy="lagrangian", fairness_budget=0.1, budget_metric="eopp", **FAST).fit(
            _model(), train, val, group_names=NAMES)
    config = TrainConfig(strategy="lagrangian", fairness_budget=0.1, budget_metric="eo", **FAST)
    with pytest.raises(ValueError, match=r"budget metric 'eo'.*group 'Male' has no positive labels"):
        Trainer(config).fit(stack_models([_model(0), _model(1)]), train, val, etas=[1.0, 2.0], seeds=[0, 1],
                            group_names=NAMES)
    # DP is still measurable there: no error up to training
    with pytest.raises(AssertionError, match="training started"):
        Trainer(strategy="lagrangian", fairness_budget=0.1, **FAST).fit(_model(), train, val, group_names=NAMES)
    data = TabularDataset(name="no male positives", train=train, val=val, test=make_biased_split(80, 2, name="test"),
                          feature_names=[f"x{i}" for i in range(6)], group_names=NAMES, sensitive_attribute="sex",
                          label="y")
    with pytest.raises(ValueError, match=message):
        fairbinn.choose_under_budget(data, "lagrangian", 0.1, budget_metric="eopp", etas=[1.0], **FAST)
    with pytest.raises(ValueError, match=message):
        fairbinn.choose_under_budget(data, "lagrangian", 0.1, budget_metric="eopp", etas=[1.0], stack=False, **FAST)
    with pytest.raises(ValueError, match=message):
        fairbinn.sweep(data, ["lagrangian"], [1.0], fairness_budget=0.1, budget_metric="eopp", **FAST)


# --- budgets met by a constant classifier ------------------------------------------------------------------------


def _constant(model):
    """``model`` with its output layer fixed far below 0: class 0 for every row, after a little training too."""
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.fill_(-100.0)
    return model


@pytest.mark.filterwarnings("ignore:.*met no epoch under the budget")  # the stack's second model, a real one
def test_a_budget_met_by_predicting_one_class_is_flagged():
    train, val = make_biased_split(200, 0), make_biased_split(80, 1, name="val")
    accuracy = float((val.y == 0).float().mean())
    expected = (f"erm seed=0: the chosen checkpoint meets the dp budget 1e-06 by predicting one class (0) for every "
                f"validation row (validation accuracy {accuracy:.3f})")
    with pytest.warns(UserWarning, match=expected.replace("(", r"\(").replace(")", r"\)")):
        result = Trainer(strategy="erm", fairness_budget=1e-6, confidence=0, **FAST).fit(_constant(_model()), train,
                                                                                         val)
    assert result.budget_met and result.constant_prediction == 0 and result.val["dp"] == 0.0
    assert result.val["accuracy"] == pytest.approx(accuracy)
    # a model that predicts both classes meets a loose budget silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loose = Trainer(strategy="erm", fairness_budget=1.0, **FAST).fit(_model(), train, val)
    assert loose.budget_met and loose.constant_prediction is None

    config = TrainConfig(strategy="lagrangian", fairness_budget=1e-6, confidence=0, **FAST)
    stack = stack_models([_constant(_model(0)), _model(1)])
    with pytest.warns(UserWarning, match=r"1 of 2 models predict one class for every validation row:\n"
                                         r"lagrangian eta=1 seed=0: the chosen checkpoint meets the dp budget"):
        results = Trainer(config).fit(stack, train, val, etas=[1.0, 2.0], seeds=[0, 1])
    assert results[0].constant_prediction == 0 and results[1].constant_prediction is None


def test_choose_under_budget_flags_a_constant_choice_once(monkeypatch):
    data = TabularDataset(name="constant", train=make_biased_split(200, 0), val=make_biased_split(80, 1, name="val"),
                          test=make_biased_split(80, 2, name="test"), feature_names=[f"x{i}" for i in range(6)],
                          group_names=["a", "b"], sensitive_attribute="group", label="y")
    real = fairbinn.sweeps.get_benchmark

    def constant_benchmark(dataset):
        benchmark = real(dataset)
        return dataclasses.replace(benchmark, build_model=lambda d, **kw: _constant(benchmark.build_model(d, **kw)))

    monkeypatch.setattr(fairbinn.sweeps, "get_benchmark", constant_benchmark)
    accuracy = float((data.val.y == 0).float().mean())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        choice = fairbinn.choose_under_budget(data, "lagrangian", 1e-6, confidence=0, etas=[0.0, 1.0], **FAST)
    notes = [str(w.message) for w in caught if "for every validation row" in str(w.message)]
    assert notes == [f"lagrangian eta=0 epoch 1: the chosen checkpoint meets the dp budget 1e-06 by predicting one "
                     f"class (0) for every validation row (validation accuracy {accuracy:.3f})"]
    assert choice.budget_met and choice.result.constant_prediction == 0
