"""Certified budget selection: the fixed-sequence selector, its record entries, and training that certifies."""

import itertools
import math
import pickle
import warnings

import numpy as np
import pytest
import torch

import fairbinn
from fairbinn import Trainer, TrainConfig, build_mlp
from fairbinn.core import certify
from fairbinn.core.selection import CERTIFICATION_METHOD, CertifiedSelector, certification_record
from fairbinn.core.runs import SingleRun
from fairbinn.core.stacked import stack_models
from fairbinn.tabular.preprocess import TabularDataset
from synthetic import make_biased_split

GAPS = ["dp", "eo", "eopp", "soft_dp", "soft_eo"]
FAST = dict(epochs=4, batch_size=50, progress=False, lr=1e-2, fairness_lr=1e-3)

# --- CertifiedSelector on hand-made records -----------------------------------------------------------------------

# epoch: (order_bound, val_bound, val_accuracy). Budget 0.1. The test order is epochs 2, 3, 1, 4, 5: epochs 2, 3
# and 1 pass, epoch 4 fails and stops the sequence, so epoch 5 (passing, most accurate) is not certified.
RECORDS = {1: (0.30, 0.05, 0.70), 2: (0.10, 0.08, 0.75), 3: (0.20, 0.09, 0.72), 4: (0.40, 0.15, 0.80),
           5: (0.50, 0.02, 0.90)}
BUDGET = 0.1


def _record(order, bound, accuracy):
    return {"order_bound": order, "val_bound": bound, "val_accuracy": accuracy}


def _feed(selector, records, epochs=None):
    for epoch in epochs or sorted(records):
        selector.update(epoch, _record(*records[epoch]), lambda e=epoch: f"state of epoch {e}")
    return selector


def _offline(candidates, budget):
    """Fixed-sequence testing by hand: ``candidates`` are (key, val_bound, accuracy, name) with a key tuple
    (order_bound with NaN last, tiebreaks..., epoch). The most accurate of the passing prefix (earliest in the
    sequence on ties), else the smallest bound (earliest in the sequence on ties); and whether it is certified."""
    ordered = sorted(candidates, key=lambda c: c[0])
    prefix = list(itertools.takewhile(lambda c: c[1] <= budget, ordered))  # a NaN bound fails too
    if prefix:
        return max(prefix, key=lambda c: c[2])[3], True  # max keeps the first of equal accuracies
    defined = [c for c in ordered if not math.isnan(c[1])]
    return min(defined, key=lambda c: c[1])[3], False  # min keeps the first of equal bounds


def _key(order, *rest):
    return (math.inf if math.isnan(order) else order, *rest)


def test_fixed_sequence_stops_at_the_first_failure_and_takes_the_most_accurate_before_it():
    selector = _feed(CertifiedSelector("accuracy", budget=BUDGET), RECORDS)
    assert selector.selected_epoch == 2 and selector.best_state == "state of epoch 2"
    assert selector.budget_met is True and selector.shortfall() is None
    assert selector.certificate() == {"confidence": 0.95, "metric": "dp", "budget": BUDGET, "upper_bound": 0.08,
                                      "certified": True, "method": CERTIFICATION_METHOD}
    # without epoch 4 the sequence runs on to epoch 5, which is then certified and the most accurate
    without_4 = {e: r for e, r in RECORDS.items() if e != 4}
    assert _feed(CertifiedSelector("accuracy", budget=BUDGET), without_4).selected_epoch == 5
    # the order of arrival does not matter: the sequence is set by order_bound
    for arrival in itertools.permutations(RECORDS):
        assert _feed(CertifiedSelector("accuracy", budget=BUDGET), RECORDS, arrival).selected_epoch == 2, arrival


def test_every_arrival_order_matches_offline_fixed_sequence_testing():
    rng = np.random.default_rng(0)
    for trial in range(30):
        records = {e: (float(rng.choice([0.1, 0.2, 0.3, 0.4, np.nan])), float(rng.choice([0.05, 0.09, 0.12, np.nan])),
                       float(rng.choice([0.6, 0.7, 0.8]))) for e in range(1, 7)}
        arrival = [int(e) for e in rng.permutation(list(records))]
        selector = _feed(CertifiedSelector("accuracy", budget=BUDGET), records, arrival)
        candidates = [(_key(o, e), b, a, e) for e, (o, b, a) in records.items()]
        if all(math.isnan(b) for _, b, _ in records.values()):
            assert selector.chosen is None and selector.selected_epoch == arrival[-1]
            continue
        expected, certified = _offline(candidates, BUDGET)
        assert (selector.selected_epoch, selector.budget_met) == (expected, certified), (trial, records, arrival)


