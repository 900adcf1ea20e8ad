import math

import pytest

from fairbinn.core.selection import EpochSelector

# validation records of five epochs: accuracy rises while DP does too
RECORDS = [
    {"val_accuracy": 0.70, "val_dp": 0.01, "val_auc": 0.75},
    {"val_accuracy": 0.78, "val_dp": 0.04, "val_auc": 0.80},
    {"val_accuracy": 0.80, "val_dp": 0.03, "val_auc": 0.79},
    {"val_accuracy": 0.85, "val_dp": 0.12, "val_auc": 0.90},
    {"val_accuracy": 0.80, "val_dp": 0.02, "val_auc": 0.81},
]


def _run(selector):
    kept = []
    for epoch, record in enumerate(RECORDS, start=1):
        selector.update(epoch, record, lambda: kept.append(epoch) or f"state of epoch {epoch}")
    return kept


def test_best_metric_without_budget():
    selector = EpochSelector("accuracy")
    kept = _run(selector)
    assert selector.selected_epoch == 4 and selector.best_state == "state of epoch 4"
    assert kept == [1, 2, 3, 4]  # the state is copied only when an epoch becomes the choice
    assert selector.budget_met is None and selector.shortfall() is None
    gap = EpochSelector("dp")
    _run(gap)
    assert gap.selected_epoch == 1  # gaps are minimised


def test_budget_keeps_the_best_epoch_that_meets_it():
    selector = EpochSelector("accuracy", budget=0.035)
    _run(selector)
    # epochs 1, 3 and 5 meet DP <= 0.035; of those 3 and 5 tie on accuracy 0.80: the earlier one stays
    assert selector.selected_epoch == 3 and selector.best_state == "state of epoch 3"
    assert selector.budget_met is True and selector.shortfall() is None
    auc = EpochSelector("auc", budget=0.035)
    _run(auc)
    assert auc.selected_epoch == 5


def test_unmet_budget_keeps_the_smallest_gap_and_says_so():
    selector = EpochSelector("accuracy", budget=0.005)
    _run(selector)
    assert selector.selected_epoch == 1 and selector.best_state == "state of epoch 1"
    assert selector.budget_met is False
    assert selector.shortfall() == ("no epoch met the validation dp budget 0.005; the smallest validation dp "
                                    "reached was 0.0100 (epoch 1), the epoch kept")


def test_nan_never_wins_and_metric_none_keeps_the_last_epoch():
    selector = EpochSelector("accuracy", budget=0.1)
    selector.update(1, {"val_accuracy": 0.9, "val_dp": math.nan}, lambda: "nan gap")
    assert selector.budget_met is False and "undefined (NaN) in every epoch" in selector.shortfall()
    selector.update(2, {"val_accuracy": math.nan, "val_dp": 0.01}, lambda: "nan accuracy")
    assert selector.budget_met is False
    selector.update(3, {"val_accuracy": 0.5, "val_dp": 0.01}, lambda: "three")
    assert selector.selected_epoch == 3 and selector.budget_met is True
    last = EpochSelector(None)
    _run(last)
    assert last.selected_epoch == 5 and last.best_state is None


def test_state_dict_continues_the_choice():
    whole = EpochSelector("accuracy", budget=0.035)
    _run(whole)
    first = EpochSelector("accuracy", budget=0.035)
    for epoch, record in enumerate(RECORDS[:2], start=1):
        first.update(epoch, record, lambda: f"state of epoch {epoch}")
    resumed = EpochSelector("accuracy", budget=0.035)
    resumed.load_state_dict(first.state_dict())
    for epoch, record in enumerate(RECORDS[2:], start=3):
        resumed.update(epoch, record, lambda: f"state of epoch {epoch}")
    assert (resumed.selected_epoch, resumed.best_state, resumed.budget_met) == (3, "state of epoch 3", True)
    with pytest.raises(ValueError, match="saved selection"):
        EpochSelector("accuracy", budget=0.1).load_state_dict(first.state_dict())


@pytest.mark.parametrize("kwargs, message", [
    ({"metric": "loss"}, "unknown metric 'loss'"),
    ({"metric": None, "budget": 0.1}, "metric cannot be None"),
    ({"metric": "accuracy", "budget": 0.1, "budget_metric": "accuracy"}, "budget_metric must be one of dp"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EpochSelector(kwargs.pop("metric"), **kwargs)
