import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as fl
from sklearn import metrics as sk

from fairbinn import metrics as fm


def test_hand_computed_example():
    #            group a            group b
    y_true = [1, 1, 0, 0,      1, 0, 0, 0]
    y_pred = [1, 0, 1, 0,      1, 0, 0, 0]
    score = [0.9, 0.4, 0.6, 0.2, 0.7, 0.1, 0.3, 0.2]
    groups = ["a"] * 4 + ["b"] * 4
    kw = {"sensitive_features": groups}
    # selection rates: a 2/4, b 1/4
    assert fm.demographic_parity_difference(y_true, y_pred, **kw) == pytest.approx(0.25)
    # TPR: a 1/2, b 1/1 -> 0.5 ; FPR: a 1/2, b 0/3 -> 0.5
    assert fm.equal_opportunity_difference(y_true, y_pred, **kw) == pytest.approx(0.5)
    assert fm.equalized_odds_difference(y_true, y_pred, **kw) == pytest.approx(0.5)
    # mean scores: a 2.1/4 = 0.525, b 1.3/4 = 0.325
    assert fm.soft_demographic_parity_difference(y_true, score, **kw) == pytest.approx(0.2)
    # among positives: a 0.65, b 0.7 -> 0.05; among negatives: a 0.4, b 0.2 -> 0.2
    assert fm.soft_equalized_odds_difference(y_true, score, **kw) == pytest.approx(0.2)
    assert fm.accuracy(y_true, y_pred) == pytest.approx(6 / 8)
    # positives 0.9 0.4 0.7 vs negatives 0.6 0.2 0.1 0.3 0.2: 5 + 4 + 5 of 15 pairs ordered
    assert fm.roc_auc(y_true, score) == pytest.approx(14 / 15)


