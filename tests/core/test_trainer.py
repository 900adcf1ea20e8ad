import copy

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fairbinn import Trainer, TrainConfig, build_mlp
from fairbinn.core import Batch, Split
from fairbinn.core.metrics import binary_fairness_report

from synthetic import make_biased_split


def model_for(split, seed=0):
    torch.manual_seed(seed)
    return build_mlp(split.num_features, (16, 16), num_fairness_layers=1)


FAST = dict(epochs=4, batch_size=50, progress=False, lr=1e-2, fairness_lr=1e-3)


@pytest.mark.parametrize("strategy", ["erm", "lagrangian", "bilevel"])
def test_fit_records_history_and_selects_best_validation_epoch(biased, strategy):
    train, val, test = biased
    model = model_for(train)
    result = Trainer(strategy=strategy, eta=1.0, **FAST).fit(model, train, val, test)
    history = result.history_frame()
    assert list(history.index) == [1, 2, 3, 4]
    expected_losses = {"erm": ["train_bce"], "lagrangian": ["train_bce", "train_fairness", "train_loss"],
                       "bilevel": ["train_bce", "train_fairness"]}[strategy]
    assert [c for c in history.columns if c.startswith("train_") and c != "train_time_s"] == expected_losses
    assert history["train_bce"].iloc[-1] < history["train_bce"].iloc[0]
    best = int(history["val_accuracy"].to_numpy().argmax()) + 1
    assert result.selected_epoch == best
    # the model holds the selected epoch's parameters: re-evaluating reproduces its validation metrics
    assert Trainer(**FAST).evaluate(model, val) == pytest.approx(result.val)
    assert result.val == pytest.approx({k[4:]: v for k, v in result.history[best - 1].items() if k.startswith("val_")})
    y, score, s = Trainer(**FAST).predict(model, test)
    assert result.test == pytest.approx(binary_fairness_report(y, score, sensitive_features=s))


def test_selection_by_fairness_gap_minimises_it(biased):
    train, val, _ = biased
    result = Trainer(strategy="erm", selection_metric="soft_dp", **FAST).fit(model_for(train), train, val)
    gaps = [r["val_soft_dp"] for r in result.history]
    assert result.selected_epoch == int(np.argmin(gaps)) + 1
    assert result.test is None


def test_last_epoch_without_validation(biased):
    train, _, _ = biased
    result = Trainer(strategy="erm", **FAST).fit(model_for(train), train)
    assert result.selected_epoch == 4 and result.val is None
    assert not any(k.startswith("val_") for k in result.history[0])


def test_same_seed_same_results_on_cpu(biased):
    train, val, test = biased
    runs = []
    for _ in range(2):
        result = Trainer(strategy="bilevel", seed=7, **FAST).fit(model_for(train, seed=7), train, val, test)
        runs.append([{k: v for k, v in r.items() if k != "train_time_s"} for r in result.history] + [result.test])
    assert runs[0] == runs[1]


def test_bilevel_separate_batches_trains(biased):
    train, val, _ = biased
    result = Trainer(strategy="bilevel", separate_batches=True, order="leader_first", **FAST).fit(
        model_for(train), train, val
    )
    assert np.isfinite(result.history[-1]["train_fairness"])


def test_accepts_dataloaders_and_masked_full_batches(biased):
    train, val, _ = biased
    loader = DataLoader(TensorDataset(train.x, train.y, train.s), batch_size=100, shuffle=True)
    model = model_for(train)
    Trainer(strategy="lagrangian", **FAST).fit(model, loader)
    # a single full batch with a mask, as a graph would be given
    mask = torch.arange(len(train)) % 2 == 0
    full = [Batch(train.x, train.y, train.s, mask)]
    result = Trainer(strategy="bilevel", **FAST).fit(model_for(train), full, full)
    y, _, _ = Trainer(**FAST).predict(model, full)
    assert len(y) == int(mask.sum())
    assert result.val["accuracy"] > 0.5