def test_equal_accuracy_keeps_the_earlier_candidate_in_the_sequence():
    records = {1: (0.3, 0.05, 0.8), 2: (0.2, 0.05, 0.8), 3: (0.1, 0.05, 0.7)}
    for arrival in itertools.permutations(records):
        assert _feed(CertifiedSelector("accuracy", budget=BUDGET), records, arrival).selected_epoch == 2
    # equal order_bound: the epoch breaks the tie
    same = {1: (0.2, 0.05, 0.8), 2: (0.2, 0.05, 0.8)}
    for arrival in itertools.permutations(same):
        assert _feed(CertifiedSelector("accuracy", budget=BUDGET), same, arrival).selected_epoch == 1


def test_an_undefined_bound_fails_and_an_undefined_order_goes_last():
    # epoch 1 comes first and its bound is NaN: the sequence stops before epoch 2
    stopped = _feed(CertifiedSelector("accuracy", budget=BUDGET), {1: (0.1, math.nan, 0.9), 2: (0.2, 0.05, 0.7)})
    assert stopped.budget_met is False and stopped.selected_epoch == 2  # the fallback: the smallest (defined) bound
    assert stopped.certificate()["certified"] is False and stopped.certificate()["upper_bound"] == 0.05
    # an undefined order_bound (or none recorded) is tested last
    records = {1: (math.nan, 0.05, 0.95), 2: (0.2, 0.05, 0.70)}
    assert _feed(CertifiedSelector("accuracy", budget=BUDGET), records).selected_epoch == 1
    after_a_failure = {**records, 3: (0.3, 0.5, 0.5)}
    assert _feed(CertifiedSelector("accuracy", budget=BUDGET), after_a_failure).selected_epoch == 2
    unordered = CertifiedSelector("accuracy", budget=BUDGET)
    unordered.update(1, {"val_bound": 0.05, "val_accuracy": 0.95})  # no order_bound at all
    unordered.update(2, _record(0.2, 0.5, 0.5))
    assert unordered.budget_met is False


def test_nothing_certified_keeps_the_smallest_bound_and_says_so():
    records = {1: (0.1, 0.30, 0.9), 2: (0.2, 0.12, 0.8), 3: (0.3, 0.05, 0.7)}  # epoch 1 fails first
    selector = _feed(CertifiedSelector("accuracy", budget=BUDGET, budget_metric="eo", confidence=0.9), records)
    assert selector.budget_met is False and selector.certified_count == 0
    assert selector.selected_epoch == 3 and selector.best_state == "state of epoch 3"
    assert selector.certificate() == {"confidence": 0.9, "metric": "eo", "budget": BUDGET, "upper_bound": 0.05,
                                      "certified": False, "method": CERTIFICATION_METHOD}
    assert selector.shortfall() == ("no checkpoint was certified to meet the eo budget 0.1 at 90% confidence; the "
                                    "smallest validation upper bound on eo was 0.0500 (epoch 3), the checkpoint kept")
    undefined = _feed(CertifiedSelector("accuracy", budget=BUDGET), {1: (0.1, math.nan, 0.9), 2: (0.2, math.nan, 0.8)})
    assert undefined.chosen is None and undefined.selected_epoch == 2 and undefined.best_state is None
    assert math.isnan(undefined.certificate()["upper_bound"])
    assert "the validation bound was undefined (NaN) for every checkpoint" in undefined.shortfall()


RUNS = {  # (eta, seed): records; run (3.0, 0) fails at order 0.25, which stops the other runs' sequence too
    (1.0, 0): {1: (0.10, 0.05, 0.70), 2: (0.30, 0.06, 0.95), 3: (0.20, 0.09, 0.75)},
    (3.0, 0): {1: (0.15, 0.04, 0.72), 2: (0.25, 0.20, 0.90), 3: (0.20, 0.08, 0.75)},
    (3.0, 1): {1: (0.20, 0.07, 0.75), 2: (0.05, 0.09, 0.60)},
}


