import math

import numpy as np
import pytest

from fairbinn.core import certify as ct
from fairbinn.core import metrics as fm

stats = pytest.importorskip("scipy.stats")

METRIC_FUNCTIONS = {
    "dp": fm.demographic_parity_difference,
    "eo": fm.equalized_odds_difference,
    "eopp": fm.equal_opportunity_difference,
    "soft_dp": fm.soft_demographic_parity_difference,
    "soft_eo": fm.soft_equalized_odds_difference,
}


def cp_reference(k, n, alpha, side):
    k, n = np.asarray(k), np.asarray(n)
    with np.errstate(all="ignore"):
        if side == "upper":
            return np.where(k < n, stats.beta.isf(alpha, k + 1, np.maximum(n - k, 1)), 1.0)
        return np.where(k > 0, stats.beta.ppf(alpha, np.maximum(k, 1), n - k + 1), 0.0)


def random_rows(n, seed, n_groups=3):
    rng = np.random.default_rng(seed)
    groups = rng.choice([f"g{i}" for i in range(n_groups)], n)
    y = rng.integers(0, 2, n)
    score = np.clip(rng.beta(2, 3, n) + 0.1 * y + 0.05 * (groups == "g0"), 0, 1)
    return y, score, (score >= 0.5).astype(int), groups


# ------------------------------------------------------------------------------------------- Clopper-Pearson