@pytest.mark.parametrize("n_groups", [2, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fairness_metrics_match_fairlearn(n_groups, seed):
    rng = np.random.default_rng(seed)
    n = 500
    groups = rng.choice([f"g{i}" for i in range(n_groups)], n, p=np.r_[0.5, [0.5 / (n_groups - 1)] * (n_groups - 1)])
    y_true = rng.integers(0, 2, n)
    y_pred = (rng.random(n) < 0.3 + 0.4 * y_true).astype(int)
    kw = {"sensitive_features": groups}
    for name in ("demographic_parity_difference", "equalized_odds_difference", "equal_opportunity_difference"):
        ours = getattr(fm, name)(y_true, y_pred, **kw)
        reference = getattr(fl, name)(y_true, y_pred, **kw)
        assert ours == pytest.approx(reference, abs=1e-12), name
        assert 0 <= ours <= 1


def test_group_without_positives_follows_fairlearn_convention():
    y_true = np.array([0, 0, 1, 1, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 1, 1])
    groups = np.array([0, 0, 0, 0, 1, 1])  # group 1 has no positives: its TPR counts as 0
    for name in ("equalized_odds_difference", "equal_opportunity_difference"):
        assert getattr(fm, name)(y_true, y_pred, sensitive_features=groups) == pytest.approx(
            getattr(fl, name)(y_true, y_pred, sensitive_features=groups)
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_ranking_metrics_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 400)
    score = np.round(rng.random(400) * 0.5 + 0.3 * y, 1)  # few distinct values: many ties
    assert fm.roc_auc(y, score) == pytest.approx(sk.roc_auc_score(y, score), abs=1e-12)
    assert fm.average_precision(y, score) == pytest.approx(sk.average_precision_score(y, score), abs=1e-12)
    y_pred = (score > 0.4).astype(int)
    assert fm.accuracy(y, y_pred) == pytest.approx(sk.accuracy_score(y, y_pred))


def test_group_metrics_match_fairlearn_metric_frame():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    score = rng.random(300)
    groups = rng.choice(["x", "y", "z"], 300)
    ours = fm.group_metrics(y, score, sensitive_features=groups, threshold=0.5)
    frame = fl.MetricFrame(
        metrics={
            "selection_rate": fl.selection_rate,
            "true_positive_rate": fl.true_positive_rate,
            "false_positive_rate": fl.false_positive_rate,
            "count": fl.count,
        },
        y_true=y,
        y_pred=(score >= 0.5).astype(int),
        sensitive_features=groups,
    ).by_group
    for column in frame.columns:
        np.testing.assert_allclose(ours[column].to_numpy(), frame[column].to_numpy(dtype=float))
    assert list(ours.index) == ["x", "y", "z"]
    np.testing.assert_allclose(ours["mean_score"], pd.Series(score).groupby(groups).mean().to_numpy())


def test_report_is_consistent_with_single_metrics():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    score = rng.random(200)
    s = rng.integers(0, 3, 200)
    report = fm.binary_fairness_report(y, score, sensitive_features=s, threshold=0.6)
    pred = (score >= 0.6).astype(int)
    assert list(report) == list(fm.REPORT_KEYS)
    assert report["dp"] == fm.demographic_parity_difference(y, pred, sensitive_features=s)
    assert report["soft_dp"] == fm.soft_demographic_parity_difference(y, score, sensitive_features=s)
    assert report["auc"] == pytest.approx(sk.roc_auc_score(y, score))


def test_f1_matches_scikit_learn_and_is_in_the_report():
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    assert fm.f1_score(y, p) == pytest.approx(sk.f1_score(y, p), abs=1e-12)
    # by hand: TP 2, FP 1, FN 1 -> 4 / 6
    assert fm.f1_score([1, 1, 1, 0, 0], [1, 1, 0, 1, 0]) == pytest.approx(2 / 3)
    assert fm.f1_score([0, 0, 1], [0, 0, 0]) == 0.0  # a positive missed, none predicted
    assert np.isnan(fm.f1_score([0, 0], [0, 0]))  # 0 / 0: no positive label, none predicted
    report = fm.binary_fairness_report([1, 1, 1, 0, 0], [0.9, 0.6, 0.2, 0.7, 0.1], sensitive_features=[0, 1, 0, 1, 0])
    assert report["f1"] == pytest.approx(2 / 3) and fm.higher_is_better("f1")


def test_single_group_and_single_class():
    assert fm.demographic_parity_difference([0, 1, 1], [1, 0, 1], sensitive_features=[7, 7, 7]) == 0.0
    with pytest.raises(ValueError, match="only one class"):
        fm.roc_auc([1, 1, 1], [0.2, 0.3, 0.9])
    report = fm.binary_fairness_report([1, 1], [0.2, 0.9], sensitive_features=[0, 1])
    assert np.isnan(report["auc"]) and np.isnan(report["ap"])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fm.demographic_parity_difference([0, 1], [0.2, 0.7], sensitive_features=[0, 1]), "binary"),
        (lambda: fm.demographic_parity_difference([0, 1, 1], [0, 1], sensitive_features=[0, 1]), "different lengths"),
        (lambda: fm.roc_auc([0, 1], [np.nan, 0.5]), "NaN"),
        (lambda: fm.accuracy([0, 2], [0, 1]), "binary"),
        (lambda: fm.accuracy([], []), "empty"),
    ],
)
def test_bad_input_raises_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_undefined_gaps_are_nan_in_the_report_with_their_reason():
    one_group = fm.binary_fairness_report([0, 1, 1], [0.2, 0.7, 0.9], sensitive_features=["a", "a", "a"])
    assert all(np.isnan(one_group[k]) for k in fm.GAP_METRICS) and one_group["accuracy"] == 1.0
    assert fm.undefined_gaps([0, 1, 1], sensitive_features=["a", "a", "a"]) == {k: "one group (a)" for k in fm.GAP_METRICS}
    positives = fm.binary_fairness_report([1, 1, 1, 1], [0.2, 0.7, 0.9, 0.4], sensitive_features=[0, 0, 1, 1])
    assert positives["dp"] == 0.0 and positives["soft_dp"] == pytest.approx(0.2)  # defined: two groups
    assert positives["eopp"] == 0.0  # TPRs 0.5 and 0.5
    assert np.isnan(positives["eo"]) and np.isnan(positives["soft_eo"])
    assert fm.undefined_gaps([1, 1, 1, 1], sensitive_features=[0, 0, 1, 1]) == {
        "eo": "groups '0' and '1' have no negative labels", "soft_eo": "groups '0' and '1' have no negative labels"}
    assert fm.undefined_gaps([0, 0], sensitive_features=[0, 1]) == {
        "eo": "groups '0' and '1' have no positive labels", "eopp": "groups '0' and '1' have no positive labels",
        "soft_eo": "groups '0' and '1' have no positive labels"}
    assert fm.undefined_gaps([0, 1, 0, 1], sensitive_features=[0, 0, 1, 1]) == {}
    # the fairlearn-signature functions keep fairlearn's value
    assert fm.equalized_odds_difference([1, 1, 1, 1], [0, 1, 1, 1], sensitive_features=[0, 0, 1, 1]) == 0.5


def test_metric_directions():
    assert fm.higher_is_better("accuracy") and fm.higher_is_better("auc")
    assert not any(fm.higher_is_better(k) for k in fm.GAP_METRICS)
    with pytest.raises(ValueError, match="unknown metric 'loss'; choose one of accuracy, auc"):
        fm.higher_is_better("loss")