def _run_selector(run, records):
    selector = CertifiedSelector("accuracy", budget=BUDGET, tiebreak=run)
    selector.owner = run
    return _feed(selector, records)


def test_merged_selectors_choose_like_one_selector_fed_every_candidate():
    one = CertifiedSelector("accuracy", budget=BUDGET)
    for run, records in RUNS.items():  # the run's place in the test order is set through its tiebreak
        one.tiebreak, one.owner = run, run
        _feed(one, records)
    candidates = [(_key(o, *run, e), b, a, (run, e)) for run, records in RUNS.items()
                  for e, (o, b, a) in records.items()]
    expected, certified = _offline(candidates, BUDGET)
    # the 0.75 accuracies tie at order 0.2: (1.0, 0) epoch 3 is tested first; (3.0, 0) epoch 2 stops at 0.25
    assert (expected, certified) == (((1.0, 0), 3), True)
    assert (one.chosen["owner"], one.selected_epoch) == expected
    for runs in itertools.permutations(RUNS):
        merged = CertifiedSelector("accuracy", budget=BUDGET)
        for run in runs:
            merged.merge(_run_selector(run, RUNS[run]))
        assert (merged.chosen["owner"], merged.selected_epoch, merged.budget_met) == (*expected, True), runs
        assert merged.best_state == "state of epoch 3"
    # merging into a run's own selector gives the same
    first = _run_selector((3.0, 1), RUNS[(3.0, 1)])
    first.merge(_run_selector((1.0, 0), RUNS[(1.0, 0)]))
    first.merge(_run_selector((3.0, 0), RUNS[(3.0, 0)]))
    assert (first.chosen["owner"], first.selected_epoch) == expected
    with pytest.raises(ValueError, match="other settings"):
        first.merge(CertifiedSelector("accuracy", budget=0.2))
    # nothing certified, equal smallest bounds in two runs: the fallback is the earlier in the test order, in
    # whichever order the runs are merged
    unmet = {(1.0, 0): {1: (0.3, 0.12, 0.8), 2: (0.1, 0.5, 0.9)}, (3.0, 0): {1: (0.2, 0.12, 0.7)}}
    for runs in itertools.permutations(unmet):
        merged = CertifiedSelector("accuracy", budget=BUDGET)
        for run in runs:
            merged.merge(_run_selector(run, unmet[run]))
        assert (merged.chosen["owner"], merged.selected_epoch, merged.budget_met) == ((3.0, 0), 1, False), runs


def test_state_dict_round_trip_mid_stream_gives_the_same_choice():
    whole = _feed(CertifiedSelector("accuracy", budget=BUDGET), RECORDS)
    for cut in range(1, 5):
        before = _feed(CertifiedSelector("accuracy", budget=BUDGET), RECORDS, list(range(1, cut + 1)))
        state = pickle.loads(pickle.dumps(before.state_dict()))  # plain data
        resumed = CertifiedSelector("accuracy", budget=BUDGET)
        resumed.load_state_dict(state)
        _feed(resumed, RECORDS, list(range(cut + 1, 6)))
        assert (resumed.selected_epoch, resumed.best_state, resumed.certificate()) == \
               (whole.selected_epoch, whole.best_state, whole.certificate()), cut
    with pytest.raises(ValueError, match="confidence"):
        CertifiedSelector("accuracy", budget=BUDGET, confidence=0.9).load_state_dict(whole.state_dict())


def test_selector_settings_are_checked():
    with pytest.raises(ValueError, match="confidence must be in"):
        CertifiedSelector("accuracy", budget=BUDGET, confidence=0.0)
    with pytest.raises(ValueError, match="budget_metric must be one of"):
        CertifiedSelector("accuracy", budget=BUDGET, budget_metric="parity")


# --- certification_record by hand ---------------------------------------------------------------------------------