def _params(model):
    return copy.deepcopy([p.detach().clone() for p in model.parameters()])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda x, y, s: Split(x, y, torch.zeros_like(s)), "1 distinct group"),
        (lambda x, y, s: Split(x, y * 2, s), "binary 0/1"),
        (lambda x, y, s: Split(torch.where(torch.arange(x.numel()).view_as(x) == 7, float("nan"), x), y, s),
         "NaN or infinite values \\(first at row 1, column 1\\)"),
        (lambda x, y, s: Split(x[:-1], y, s), "mismatched lengths"),
    ],
)
def test_bad_training_data_fails_before_any_step(biased, make, message):
    train = biased[0]
    model = model_for(train)
    before = _params(model)
    with pytest.raises(ValueError, match=message):
        Trainer(**FAST).fit(model, make(train.x.clone(), train.y.clone(), train.s.clone()))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(eta=-1.0), "eta must be a finite number >= 0"),
        (dict(strategy="minimax"), "strategy must be one of"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(order="sideways"), "order must be one of"),
        (dict(constraint="parity"), "unknown fairness constraint"),
        (dict(selection_metric="loss"), "selection_metric"),
        (dict(lr=0.0), "lr must be a finite number > 0"),
    ],
)
def test_bad_configuration_is_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)


def test_unavailable_device_is_named(biased):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    with pytest.raises(RuntimeError, match="'cuda' requested but CUDA is not available"):
        Trainer(device="cuda", **FAST).fit(model_for(biased[0]), biased[0])


def test_divergence_is_reported_with_epoch(biased):
    train = biased[0]
    model = model_for(train)
    with torch.no_grad():
        model.head[-1].weight.fill_(float("inf"))
    with pytest.raises(FloatingPointError, match="diverged in epoch 1"):
        Trainer(strategy="erm", **FAST).fit(model, train)


def test_multi_group_training(biased):
    train = make_biased_split(600, 3, groups=4)
    result = Trainer(strategy="bilevel", **FAST).fit(model_for(train), train, make_biased_split(300, 4, name="val", groups=4))
    assert result.val is not None and 0 <= result.val["dp"] <= 1


def test_erm_trains_on_a_single_group_but_fairness_strategies_refuse(biased):
    train = biased[0]
    one_group = Split(train.x, train.y, torch.zeros_like(train.s))
    result = Trainer(strategy="erm", **FAST).fit(model_for(one_group), one_group, one_group)
    # a gap between groups is undefined with one group: NaN with the reason, never 0
    assert np.isnan(result.val["dp"]) and result.val["accuracy"] > 0.6
    assert result.undefined["val"]["dp"] == "one group (0)"
    with pytest.raises(ValueError, match="1 distinct group"):
        Trainer(strategy="lagrangian", **FAST).fit(model_for(one_group), one_group)


def _first_best(values, candidates):
    """1-based epoch of the largest value among the candidate epochs (the earliest on ties)."""
    best = max(values[e - 1] for e in candidates)
    return min(e for e in candidates if values[e - 1] == best)


def test_budget_selection_takes_the_most_accurate_epoch_under_the_budget(biased):
    train, val, test = biased
    free = Trainer(strategy="lagrangian", eta=1.0, **FAST).fit(model_for(train), train, val, test)
    gaps = [r["val_dp"] for r in free.history]
    accuracies = [r["val_accuracy"] for r in free.history]
    budget = sorted(gaps)[1]  # two epochs meet it
    model = model_for(train)
    result = Trainer(strategy="lagrangian", eta=1.0, fairness_budget=budget, confidence=0, **FAST).fit(
        model, train, val, test)
    assert [r["val_dp"] for r in result.history] == gaps  # the budget changes the choice, not the training
    meeting = [e for e in range(1, 5) if gaps[e - 1] <= budget]
    assert len(meeting) >= 2
    assert result.selected_epoch == _first_best(accuracies, meeting) and result.budget_met is True
    assert result.val["dp"] <= budget
    assert Trainer(**FAST).evaluate(model, val) == pytest.approx(result.val)  # the model holds that epoch
    assert result.to_dict()["budget_met"] is True


