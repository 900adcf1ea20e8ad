"""FairBiNNClassifier's sample weights, and fairlearn's reductions and post-processing wrapped around it."""

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("fairlearn")
from fairlearn.postprocessing import ThresholdOptimizer  # noqa: E402
from fairlearn.reductions import DemographicParity, ExponentiatedGradient  # noqa: E402

import fairbinn  # noqa: E402
from fairbinn.core import strategies  # noqa: E402
from fairbinn.tabular import estimator as estimator_module  # noqa: E402

SMALL = dict(epochs=2, hidden_dims=(16,), lr=1e-2)


@pytest.fixture(scope="module")
def adult_rows(adult):
    """1,500 encoded Adult training rows: features, 0/1 labels and the sex group of each row."""
    n = 1500
    return adult.train.x[:n].numpy(), adult.train.y[:n].numpy().astype(int), adult.train.s[:n].numpy()


def small_table(n=40):
    X = pd.DataFrame({"x": np.linspace(-1, 1, n), "c": ["p", "q"] * (n // 2)})
    return X, np.arange(n) % 2


@pytest.mark.parametrize("weights, message", [
    (lambda n: np.r_[-1.0, np.ones(n - 1)], r"^sample_weight: weights must be >= 0, found -1 at row 0$"),
    (lambda n: np.r_[np.ones(n - 1), np.nan], r"^sample_weight: NaN or infinite weight at row 39 \(nan\); 1 of 40 "),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], r"^sample_weight: NaN or infinite weight at row 0 \(inf\); 1 of 40 "),
    (lambda n: np.ones(n - 10), r"^sample_weight: 30 weights for 40 rows in X$"),
    (lambda n: np.zeros(n), r"^sample_weight: every weight is zero; at least one must be positive$"),
    (lambda n: ["w"] * n, r"^sample_weight must be numeric: could not convert string to float: 'w'$"),
])
def test_bad_sample_weight_is_named(weights, message):
    X, y = small_table()
    with pytest.raises(ValueError, match=message):
        fairbinn.FairBiNNClassifier(strategy="erm", epochs=1).fit(X, y, sample_weight=weights(len(y)))


def test_weights_reach_the_training_rows_only(monkeypatch):
    X, y = small_table()
    weights = np.arange(40) % 3 + 0.5
    splits = []
    fit = estimator_module.Trainer.fit

    def spy(self, model, train, val=None, *args, **kwargs):
        splits.append((train, val))
        return fit(self, model, train, val, *args, **kwargs)

    monkeypatch.setattr(estimator_module.Trainer, "fit", spy)
    model = fairbinn.FairBiNNClassifier(strategy="erm", validation_fraction=0.25, **SMALL)
    model.fit(X, y, sample_weight=pd.Series(weights))
    train, val = splits[-1]
    assert len(train) == 30 and len(val) == 10 and val.w is None  # epoch selection stays unweighted
    column = list(model.encoder_.feature_names_).index("x")  # x is distinct in every row: it names the row
    weight_of = dict(zip(model.encoder_.transform(X)[:, column].astype(np.float32).tolist(), weights))
    assert train.w.tolist() == [weight_of[value] for value in train.x[:, column].tolist()]
    # no sensitive attribute: one group, and no fairness gap is reported from it
    assert list(model.groups_) == [None] and np.isnan(model.result_.val["dp"])
    model.fit(X, y)
    assert splits[-1][0].w is None  # without weights the training split is the unweighted one of before


def test_weights_need_a_given_eta_with_a_budget_and_groups_for_fairness():
    X, y = small_table()
    groups = np.arange(40) // 20
    searched = fairbinn.FairBiNNClassifier(strategy="lagrangian", fairness_budget=0.1, validation_fraction=0.5)
    with pytest.raises(ValueError, match=r"^sample_weight is not supported with the automatic eta search "
                                         r"\(eta=None with a fairness_budget\); give eta=\.\.\.$"):
        searched.fit(X, y, sensitive_features=groups, sample_weight=np.ones(40))
    with pytest.raises(ValueError, match="pass sensitive_features= to fit"):
        fairbinn.FairBiNNClassifier(strategy="lagrangian", eta=1.0, epochs=1).fit(X, y, sample_weight=np.ones(40))


def test_exponentiated_gradient_trains_weighted_fairbinn_models(adult_rows, monkeypatch):
    X, y, sex = adult_rows
    calls, losses = [], []
    fit, bce = fairbinn.FairBiNNClassifier.fit, strategies.Strategy._bce

    def fit_spy(self, X, y, **kwargs):
        calls.append((kwargs, len(losses)))  # the weights fairlearn passes, and where this fit's losses start
        return fit(self, X, y, **kwargs)

    def bce_spy(self, logits, y, weight=None):
        losses.append(weight)
        return bce(self, logits, y, weight)

    monkeypatch.setattr(fairbinn.FairBiNNClassifier, "fit", fit_spy)
    monkeypatch.setattr(strategies.Strategy, "_bce", bce_spy)
    reduction = ExponentiatedGradient(fairbinn.FairBiNNClassifier(strategy="erm", **SMALL), DemographicParity(),
                                      max_iter=8)
    reduction.fit(X, y, sensitive_features=sex)
    assert len(reduction.predictors_) > 1 and len(reduction.weights_) == len(reduction.predictors_)
    assert reduction.weights_.sum() == pytest.approx(1.0) and (reduction.weights_ >= 0).all()
    assert len(calls) > 1 and all(set(kwargs) == {"sample_weight"} for kwargs, _ in calls)  # no sensitive_features
    assert len(losses) == 30 * len(calls)  # 2 epochs of 15 batches per fit
    for kwargs, start in calls:  # the first epoch's batches carry every row's weight once, as fairlearn gave it
        given = np.sort(np.asarray(kwargs["sample_weight"], dtype=np.float32))
        assert np.array_equal(np.sort(torch.cat(losses[start:start + 15]).numpy()), given)
    assert max(np.ptp(np.asarray(kwargs["sample_weight"])) for kwargs, _ in calls) > 0.1  # some non-uniform
    predicted = reduction.predict(X, random_state=0)
    assert predicted.shape == (len(y),) and set(np.unique(predicted)) <= {0, 1}


def test_threshold_optimizer_on_a_fitted_classifier(adult_rows):
    X, y, sex = adult_rows
    model = fairbinn.FairBiNNClassifier(strategy="erm", **SMALL).fit(X, y)
    post = ThresholdOptimizer(estimator=model, constraints="demographic_parity", prefit=True,
                              predict_method="predict_proba")
    post.fit(X, y, sensitive_features=sex)
    predicted = post.predict(X, sensitive_features=sex, random_state=0)
    assert predicted.shape == (len(y),) and set(np.unique(predicted)) <= {0, 1}
    rates = [predicted[sex == g].mean() for g in (0, 1)]
    assert abs(rates[0] - rates[1]) < 0.1  # its thresholds equalise the selection rates on the rows it saw
    assert np.array_equal(model.predict_proba(X), post.estimator_.predict_proba(X))  # the model is unchanged