# validation rows: 3 per group; predictions at threshold 0.5: group 0 -> 1, 1, 0; group 1 -> 1, 0, 1
VAL = (np.array([0, 1, 0, 1, 1, 0]), np.array([0.9, 0.8, 0.2, 0.6, 0.1, 0.7]), np.array([0, 0, 0, 1, 1, 1]))
# training rows: group 0 predicts 1 of 4 positive (rate 0.25), group 1 3 of 4 (0.75)
ORDER = (np.array([0, 1, 0, 1, 1, 1, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.4]),
         np.array([0, 0, 0, 0, 1, 1, 1, 1]))


def _union_bound(k, n, confidence, strata=1):
    """The union bound by hand: per-group Clopper-Pearson bounds at (1 - confidence) / (2 G S)."""
    alpha = (1 - confidence) / (2 * len(k) * strata)
    upper = [certify.clopper_pearson(a, b, alpha, "upper") for a, b in zip(k, n)]
    lower = [certify.clopper_pearson(a, b, alpha, "lower") for a, b in zip(k, n)]
    return min(max(upper) - min(lower), 1.0)


def test_certification_record_of_a_rate_gap_by_hand():
    record = certification_record("dp", 0.9, 0.5, VAL, ORDER, groups=2)
    assert record["val_bound"] == pytest.approx(_union_bound([2, 2], [3, 3], 0.9), abs=1e-10)
    counts = certify.gap_counts(VAL[0], (VAL[1] >= 0.5).astype(int), VAL[2], "dp", all_groups=range(2))
    assert record["val_bound"] == certify.gap_upper_bound("dp", counts, 0.9).upper
    assert record["order_gap"] == pytest.approx(0.5)
    # the training rates put into 3 validation rows per group: round(0.75) = 1 and round(2.25) = 2 positives
    hypothetical = certify.gap_upper_bound_from_data("dp", [0, 1, 0, 1, 1, 0], [1, 0, 0, 1, 1, 0], VAL[2], 0.9)
    assert record["order_bound"] == pytest.approx(hypothetical.upper, abs=1e-12)
    assert record["order_bound"] == pytest.approx(_union_bound([1, 2], [3, 3], 0.9), abs=1e-10)
    # the parts on their own
    assert certification_record("dp", 0.9, 0.5, VAL, None) == {"val_bound": record["val_bound"]}
    assert certification_record("dp", 0.9, 0.5, None, ORDER) == {"order_gap": record["order_gap"]}


def test_certification_record_of_eo_and_a_soft_gap_by_hand():
    eo = certification_record("eo", 0.95, 0.5, VAL, ORDER, groups=2)
    # negatives: group 0 predicts 1 of 2, group 1 1 of 1; positives: group 0 1 of 1, group 1 1 of 2
    hand = max(_union_bound([1, 1], [2, 1], 0.95, strata=2), _union_bound([1, 1], [1, 2], 0.95, strata=2))
    assert eo["val_bound"] == pytest.approx(hand, abs=1e-10)
    # training rows: negatives 1 of 2 in both groups; positives 0 of 2 (group 0) and 2 of 2 (group 1)
    assert eo["order_gap"] == 1.0
    # the training rates in the validation cells: negatives round(0.5 * 2) = 1 of 2 and round(0.5 * 1) = 0 of 1,
    # positives 0 of 1 and 2 of 2
    order = max(_union_bound([1, 0], [2, 1], 0.95, strata=2), _union_bound([0, 2], [1, 2], 0.95, strata=2))
    assert eo["order_bound"] == pytest.approx(order, abs=1e-10)
    soft = certification_record("soft_dp", 0.9, 0.5, VAL, ORDER, groups=2)
    n, delta = 3, (1 - 0.9) / (2 * 2)
    width = math.sqrt(math.log(1 / delta) / (2 * n))  # Hoeffding
    means = [VAL[1][:3].mean(), VAL[1][3:].mean()]
    assert soft["val_bound"] == pytest.approx(min(max(m + width for m in means) - max(min(m - width for m in means),
                                                                                      0.0), 1.0), abs=1e-12)
    train_means = [ORDER[1][:4].mean(), ORDER[1][4:].mean()]  # 0.375 and 0.625
    assert soft["order_gap"] == pytest.approx(0.25)
    upper = [min(m + width, 1.0) for m in train_means]
    lower = [max(m - width, 0.0) for m in train_means]
    assert soft["order_bound"] == pytest.approx(min(max(upper) - min(lower), 1.0), abs=1e-12)