@pytest.mark.parametrize("n", [1, 2, 7, 30, 100, 1000, 20000])
@pytest.mark.parametrize("alpha", [1e-9, 1e-3, 0.0125, 0.05, 0.4, 0.8])
def test_clopper_pearson_matches_scipy(n, alpha):
    k = np.arange(n + 1) if n <= 100 else np.array([0, 1, 2, 17, n // 3, n // 2, n - 5, n - 1, n])
    for side in ("upper", "lower"):
        ours = ct.clopper_pearson(k, n, alpha, side)
        reference = cp_reference(k, n, alpha, side)
        assert np.abs(ours - reference).max() < 1e-9, side
        # bisection keeps the conservative end of its bracket
        assert (ours >= reference - 1e-12).all() if side == "upper" else (ours <= reference + 1e-12).all()


def test_clopper_pearson_large_n_and_two_sided():
    k, n = np.array([3, 250_000, 999_000]), 1_000_000
    upper = ct.clopper_pearson(k, n, 1e-4, "upper")
    assert np.abs(upper - cp_reference(k, n, 1e-4, "upper")).max() < 1e-9
    lower, upper = ct.clopper_pearson(k, n, 0.05, "two-sided")
    assert np.abs(lower - cp_reference(k, n, 0.025, "lower")).max() < 1e-9
    assert np.abs(upper - cp_reference(k, n, 0.025, "upper")).max() < 1e-9


def test_clopper_pearson_shapes_and_edges():
    value = ct.clopper_pearson(3, 10, 0.05)
    assert isinstance(value, float)
    assert value == pytest.approx(float(stats.beta.isf(0.05, 4, 7)), abs=1e-10)
    assert ct.clopper_pearson(10, 10, 0.05) == 1.0 and ct.clopper_pearson(0, 10, 0.05, "lower") == 0.0
    assert ct.clopper_pearson(0, 0, 0.05, "two-sided") == (0.0, 1.0)
    grid = ct.clopper_pearson(np.array([[0], [5]]), np.array([10, 20, 40]), 0.1)  # broadcasts to (2, 3)
    assert grid.shape == (2, 3)
    assert grid[1, 2] == pytest.approx(float(stats.beta.isf(0.1, 6, 35)), abs=1e-10)
    with pytest.raises(ValueError, match="k must not exceed n .*: k=5, n=4"):
        ct.clopper_pearson(5, 4, 0.05)
    with pytest.raises(ValueError, match="alpha must lie strictly between 0 and 1"):
        ct.clopper_pearson(1, 4, 1.0)
    with pytest.raises(ValueError, match="k must hold non-negative integers; found 1.5"):
        ct.clopper_pearson(1.5, 4, 0.05)
    with pytest.raises(ValueError, match="side must be"):
        ct.clopper_pearson(1, 4, 0.05, side="both")


# ------------------------------------------------------------------------------------------- counts and bounds


def test_gap_counts_hand_example():
    #            group a            group b
    y_true = [1, 1, 0, 0, 1, 0, 0, 0]
    y_pred = [1, 0, 1, 0, 1, 0, 0, 0]
    score = [0.9, 0.4, 0.6, 0.2, 0.7, 0.1, 0.3, 0.2]
    groups = ["a"] * 4 + ["b"] * 4
    dp = ct.gap_counts(y_true, y_pred, groups, "dp")
    assert dp.groups == ("a", "b") and dp.conditions == (None,)
    np.testing.assert_array_equal(dp.rows, [[4, 4]])
    np.testing.assert_array_equal(dp.total, [[2, 1]])
    eo = ct.gap_counts(y_true, y_pred, groups, "eo")
    np.testing.assert_array_equal(eo.rows, [[2, 3], [2, 1]])  # negatives, then positives
    np.testing.assert_array_equal(eo.total, [[1, 0], [1, 1]])
    assert eo.estimate() == pytest.approx(0.5)
    soft = ct.gap_counts(y_true, score, groups, "soft_eo")
    np.testing.assert_allclose(soft.total, [[0.8, 0.6], [1.3, 0.7]])
    np.testing.assert_allclose(soft.total_sq, [[0.4, 0.14], [0.97, 0.49]])
    assert soft.estimate() == pytest.approx(0.2)


@pytest.mark.parametrize("metric", ["dp", "eo", "eopp"])
def test_rate_gap_upper_bound_is_the_union_of_clopper_pearson_bounds(metric):
    y, _, pred, groups = random_rows(600, seed=1)
    counts = ct.gap_counts(y, pred, groups, metric)
    bound = ct.gap_upper_bound(metric, counts, 0.9)
    strata = {"dp": 1, "eopp": 1, "eo": 2}[metric]
    delta = 0.1 / (2 * 3 * strata)
    k, n = counts.total, counts.rows
    upper, lower = cp_reference(k, n, delta, "upper"), cp_reference(k, n, delta, "lower")
    expected = (upper.max(axis=1) - lower.min(axis=1)).max()
    assert bound.upper == pytest.approx(expected, abs=1e-9)
    assert bound.lower == pytest.approx(max(0.0, (lower.max(axis=1) - upper.min(axis=1)).max()), abs=1e-9)
    assert bound.estimate == pytest.approx(METRIC_FUNCTIONS[metric](y, pred, sensitive_features=groups), abs=1e-12)
    assert bound.lower <= bound.estimate < bound.upper and bound.reason is None
    assert float(bound) == bound.upper
    assert ct.gap_upper_bound_from_data(metric, y, pred, groups, 0.9) == bound


@pytest.mark.parametrize("soft_bound", ["hoeffding", "bernstein"])
@pytest.mark.parametrize("metric", ["soft_dp", "soft_eo"])
def test_soft_gap_upper_bound_formulas(metric, soft_bound):
    y, score, _, groups = random_rows(900, seed=2)
    bound = ct.gap_upper_bound_from_data(metric, y, score, groups, 0.95, soft_bound=soft_bound)
    delta = 0.05 / (2 * 3 * (2 if metric == "soft_eo" else 1))
    uppers, lowers = [], []
    for condition in ([None] if metric == "soft_dp" else [0, 1]):
        u, lo = [], []
        for g in ("g0", "g1", "g2"):
            x = score[(groups == g) & ((y == condition) if condition is not None else True)]
            if soft_bound == "hoeffding":
                width = math.sqrt(math.log(1 / delta) / (2 * x.size))
            else:
                log_term = math.log(2 / delta)
                width = math.sqrt(2 * x.var(ddof=1) * log_term / x.size) + 7 * log_term / (3 * (x.size - 1))
            u.append(min(x.mean() + width, 1.0))
            lo.append(max(x.mean() - width, 0.0))
        uppers.append(max(u) - min(lo))
    assert bound.upper == pytest.approx(max(uppers), abs=1e-12)
    assert bound.estimate == pytest.approx(METRIC_FUNCTIONS[metric](y, score, sensitive_features=groups), abs=1e-12)


def test_bound_tightens_with_rows_and_loosens_with_confidence():
    bounds = [ct.gap_upper_bound("dp", ct.GapCounts("dp", ("a", "b"), [n, n], [n // 2, n // 2]), 0.95).upper
              for n in (100, 1000, 10000)]
    assert bounds[0] > bounds[1] > bounds[2] > 0
    counts = ct.GapCounts("dp", ("a", "b"), [1000, 1000], [500, 450])
    assert ct.gap_upper_bound("dp", counts, 0.99).upper > ct.gap_upper_bound("dp", counts, 0.9).upper > 0.05


def test_undefined_gaps_give_nan_with_a_reason_naming_the_group():
    y = np.array([1, 0, 1, 0, 0, 0])
    pred = np.array([1, 0, 0, 1, 1, 0])
    groups = np.array(["a", "a", "a", "a", "b", "b"])  # group b has no positives
    bound = ct.gap_upper_bound_from_data("eopp", y, pred, groups)
    assert math.isnan(bound.upper) and math.isnan(bound.estimate)
    assert bound.reason == "eopp: group 'b' has no rows with y_true=1"
    assert not math.isnan(ct.gap_upper_bound_from_data("dp", y, pred, groups).upper)
    single = ct.gap_upper_bound_from_data("dp", y, pred, ["a"] * 6)
    assert math.isnan(single.upper) and single.reason == "dp needs at least 2 groups; found 1 (only 'a')"
    one_row = ct.gap_upper_bound_from_data("soft_dp", y[:5], np.full(5, 0.5), groups[:5], soft_bound="bernstein")
    assert one_row.reason == "soft_dp: group 'b' has 1 row; the empirical-Bernstein bound needs at least 2"
    with pytest.warns(RuntimeWarning, match="group 'b' has no rows with y_true=1"):
        assert all(math.isnan(v) for v in ct.gap_interval("eo", y, pred, sensitive_features=groups))


def test_a_declared_group_without_rows_makes_the_gap_undefined():
    y, _, pred, groups = random_rows(60, seed=6, n_groups=2)
    bound = ct.gap_upper_bound_from_data("dp", y, pred, groups, all_groups=["g0", "g1", "g2"])
    assert math.isnan(bound.upper) and bound.reason == "dp: group 'g2' has no rows"
    counts = ct.gap_counts(y, pred, groups, "dp", all_groups=["g1", "g0"])
    assert counts.groups == ("g1", "g0")
    np.testing.assert_array_equal(counts.rows, [[(groups == "g1").sum(), (groups == "g0").sum()]])
    with pytest.raises(ValueError, match="groups holds 'g1', which is not one of all_groups"):
        ct.gap_counts(y, pred, groups, "dp", all_groups=["g0"])


def test_bad_input_is_named():
    y, score, pred, groups = random_rows(50, seed=3)
    with pytest.raises(ValueError, match="unknown gap metric 'accuracy'"):
        ct.gap_counts(y, pred, groups, "accuracy")
    with pytest.raises(ValueError, match="y_pred must hold binary 0/1 values"):
        ct.gap_counts(y, score, groups, "dp")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        ct.gap_counts(y, score * 2, groups, "soft_dp")
    with pytest.raises(ValueError, match="confidence must lie strictly between 0 and 1"):
        ct.gap_upper_bound_from_data("dp", y, pred, groups, 1.0)
    with pytest.raises(ValueError, match="made for 'dp', not 'eo'"):
        ct.gap_upper_bound("eo", ct.gap_counts(y, pred, groups, "dp"))
    with pytest.raises(ValueError, match=r"must have shape \(2, 2\)"):
        ct.GapCounts("eo", ("a", "b"), [10, 10], [1, 1])
    with pytest.raises(ValueError, match="total exceeds GapCounts.rows"):
        ct.GapCounts("dp", ("a", "b"), [10, 10], [11, 1])
    with pytest.raises(ValueError, match="soft_bound must be one of"):
        ct.gap_upper_bound_from_data("soft_dp", y, score, groups, soft_bound="bennett")


# ------------------------------------------------------------------------------------------- intervals


@pytest.mark.parametrize("metric", ["dp", "eopp", "soft_eo"])
def test_exact_interval_is_the_union_bound(metric):
    y, score, pred, groups = random_rows(400, seed=4)
    values = score if metric.startswith("soft") else pred
    lo, hi = ct.gap_interval(metric, y, values, sensitive_features=groups, confidence=0.9)
    bound = ct.gap_upper_bound_from_data(metric, y, values, groups, 0.9)
    assert (lo, hi) == (bound.lower, bound.upper)
    assert lo <= bound.estimate <= hi


@pytest.mark.parametrize("metric", ["dp", "eo", "eopp", "soft_dp", "soft_eo"])
def test_bootstrap_interval_matches_a_brute_force_loop(metric):
    y, score, pred, groups = random_rows(120, seed=5)
    values = score if metric.startswith("soft") else pred
    n_boot, seed, confidence = 300, 11, 0.8
    lo, hi = ct.gap_interval(metric, y, values, sensitive_features=groups, confidence=confidence,
                             method="bootstrap", n_boot=n_boot, seed=seed)
    # brute force: resample every (label, group) cell with replacement and evaluate the metric function
    conditions = {"dp": [None], "soft_dp": [None], "eopp": [1], "eo": [0, 1], "soft_eo": [0, 1]}[metric]
    cells = [np.flatnonzero((groups == g) & ((y == c) if c is not None else True))
             for c in conditions for g in sorted(set(groups))]
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(n_boot):
        rows = np.concatenate([cell[rng.integers(0, cell.size, cell.size)] for cell in cells])
        gaps.append(METRIC_FUNCTIONS[metric](y[rows], values[rows], sensitive_features=groups[rows]))
    expected = np.quantile(gaps, [(1 - confidence) / 2, (1 + confidence) / 2])
    assert lo == pytest.approx(expected[0], abs=1e-12) and hi == pytest.approx(expected[1], abs=1e-12)
    assert lo < hi


# ------------------------------------------------------------------------------------------- certification


def counts_with_rates(rates, n=2000):
    return ct.GapCounts("dp", ("a", "b"), [n, n], [round(r * n) for r in rates])


CANDIDATES = [counts_with_rates(r) for r in ([0.30, 0.31], [0.40, 0.40], [0.30, 0.45], [0.50, 0.51])]
# observed gaps 0.01, 0.00, 0.15, 0.01: candidate 2 cannot meet a 0.08 budget


def test_fixed_sequence_certifies_the_prefix_before_the_first_failure():
    result = ct.certify_candidates(CANDIDATES, [1, 0, 2, 3], budget=0.08, confidence=0.9)
    assert result.method == "fixed_sequence" and result.test_confidence == 0.9
    assert result.tested == (1, 0, 2) and result.certified == (1, 0) and result.stopped_at == 2
    expected = [ct.gap_upper_bound("dp", CANDIDATES[i], 0.9).upper for i in (1, 0, 2)]
    assert result.upper_bounds == pytest.approx(expected, abs=0)
    assert result.upper_bounds[0] < 0.08 < result.upper_bounds[2]


def test_bonferroni_tests_the_whole_shortlist_at_a_split_level():
    result = ct.certify_candidates(CANDIDATES, [1, 0, 2, 3], budget=0.08, confidence=0.9, method="bonferroni")
    assert result.test_confidence == pytest.approx(1 - 0.1 / 4)
    assert result.tested == (1, 0, 2, 3) and result.certified == (1, 0, 3) and result.stopped_at is None
    assert result.upper_bounds[3] == ct.gap_upper_bound("dp", CANDIDATES[3], 0.975).upper


def test_bound_function_candidates():
    seen = []

    def bound(index, confidence):
        seen.append((index, confidence))
        return [0.02, 0.04, 0.09][index]

    result = ct.certify_candidates(bound, [0, 1, 2], budget=0.05, confidence=0.95, metric="eo")
    assert result.certified == (0, 1) and result.metric == "eo" and seen == [(0, 0.95), (1, 0.95), (2, 0.95)]
    chosen, certificate = ct.choose_certified(bound, [0, 1, 2], [0.7, 0.8, 0.9], 0.05, metric="eo")
    assert chosen == 1 and certificate.certified and certificate.upper_bound == 0.04
    with pytest.raises(ValueError, match="give metric="):
        ct.certify_candidates(bound, [0], 0.05)


def test_choose_certified_takes_the_most_accurate_certified_candidate():
    accuracy = [0.80, 0.79, 0.95, 0.85]
    chosen, certificate = ct.choose_certified(CANDIDATES, [1, 0, 2, 3], accuracy, budget=0.08, confidence=0.9)
    assert chosen == 0  # candidate 3 is more accurate but untested after the stop at 2; 2 failed
    assert certificate.certified and certificate.candidate == 0 and certificate.message == ""
    assert certificate.upper_bound == ct.gap_upper_bound("dp", CANDIDATES[0], 0.9).upper
    assert certificate.estimate == pytest.approx(0.01)
    record = certificate.to_dict()
    assert {"confidence": 0.9, "metric": "dp", "budget": 0.08, "certified": True}.items() <= record.items()
    chosen, certificate = ct.choose_certified(CANDIDATES, [1, 0, 2, 3], accuracy, 0.08, 0.9, method="bonferroni")
    assert chosen == 3 and certificate.certified and certificate.test_confidence == pytest.approx(0.975)


def test_nothing_certified_reports_the_smallest_bound_and_the_rows_needed():
    order = [2, 0, 1]
    chosen, certificate = ct.choose_certified(CANDIDATES, order, [0.9, 0.8, 0.7, 0.6], budget=0.03, confidence=0.9)
    uppers = {i: ct.gap_upper_bound("dp", CANDIDATES[i], 0.9).upper for i in order}
    assert chosen == min(uppers, key=uppers.get) == 1
    assert not certificate.certified and certificate.upper_bound == uppers[1] > 0.03
    needed = certificate.rows_needed
    assert 2000 < needed < math.inf
    assert f"{uppers[1]:.4f} (candidate 1)" in certificate.message
    assert "stopped at the first candidate of the order, 2" in certificate.message
    assert f"about {needed} validation rows per group" in certificate.message
    # at that many rows per group (observed rates 0.40 and 0.40) the bound meets the budget; at 0.9 times, not
    for n, meets in ((needed, True), (int(needed * 0.9), False)):
        hypothetical = ct.GapCounts("dp", ("a", "b"), [n, n], [round(0.4 * n)] * 2)
        assert (ct.gap_upper_bound("dp", hypothetical, 0.9).upper <= 0.03) is meets


def test_rows_needed_is_infinite_when_the_observed_gap_reaches_the_budget():
    assert ct.rows_needed("dp", CANDIDATES[2], budget=0.1) == math.inf
    chosen, certificate = ct.choose_certified(CANDIDATES[2:3], [0], [0.5], budget=0.1)
    assert chosen == 0 and not certificate.certified
    assert "observed gap 0.1500 already reaches the budget" in certificate.message


def test_certification_input_errors():
    with pytest.raises(ValueError, match="order repeats a candidate"):
        ct.certify_candidates(CANDIDATES, [0, 0], 0.05)
    with pytest.raises(ValueError, match=r"outside 0..3: \[4\]"):
        ct.certify_candidates(CANDIDATES, [0, 4], 0.05)
    with pytest.raises(ValueError, match="method must be one of"):
        ct.certify_candidates(CANDIDATES, [0], 0.05, method="holm")
    with pytest.raises(ValueError, match=r"finite score for every candidate of order; missing or not finite for \[1\]"):
        ct.choose_certified(CANDIDATES, [0, 1], [0.5, float("nan")], 0.05)


def test_split_for_certification_is_stratified():
    rng = np.random.default_rng(0)
    groups = rng.choice(["a", "b", "c"], 501)
    labels = rng.integers(0, 2, 501)
    selection, certification = ct.split_for_certification(groups, labels, fraction=0.3, seed=1)
    np.testing.assert_array_equal(np.sort(np.r_[selection, certification]), np.arange(501))
    for g in "abc":
        for label in (0, 1):
            cell = (groups == g) & (labels == label)
            assert cell[certification].sum() == math.floor(0.3 * cell.sum() + 0.5)
    again = ct.split_for_certification(groups, labels, fraction=0.3, seed=1)
    np.testing.assert_array_equal(again[1], certification)
    assert not np.array_equal(ct.split_for_certification(groups, labels, 0.3, seed=2)[1], certification)
    with pytest.raises(ValueError, match="fraction"):
        ct.split_for_certification(groups, labels, fraction=1.0)
    with pytest.raises(ValueError, match="leaves the certification part empty"):
        ct.split_for_certification(["a", "b"], None, fraction=0.1)


# ------------------------------------------------------------------------------------------- validity


def test_fixed_sequence_error_rate_stays_below_one_minus_confidence():
    """Simulated validation draws: certifying a candidate whose true gap exceeds the budget is rare.

    Candidate 0, tested first, has a true dp gap just above the budget; the
    others are fair. Over 300 draws the family-wise error frequency must stay
    within 1 - C plus three binomial standard errors, while the fair
    candidate 1, when tested first, is certified in most draws.
    """
    rng = np.random.default_rng(0)
    confidence, budget, n, draws = 0.8, 0.12, 600, 300
    true_rates = np.array([[0.30, 0.43], [0.35, 0.35], [0.50, 0.48]])  # gaps 0.13, 0.00, 0.02
    unfair = np.abs(true_rates[:, 0] - true_rates[:, 1]) > budget
    errors = powered = 0
    for _ in range(draws):
        k = rng.binomial(n, true_rates)
        candidates = [ct.GapCounts("dp", ("a", "b"), [n, n], row) for row in k]
        result = ct.certify_candidates(candidates, [0, 1, 2], budget, confidence)
        errors += bool(unfair[list(result.certified)].any())
        powered += ct.certify_candidates(candidates, [1], budget, confidence).certified == (1,)
    limit = (1 - confidence) + 3 * math.sqrt(confidence * (1 - confidence) / draws)
    assert errors / draws <= limit
    assert powered / draws > 0.9


def test_fairlearn_signature_intervals_equal_gap_interval():
    from fairbinn.core import certify

    rng = np.random.default_rng(3)
    y, s = rng.integers(0, 2, 400), rng.choice(["a", "b", "c"], 400)
    scores = rng.random(400)
    predictions = (scores >= 0.5).astype(int)
    for name, metric in (("demographic_parity_difference", "dp"), ("equalized_odds_difference", "eo"),
                         ("equal_opportunity_difference", "eopp"),
                         ("soft_demographic_parity_difference", "soft_dp"),
                         ("soft_equalized_odds_difference", "soft_eo")):
        function = getattr(certify, f"{name}_interval")
        values = scores if metric.startswith("soft_") else predictions
        assert function.__name__ == f"{name}_interval"
        got = function(y, values, sensitive_features=s, confidence=0.9)
        assert got == certify.gap_interval(metric, y, values, sensitive_features=s, confidence=0.9)
        observed = getattr(fm, name)(y, values, sensitive_features=s)
        assert got[0] <= observed <= got[1]