def test_unmet_budget_keeps_the_smallest_gap_and_warns(biased):
    train, val, _ = biased
    with pytest.warns(UserWarning, match=r"lagrangian eta=1 seed=0: no epoch met the validation soft_dp budget "
                                         r"1e-09; the smallest validation soft_dp reached was 0\.\d{4} \(epoch \d\), "
                                         r"the epoch kept; a larger eta than 1 may meet it"):
        result = Trainer(strategy="lagrangian", eta=1.0, fairness_budget=1e-9, budget_metric="soft_dp", confidence=0,
                         **FAST).fit(
            model_for(train), train, val)
    gaps = [r["val_soft_dp"] for r in result.history]
    assert result.budget_met is False and result.selected_epoch == int(np.argmin(gaps)) + 1
    with pytest.warns(UserWarning, match="ERM has no fairness term"):
        assert Trainer(strategy="erm", fairness_budget=1e-9, confidence=0, **FAST).fit(
            model_for(train), train, val).budget_met is False


def test_test_metrics_of_every_epoch_are_recorded_but_never_choose(biased):
    train, val, test = biased
    plain = Trainer(strategy="bilevel", eta=1.0, fairness_budget=0.2, **FAST).fit(model_for(train), train, val, test)
    model = model_for(train)
    recorded = Trainer(strategy="bilevel", eta=1.0, fairness_budget=0.2, record_test=True, **FAST).fit(
        model, train, val, test)
    assert recorded.selected_epoch == plain.selected_epoch and recorded.val == plain.val
    assert "test_accuracy" not in plain.history[0]
    selected = recorded.history[recorded.selected_epoch - 1]
    assert recorded.test == pytest.approx({k[5:]: v for k, v in selected.items()
                                           if k.startswith("test_") and not k.endswith(("_lo", "_hi"))})
    assert recorded.test_intervals == {g: [selected[f"test_{g}_lo"], selected[f"test_{g}_hi"]]
                                       for g in ("dp", "eo", "eopp", "soft_dp", "soft_eo")}
    assert recorded.test == pytest.approx(plain.test)
    assert Trainer(**FAST).evaluate(model, test) == pytest.approx(recorded.test)


def test_a_budget_the_validation_data_cannot_measure_fails_before_training(biased):
    train, val, _ = biased
    negatives_only = Split(val.x, torch.zeros_like(val.y), val.s, name="val")
    model = model_for(train)
    before = _params(model)
    with pytest.raises(ValueError, match="validation data cannot measure the budget metric 'eo': "
                                         "groups '0' and '1' have no positive labels"):
        Trainer(strategy="lagrangian", fairness_budget=0.1, budget_metric="eo", **FAST).fit(model, train, negatives_only)
    with pytest.raises(ValueError, match="fairness_budget chooses epochs on validation data"):
        Trainer(strategy="lagrangian", fairness_budget=0.1, **FAST).fit(model, train)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("overrides, message", [
    (dict(fairness_budget=0.0), "fairness_budget must be a finite number > 0, got 0.0"),
    (dict(fairness_budget=-0.1), "fairness_budget must be a finite number > 0"),
    (dict(fairness_budget=float("nan")), "fairness_budget must be a finite number > 0, got nan"),
    (dict(fairness_budget=float("inf")), "fairness_budget must be a finite number > 0, got inf"),
    (dict(fairness_budget="0.1"), "fairness_budget must be a finite number > 0, got '0.1'"),
    (dict(fairness_budget=0.1, budget_metric="parity"), "budget_metric must be one of dp, eo, eopp, soft_dp, soft_eo"),
    (dict(fairness_budget=0.1, selection_metric=None), "selection_metric, which cannot be None"),
])
def test_bad_budgets_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**overrides)
