"""Group-threshold post-processing: exact fits, budgets met where chosen, certification, models, saving."""

import itertools
import json
import warnings

import numpy as np
import pytest
import torch

import fairbinn
from fairbinn.core.certify import gap_counts, gap_upper_bound
from fairbinn.core.metrics import (
    binary_fairness_report,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from fairbinn.core.postprocess import (
    GroupThresholds,
    ThresholdedModel,
    thresholds_from_scores,
    threshold_report,
    threshold_result,
)
from fairbinn.tabular.mlp import build_mlp
from tests.synthetic import make_biased_split

GAPS = {"dp": demographic_parity_difference, "eopp": equal_opportunity_difference, "eo": equalized_odds_difference}


def _rows(n, seed, minority=0.35):
    rng = np.random.default_rng(seed)
    g = (rng.random(n) < minority).astype(np.int64)
    y = (rng.random(n) < np.where(g == 1, 0.2, 0.4)).astype(np.int64)
    scores = np.clip(0.45 * y + 0.22 * rng.standard_normal(n) + 0.28 + 0.05 * g, 0, 1)
    return y, scores, g


def _brute_force(y, scores, g, metric, budget):
    """The best accuracy of deterministic per-group thresholds with gap <= budget, over every combination."""
    options = [np.append(np.unique(scores[g == k]), np.inf) for k in range(2)]
    best = -1.0
    for t0, t1 in itertools.product(*options):
        decisions = (scores >= np.where(g == 0, t0, t1)).astype(np.int64)
        if GAPS[metric](y, decisions, sensitive_features=g) <= budget + 1e-12:
            best = max(best, float(np.mean(decisions == y)))
    return best


@pytest.mark.parametrize("metric", ["dp", "eopp", "eo"])
@pytest.mark.parametrize("budget", [0.05, 0.2])
def test_deterministic_thresholds_are_the_most_accurate_within_the_budget(metric, budget):
    y, scores, g = _rows(60, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a tight budget may leave a group all-negative
        fitted = thresholds_from_scores(y, scores, g, budget=budget, metric=metric, confidence=0)
    decisions = fitted.predict(scores, g)
    assert GAPS[metric](y, decisions, sensitive_features=g) <= budget + 1e-12  # met where chosen
    assert fitted.val_accuracy == pytest.approx(_brute_force(y, scores, g, metric, budget), abs=1e-12)
    assert fitted.certificate is None and fitted.p == (0.0, 0.0) and fitted.low == fitted.high


def test_a_hand_computed_case():
    # group 0: scores 0.9 0.8 0.3 0.2 with labels 1 1 0 0; group 1: 0.7 0.6 0.5 0.4 with labels 1 0 0 0
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.6, 0.5, 0.4])
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # unconstrained: group 0 at 0.8 (rate 1/2, all right), group 1 at 0.7 (rate 1/4, all right): DP 0.25
    free = thresholds_from_scores(y, scores, g, budget=1.0, confidence=0)
    assert free.high == (0.8, 0.7) and free.val_accuracy == 1.0
    # DP 0: equal rates; rate 1/2 in both costs one error in group 1 (0.6 predicted 1), rate 1/4 one in group 0
    equal = thresholds_from_scores(y, scores, g, budget=1e-9, confidence=0)
    assert equal.val_accuracy == pytest.approx(7 / 8)
    decisions = equal.predict(scores, g)
    assert decisions[:4].mean() == decisions[4:].mean()
    # randomised: group 1 mixes 0.7 and 0.6 at p = 1/2 ... the expected accuracy can only be higher
    mixed = thresholds_from_scores(y, scores, g, budget=0.125, metric="dp", confidence=0, randomized=True)
    probability = mixed.probabilities(scores, g)
    rates = [probability[g == k].mean() for k in (0, 1)]
    assert abs(rates[0] - rates[1]) <= 0.125 + 1e-9
    expected = np.mean(probability * y + (1 - probability) * (1 - y))
    assert expected == pytest.approx(1 - 0.5 / 8)  # half an error: the one mixed row of group 1 (y = 0)