def test_certification_record_is_nan_where_a_group_has_no_rows():
    record = certification_record("dp", 0.9, 0.5, VAL, ORDER, groups=3)  # group 2 has no rows anywhere
    assert all(math.isnan(record[k]) for k in ("val_bound", "order_gap", "order_bound"))
    train_without_1 = tuple(a[:4] for a in ORDER)  # the training rows of group 0 only
    partial = certification_record("dp", 0.9, 0.5, VAL, train_without_1, groups=2)
    assert not math.isnan(partial["val_bound"]) and math.isnan(partial["order_gap"])
    assert math.isnan(partial["order_bound"])


# --- training that certifies ---------------------------------------------------------------------------------------

def model_for(split, seed=0):
    torch.manual_seed(seed)
    return build_mlp(split.num_features, (16, 16), num_fairness_layers=1)


@pytest.fixture
def splits():
    return make_biased_split(400, 0), make_biased_split(300, 1, name="val"), make_biased_split(300, 2, name="test")


def test_fit_certifies_the_budget_by_default(splits):
    train, val, test = splits
    model = model_for(train)
    budget = 0.3
    result = Trainer(strategy="lagrangian", eta=1.0, fairness_budget=budget, **FAST).fit(model, train, val, test)
    for record in result.history:
        assert {"val_bound", "order_gap", "order_bound"} <= record.keys()
        assert record["val_bound"] >= record["val_dp"]  # an upper bound lies above the observed gap
    certificate = result.certificate
    assert set(certificate) - {"rows_needed"} == {"confidence", "metric", "budget", "upper_bound", "certified",
                                                  "method"}
    assert (certificate["confidence"], certificate["metric"], certificate["budget"]) == (0.95, "dp", budget)
    assert isinstance(certificate["certified"], bool) and isinstance(certificate["method"], str)
    assert certificate["certified"] is result.budget_met
    selected = result.history[result.selected_epoch - 1]
    assert certificate["upper_bound"] == selected["val_bound"]
    # the choice is offline fixed-sequence testing over the history
    candidates = [(_key(r["order_bound"], 1.0, 0.0, r["epoch"]), r["val_bound"], r["val_accuracy"], r["epoch"])
                  for r in result.history]
    assert (result.selected_epoch, result.budget_met) == _offline(candidates, budget)
    assert result.budget_met is True  # this data certifies some epoch
    assert certificate["upper_bound"] <= budget and "rows_needed" not in certificate
    # the model holds the chosen epoch: its entries computed again from its predictions are the recorded ones
    trainer = Trainer(**FAST)
    again = certification_record("dp", 0.95, 0.5, trainer.predict(model, val), trainer.predict(model, train),
                                 groups=2)
    assert again == pytest.approx({k: selected[k] for k in again}, abs=1e-12)
    # exact 95% intervals on the selected model's test gaps hold the observed test gaps
    assert sorted(result.test_intervals) == sorted(GAPS)
    for gap, (lo, hi) in result.test_intervals.items():
        assert 0 <= lo <= result.test[gap] <= hi <= 1, gap
    y, scores, s = trainer.predict(model, test)
    assert result.test_intervals["dp"] == pytest.approx(
        list(certify.gap_interval("dp", y, (scores >= 0.5).astype(int), sensitive_features=s)), abs=1e-12)
    assert result.to_dict()["certificate"] == certificate


def test_confidence_zero_is_the_point_estimate_rule(splits):
    train, val, test = splits
    free = Trainer(strategy="lagrangian", eta=1.0, **FAST).fit(model_for(train), train, val, test)
    budget = sorted(r["val_dp"] for r in free.history)[1]  # two epochs meet it
    result = Trainer(strategy="lagrangian", eta=1.0, fairness_budget=budget, confidence=0, **FAST).fit(
        model_for(train), train, val, test)
    assert result.certificate is None and "val_bound" not in result.history[0]
    meeting = [r for r in result.history if r["val_dp"] <= budget]
    best = max(r["val_accuracy"] for r in meeting)
    assert result.selected_epoch == min(r["epoch"] for r in meeting if r["val_accuracy"] == best)
    assert result.budget_met is True
    assert sorted(result.test_intervals) == sorted(GAPS)  # reported with or without a certificate


def test_a_stack_records_the_same_continuous_bounds_as_models_trained_alone():
    train, val, test = make_biased_split(230, 0), make_biased_split(120, 1, name="val"), \
        make_biased_split(120, 2, name="test")
    config = TrainConfig(strategy="lagrangian", epochs=3, batch_size=32, lr=1e-2, progress=False,
                         fairness_budget=0.4, budget_metric="soft_dp")
    pairs = [(0.0, 0), (5.0, 1)]

    def model(seed):
        fairbinn.core.seed_everything(seed)
        return build_mlp(6, (8, 8), num_fairness_layers=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # this few validation rows may certify nothing
        stacked = Trainer(config).fit(stack_models([model(seed) for _, seed in pairs]), train, val, test,
                                      etas=[e for e, _ in pairs], seeds=[s for _, s in pairs])
        for (eta, seed), result in zip(pairs, stacked):
            alone = Trainer(config, eta=eta, seed=seed).fit(model(seed), train, val, test)
            # soft_dp's bounds are continuous in the scores: compared with a tolerance (never the chosen epoch)
            for got, want in zip(result.history, alone.history):
                for key in ("val_bound", "order_gap", "order_bound"):
                    assert got[key] == pytest.approx(want[key], abs=1e-5), (eta, key)
            assert set(result.certificate) == set(alone.certificate)
            assert result.certificate["upper_bound"] == result.history[result.selected_epoch - 1]["val_bound"]
            assert result.selection.tiebreak == (eta, float(seed))


DATA = TabularDataset(name="synthetic", train=make_biased_split(300, 0, name="train"),
                      val=make_biased_split(150, 1, name="val"), test=make_biased_split(150, 2, name="test"),
                      feature_names=[f"x{i}" for i in range(6)], group_names=["a", "b"], sensitive_attribute="group",
                      label="y")


def test_choose_under_budget_certifies_across_every_model():
    budget = 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        choice = fairbinn.choose_under_budget(DATA, "lagrangian", budget, etas=[0.0, 3.0, 30.0], epochs=3,
                                              batch_size=50, lr=1e-2, fairness_lr=1e-3, progress=False)
    table = choice.table
    assert {"val_bound", "order_bound", "order_gap"} <= set(table.columns) and "test_accuracy" not in table.columns
    candidates = [(_key(r.order_bound, r.eta, r.seed, r.epoch), r.val_bound, r.val_accuracy, (r.eta, r.epoch))
                  for r in table.itertuples()]
    (eta, epoch), certified = _offline(candidates, budget)
    assert (choice.eta, choice.epoch, choice.budget_met) == (eta, epoch, certified)
    certificate = choice.certificate
    assert certificate["certified"] is certified and certificate["confidence"] == 0.95
    row = table[(table.eta == eta) & (table.epoch == epoch)]
    assert certificate["upper_bound"] == pytest.approx(row["val_bound"].item())
    assert choice.result.val["accuracy"] == pytest.approx(row["val_accuracy"].item())
    assert sorted(choice.result.test_intervals) == sorted(GAPS)
    for gap, (lo, hi) in choice.result.test_intervals.items():
        assert lo <= choice.result.test[gap] <= hi, gap


# --- configuration and warnings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes,message", [
    (dict(fairness_budget=0.1, confidence=1.0), r"confidence must be a number in \[0, 1\)"),
    (dict(fairness_budget=0.1, confidence=-0.1), r"confidence must be a number in \[0, 1\).*got -0.1"),
    (dict(fairness_budget=0.1, confidence=float("nan")), r"confidence must be a number in \[0, 1\).*got nan"),
    (dict(fairness_budget=0.1, confidence="0.9"), r"confidence must be a number in \[0, 1\).*got '0.9'"),
    (dict(confidence=0.9), r"confidence=0.9 certifies a fairness budget; give fairness_budget"),
    (dict(confidence=0), r"confidence=0 certifies a fairness budget; give fairness_budget"),
    (dict(fairness_budget=0.1, sampler="drfairness"), r"drfairness sampler .* set confidence=0"),
    (dict(fairness_budget=0.1, confidence=0.9, sampler="drfairness"), r"drfairness sampler"),
])
def test_bad_confidence_is_named(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_budget_confidence_and_certifies():
    assert (TrainConfig().budget_confidence, TrainConfig().certifies) == (0.0, False)
    assert (TrainConfig(fairness_budget=0.1).budget_confidence, TrainConfig(fairness_budget=0.1).certifies) == \
           (0.95, True)
    assert TrainConfig(fairness_budget=0.1, confidence=0.8).budget_confidence == 0.8
    point = TrainConfig(fairness_budget=0.1, confidence=0, sampler="drfairness")  # allowed with the point rule
    assert (point.budget_confidence, point.certifies) == (0.0, False)
    assert TrainConfig(sampler="drfairness").certifies is False


def test_too_few_validation_rows_are_said_before_training(monkeypatch):
    def never_trains(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(SingleRun, "train_epoch", never_trains)
    train, val = make_biased_split(200, 0), make_biased_split(30, 1, name="val")
    smallest = int(np.bincount(val.s.numpy().astype(int)).min())
    name = ["a", "b"][int(np.bincount(val.s.numpy().astype(int)).argmin())]
    with pytest.warns(UserWarning, match=rf"the validation rows cannot certify the dp budget 0.1 at 95% confidence "
                                         rf".*group '{name}' has {smallest} rows, and roughly \d+ per group"):
        with pytest.raises(AssertionError, match="training started"):
            Trainer(strategy="lagrangian", fairness_budget=0.1, **FAST).fit(model_for(train), train, val,
                                                                            group_names=["a", "b"])
    # a loose budget, or the point-estimate rule, is not warned about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for settings in (dict(fairness_budget=0.9), dict(fairness_budget=0.1, confidence=0)):
            with pytest.raises(AssertionError, match="training started"):
                Trainer(strategy="lagrangian", **settings, **FAST).fit(model_for(train), train, val)


def test_the_library_rule_certifies_an_unfair_model_no_more_often_than_allowed():
    """Simulation: two groups, candidates with known population DP (one just above the budget, ordered first
    by its training rows); over 300 validation draws the certified choice breaks the budget at most 1 - C plus
    three standard errors of the time."""
    rng = np.random.default_rng(0)
    budget, confidence, rows, draws = 0.1, 0.9, 3000, 300
    gaps = np.array([budget + 0.01, 0.08, 0.05, 0.0])  # population DP of each candidate; the first is unfair
    accuracy = [0.9, 0.85, 0.8, 0.7]

    def draw(n):
        s = rng.integers(0, 2, n)
        y = (rng.random(n) < 0.3).astype(int)
        rates = 0.3 + gaps[:, None] * s[None, :]  # group 1's rate is higher by the candidate's gap
        return y, s, (rng.random((len(gaps), n)) < rates).astype(float)

    def simulate(adversarial):
        errors = chosen = 0
        for _ in range(draws):
            (y, s, values), (y_t, s_t, values_t) = draw(rows), draw(rows)
            if adversarial:  # the unfair candidate looks perfectly fair on its training rows: it is tested first
                values_t[0] = values_t[-1]
            selector = CertifiedSelector("accuracy", budget=budget, budget_metric="dp", confidence=confidence)
            for index in range(len(gaps)):
                record = certification_record("dp", confidence, 0.5, (y, values[index], s),
                                              (y_t, values_t[index], s_t), 2)
                selector.update(index + 1, {**record, "val_accuracy": accuracy[index]})
            if selector.budget_met:
                chosen += 1
                errors += gaps[selector.selected_epoch - 1] > budget
        return errors / draws, chosen / draws

    limit = (1 - confidence) + 3 * np.sqrt(confidence * (1 - confidence) / draws)
    error_rate, _ = simulate(adversarial=True)
    assert error_rate <= limit
    error_rate, chosen_rate = simulate(adversarial=False)  # ordered by their training rows: fair ones first
    assert error_rate <= limit and chosen_rate > 0.9