def test_randomised_thresholds_are_at_least_as_accurate_in_expectation():
    y, scores, g = _rows(400, seed=5)
    for budget in (0.0, 0.02, 0.1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # equal rates without randomising: predict 0 for all
            fixed = thresholds_from_scores(y, scores, g, budget=max(budget, 1e-9), confidence=0)
        mixed = thresholds_from_scores(y, scores, g, budget=max(budget, 1e-9), confidence=0, randomized=True)
        probability = mixed.probabilities(scores, g)
        expected = np.mean(probability * y + (1 - probability) * (1 - y))
        assert expected >= np.mean(fixed.predict(scores, g) == y) - 1e-12
        assert abs(probability[g == 0].mean() - probability[g == 1].mean()) <= max(budget, 1e-9) + 1e-9
    draws = mixed.predict(scores, g, random_state=1)
    assert np.array_equal(draws, mixed.predict(scores, g, random_state=1))
    assert set(np.unique(draws)) <= {0, 1}


def test_certified_thresholds_report_the_bound_of_their_certification_rows():
    fit_rows, cert_rows = _rows(3000, seed=0), _rows(3000, seed=1)
    fitted = thresholds_from_scores(*fit_rows, budget=0.08, certify=cert_rows)
    certificate = fitted.certificate
    assert certificate["certified"] is True and certificate["confidence"] == 0.95
    assert certificate["metric"] == "dp" and certificate["budget"] == 0.08
    decisions = fitted.predict(cert_rows[1], cert_rows[2])
    bound = gap_upper_bound("dp", gap_counts(cert_rows[0], decisions, cert_rows[2], "dp"), 0.95).upper
    assert certificate["upper_bound"] == pytest.approx(bound, abs=1e-12) and bound <= 0.08
    # the accuracy among certified rungs is read on the certification rows here
    assert fitted.val_accuracy == pytest.approx(np.mean(decisions == cert_rows[0]))
    # split by default: a share of each (group, label) cell certifies
    split = thresholds_from_scores(*_rows(8000, seed=2), budget=0.08, fraction=0.5)
    assert split.certificate["certified"] is True and not any(np.isinf(split.high))


def test_nothing_certifiable_warns_and_keeps_the_smallest_bound():
    fit_rows, cert_rows = _rows(400, seed=0), _rows(60, seed=1)
    with pytest.warns(UserWarning, match="none certified to meet the eopp budget 0.05 at 95% confidence"):
        fitted = thresholds_from_scores(*fit_rows, budget=0.05, metric="eopp", randomized=True, certify=cert_rows)
    assert fitted.certificate["certified"] is False and fitted.certificate["upper_bound"] > 0.05


def _population():
    """Scores 0.1 .. 0.9 with known probabilities per group; labels Bernoulli(score)."""
    values = np.linspace(0.1, 0.9, 9)
    weights = {0: np.linspace(1, 2, 9), 1: np.linspace(2, 1, 9)}
    return values, {k: w / w.sum() for k, w in weights.items()}


def _draw(rng, n, values, probs):
    g = (rng.random(n) < 0.5).astype(np.int64)
    scores = np.where(g == 0, rng.choice(values, n, p=probs[0]), rng.choice(values, n, p=probs[1]))
    y = (rng.random(n) < scores).astype(np.int64)
    return y, scores, g


def test_certification_is_valid_by_simulation():
    """How often a certified choice's population DP exceeds the budget: at most 1 - C plus three standard errors."""
    values, probs = _population()
    rng = np.random.default_rng(0)
    budget, draws, wrong, certified = 0.06, 200, 0, 0
    fit_rows = _draw(rng, 2000, values, probs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(draws):
            fitted = thresholds_from_scores(*fit_rows, budget=budget, certify=_draw(rng, 300, values, probs))
            if not fitted.certificate["certified"]:
                continue
            certified += 1
            rates = [probs[k][values >= fitted.high[k]].sum() for k in (0, 1)]  # deterministic thresholds
            wrong += abs(rates[0] - rates[1]) > budget
    assert certified > draws / 4  # the check is not vacuous
    assert wrong / draws <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / draws)


@pytest.mark.parametrize("metric", ["soft_dp", "soft_eo"])
def test_thresholds_cannot_control_soft_gaps(metric):
    y, scores, g = _rows(50, seed=0)
    with pytest.raises(ValueError, match=f"thresholds cannot control {metric}: it is a gap of mean scores"):
        thresholds_from_scores(y, scores, g, budget=0.1, metric=metric)


def test_bad_arguments_are_named():
    y, scores, g = _rows(50, seed=0)
    with pytest.raises(ValueError, match="budget bounds a gap of rates, so it must be in"):
        thresholds_from_scores(y, scores, g, budget=0)
    with pytest.raises(ValueError, match="randomised thresholds support dp and eopp"):
        thresholds_from_scores(y, scores, g, budget=0.1, metric="eo", randomized=True)
    with pytest.raises(ValueError, match="confidence must be in"):
        thresholds_from_scores(y, scores, g, budget=0.1, confidence=1.0)
    cert = (y, scores, np.where(g == 1, 2, g))
    with pytest.raises(ValueError, match="group '2' has certification rows but no fit rows"):
        thresholds_from_scores(y, scores, g, budget=0.1, certify=cert)


def test_a_group_without_a_threshold_is_an_error_at_prediction():
    fitted = GroupThresholds(("Female", "Male", "Other"), (0.4, 0.6, None), (0.4, 0.6, None), (0.0, 0.0, None),
                             budget=0.1, target=0.05, fit_gap=0.04, val_accuracy=0.8)
    assert fitted.predict([0.5, 0.5], [0, 1]).tolist() == [1, 0]
    assert fitted.predict([0.5, 0.5], ["Female", "Male"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="group 'Other' has no threshold: it had no rows where the thresholds"):
        fitted.predict([0.5], [2])
    with pytest.raises(ValueError, match="group index 3 has no threshold"):
        fitted.predict([0.5], [3])
    with pytest.raises(ValueError, match="group 'Nonbinary' has no threshold"):
        fitted.predict([0.5], ["Nonbinary"])
    with pytest.raises(ValueError, match="2 scores but 1 group values"):
        fitted.predict([0.5, 0.2], [0])
    assert GroupThresholds.from_dict(json.loads(json.dumps(fitted.to_dict()))) == fitted


def test_report_uses_the_decisions_for_rate_gaps_and_the_scores_for_the_rest():
    y, scores, g = _rows(300, seed=2)
    fitted = thresholds_from_scores(y, scores, g, budget=0.05, confidence=0)
    report, intervals = threshold_report(fitted, (y, scores, g), 2)
    decisions = fitted.predict(scores, g)
    assert report["dp"] == pytest.approx(demographic_parity_difference(y, decisions, sensitive_features=g))
    assert report["accuracy"] == pytest.approx(np.mean(decisions == y))
    plain = binary_fairness_report(y, scores, sensitive_features=g)
    for key in ("auc", "ap", "soft_dp", "soft_eo"):
        assert report[key] == plain[key]
    assert intervals["dp"][0] <= report["dp"] <= intervals["dp"][1]


def _tiny_model(features):
    torch.manual_seed(0)
    return build_mlp(features, hidden_dims=(8,), num_fairness_layers=1)


@pytest.mark.filterwarnings("ignore:group thresholds")  # an untrained model: a group may get no positives
def test_thresholded_model_saves_and_loads_with_its_thresholds(tmp_path):
    train, val = make_biased_split(400, seed=0), make_biased_split(400, seed=1, name="val")
    model = _tiny_model(train.num_features)
    post = fairbinn.thresholds(model, train, certify=val, budget=0.2)
    assert isinstance(post, ThresholdedModel) and post.thresholds.certificate is not None
    with pytest.raises(ValueError, match="pass each row's group"):
        post.predict(val.x)
    fairbinn.save_model(post, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "model.json").read_text())
    assert saved["info"]["thresholds"]["metric"] == "dp"
    loaded = fairbinn.load_model(tmp_path / "m")
    assert isinstance(loaded, ThresholdedModel) and loaded.thresholds == post.thresholds
    torch.testing.assert_close(loaded(val.x), post(val.x))
    assert torch.equal(loaded.predict(val.x, val.s), post.predict(val.x, val.s))


def test_bad_saved_thresholds_are_named(tmp_path):
    train = make_biased_split(100, seed=0)
    model = _tiny_model(train.num_features)
    fairbinn.save_model(model, tmp_path / "m", info={"thresholds": {"groups": ["a"], "low": ["x"], "high": [0.5],
                                                                    "p": [0]}})
    with pytest.raises(ValueError, match="its 'info.thresholds' are not per-group thresholds: .*'low' holds 'x'"):
        fairbinn.load_model(tmp_path / "m")


@pytest.mark.filterwarnings("ignore:group thresholds")
def test_threshold_result_replaces_the_metrics_and_keeps_the_base():
    train, val, test = (make_biased_split(500, seed=k, name=n) for k, n in enumerate(("train", "val", "test")))
    model = _tiny_model(train.num_features)
    result = fairbinn.Trainer(strategy="erm", epochs=2, batch_size=64).fit(model, train, val, test)
    post = threshold_result(result, train, val, test, budget=0.2, group_names=["a", "b"])
    assert isinstance(post.model, ThresholdedModel) and post.extra["base"]["test"] == result.test
    decisions = post.model.predict(test.x, test.s).numpy()
    assert post.test["accuracy"] == pytest.approx(np.mean(decisions == test.y.numpy()))
    assert post.certificate == post.model.thresholds.certificate and post.budget_met is post.certificate["certified"]
    assert post.test["auc"] == result.test["auc"]  # scores unchanged


BEST_SETTINGS = dict(etas=[0.0, 3.0], epochs=3, batch_size=50, lr=1e-2, fairness_lr=1e-3, progress=False)


def _synthetic():
    from fairbinn.tabular.preprocess import TabularDataset

    return TabularDataset(name="synthetic", train=make_biased_split(400, 0, name="train"),
                          val=make_biased_split(300, 1, name="val"), test=make_biased_split(300, 2, name="test"),
                          feature_names=[f"x{i}" for i in range(6)], group_names=["a", "b"],
                          sensitive_attribute="group", label="y")


def test_best_takes_the_most_accurate_candidate_when_every_one_is_certified():
    # a budget of 1 certifies every candidate, so the choice is the best validation accuracy of all of them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        choice = fairbinn.choose_under_budget(_synthetic(), "best", 1.0, **BEST_SETTINGS)
    table = choice.table
    assert set(table["candidate"]) == {"erm", "lagrangian", "bilevel", "erm + thresholds",
                                       "lagrangian + thresholds", "bilevel + thresholds"}
    assert choice.result.certificate["certified"] is True
    best = table["val_accuracy"].max()
    assert choice.result.val["accuracy"] == pytest.approx(best, abs=1e-6)
    winners = set(table.loc[np.isclose(table["val_accuracy"], best, atol=1e-6), "candidate"])
    assert choice.strategy in winners
    assert isinstance(choice.result.model, ThresholdedModel) == choice.strategy.endswith("thresholds")
    # each candidate's own choice, from the same training: the most accurate of its own candidates
    assert set(choice.candidates) == set(table["candidate"])
    for label, result in choice.candidates.items():
        own = table.loc[table["candidate"] == label, "val_accuracy"].max()
        assert result.val["accuracy"] == pytest.approx(own, abs=1e-6), label
        assert result.certificate["certified"] is True


def test_best_certifies_and_names_its_choice():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        choice = fairbinn.choose_under_budget(_synthetic(), "best", 0.3, **BEST_SETTINGS)
    certificate = choice.certificate
    assert certificate["budget"] == 0.3 and certificate["metric"] == "dp"
    if certificate["certified"]:
        assert certificate["upper_bound"] <= 0.3
    row = choice.table[choice.table["candidate"] == choice.strategy]
    assert certificate["upper_bound"] in set(row["val_bound"])


def test_best_needs_a_certified_accuracy_choice():
    with pytest.raises(ValueError, match="strategy='best' chooses among certified candidates"):
        fairbinn.choose_under_budget(_synthetic(), "best", 0.2, confidence=0, **BEST_SETTINGS)
    with pytest.raises(ValueError, match="strategy='best' chooses by validation accuracy"):
        fairbinn.choose_under_budget(_synthetic(), "best", 0.2, selection_metric="auc", **BEST_SETTINGS)
