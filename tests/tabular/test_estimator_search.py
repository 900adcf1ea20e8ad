"""FairBiNNClassifier with a fairness budget: eta searched (eta=None), certified budgets, sklearn round trips."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

import fairbinn  # noqa: E402
from fairbinn.search import EtaSearch  # noqa: E402
from fairbinn.tabular import build_mlp  # noqa: E402

CERTIFICATE_KEYS = {"confidence", "metric", "budget", "upper_bound", "certified", "method"}


def biased_frame(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Six numeric features and a group column ``s`` ("a" / "b") that the label and feature ``x0`` depend on."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 6))
    x[:, 0] += 1.5 * s
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * x[:, 1] + 1.5 * s - 0.75)))).astype(int)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)]).assign(s=np.where(s == 1, "b", "a"))
    return frame, y


SETTINGS = dict(strategy="lagrangian", epochs=3, lr=1e-2, sensitive="s", validation_fraction=0.4,
                fairness_budget=0.25)


@pytest.fixture(scope="module")
def searched():
    X, y = biased_frame()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fairbinn.FairBiNNClassifier(**SETTINGS).fit(X, y)
    return model, X, y, [str(w.message) for w in caught]


def test_a_budget_searches_eta_and_certifies_the_chosen_model(searched):
    model, X, y, caught = searched
    assert model.eta is None and model.confidence is None  # the parameters as given
    certificate = model.certificate_
    assert CERTIFICATE_KEYS <= set(certificate)
    assert certificate["confidence"] == 0.95 and certificate["metric"] == "dp" and certificate["budget"] == 0.25
    assert certificate["certified"] is True and certificate["upper_bound"] <= 0.25
    assert certificate["upper_bound"] > model.result_.val["dp"]  # the bound lies above the validation gap
    assert model.result_.budget_met is True and not caught
    table = model.search_table_
    assert set(EtaSearch().coarse) <= set(table["eta"]) and table["eta"].nunique() == 16
    assert set(table["search"]) == {"coarse", "refined"}
    assert model.eta_ in set(table["eta"]) and model.eta_ == model.result_.config["eta"]
    chosen = table[(table["eta"] == model.eta_) & (table["epoch"] == model.result_.selected_epoch)]
    assert len(chosen) == 1 and chosen["search"].item() == "refined"
    assert chosen["val_accuracy"].item() == model.result_.val["accuracy"]
    assert model.result_.test is None  # the estimator's own split has no test rows
    # predict / predict_proba are the chosen model's
    features = model.encoder_.transform(X)
    with torch.inference_mode():
        logits = model.model_(torch.from_numpy(features)).numpy().astype(np.float64)
    np.testing.assert_array_equal(model.decision_function(X), logits)
    assert model.result_.val["accuracy"] > 0.75 and model.score(X, y) > 0.75


def test_the_chosen_model_has_the_estimators_architecture():
    X, y = biased_frame(600)
    settings = {**SETTINGS, "epochs": 1, "fairness_budget": 0.3, "hidden_dims": [8, 5], "num_fairness_layers": 2,
                "fairness_layer": "residual"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 240 validation rows cannot certify much
        model = fairbinn.FairBiNNClassifier(**settings).fit(X, y)
    reference = build_mlp(model.encoder_.transform(X).shape[1], (8, 5), num_fairness_layers=2,
                          fairness_layer="residual")
    assert repr(model.model_) == repr(reference)
    assert {k: tuple(v.shape) for k, v in model.model_.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert model.search_table_ is not None


def test_clone_set_params_and_pickle_keep_everything(searched):
    model, X, _, _ = searched
    params = model.get_params()
    assert params["eta"] is None and params["confidence"] is None and params["fairness_budget"] == 0.25
    assert clone(model).get_params() == params
    assert fairbinn.FairBiNNClassifier().set_params(**params).get_params() == params
    assert clone(model.set_params(confidence=0.9)).get_params()["confidence"] == 0.9
    model.set_params(confidence=None)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))  # tolerance 0
    assert loaded.eta_ == model.eta_ and loaded.certificate_ == model.certificate_
    assert loaded.search_table_.equals(model.search_table_)


def test_grid_search_over_lr_with_a_searched_eta():
    X, y = biased_frame(1200)
    estimator = fairbinn.FairBiNNClassifier(**{**SETTINGS, "epochs": 2, "fairness_budget": 0.3})
    search = GridSearchCV(estimator, {"lr": [1e-2, 3e-2]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fold's 240 validation rows may certify nothing: said by a warning
        search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2 and np.isfinite(scores).all()
    assert search.best_params_["lr"] == [1e-2, 3e-2][int(np.argmax(scores))]
    best = search.best_estimator_
    assert best.lr == search.best_params_["lr"] and best.eta is None
    assert best.eta_ in set(best.search_table_["eta"]) and CERTIFICATE_KEYS <= set(best.certificate_)


def test_a_given_eta_is_not_searched():
    X, y = biased_frame(600)
    fixed = fairbinn.FairBiNNClassifier(**{**SETTINGS, "epochs": 2, "eta": 5.0, "fairness_budget": 0.3})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed.fit(X, y)
    assert fixed.eta_ == 5.0 and fixed.search_table_ is None and len(fixed.result_.history) == 2
    assert CERTIFICATE_KEYS <= set(fixed.certificate_) and fixed.certificate_["budget"] == 0.3
    # no budget and no eta: the paper's eta 100, no certificate
    plain = fairbinn.FairBiNNClassifier(strategy="lagrangian", epochs=1, sensitive="s").fit(X, y)
    assert plain.eta_ == 100.0 and plain.certificate_ is None and plain.search_table_ is None
    assert plain.result_.config["eta"] == 100.0


def test_confidence_zero_is_the_point_estimate_rule_without_a_certificate(searched):
    model, X, y, _ = searched
    point = clone(model).set_params(confidence=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        point.fit(X, y)
    assert point.certificate_ is None and point.result_.certificate is None
    assert point.result_.budget_met is True and point.result_.val["dp"] <= 0.25
    assert point.eta_ in set(point.search_table_["eta"]) and not caught
    # every checkpoint was a candidate: the chosen one is the most accurate within the budget
    within = point.search_table_[point.search_table_["val_dp"] <= 0.25]
    assert point.result_.val["accuracy"] == within["val_accuracy"].max()


def test_nothing_certified_still_fits_and_warns():
    X, y = biased_frame(600)
    model = fairbinn.FairBiNNClassifier(**{**SETTINGS, "epochs": 1, "fairness_budget": 0.01})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    said = [str(w.message) for w in caught]
    assert len(said) == 2
    assert said[0].startswith("lagrangian: the validation rows cannot certify the dp budget 0.01 at 95% confidence")
    assert "no checkpoint was certified to meet the dp budget 0.01 at 95% confidence" in said[1]
    assert model.certificate_["certified"] is False and model.certificate_["upper_bound"] > 0.01
    assert model.certificate_["rows_needed"] > 240  # more validation rows per group than the split has
    assert model.result_.budget_met is False and model.predict(X).shape == (600,)


@pytest.mark.parametrize("settings, message", [
    ({"confidence": 1.0}, r"confidence must be a number in \[0, 1\) \(0: the point-estimate rule\), got 1.0"),
    ({"confidence": -0.5}, r"confidence must be a number in \[0, 1\).*got -0.5"),
    ({"confidence": "high"}, r"confidence must be a number in \[0, 1\).*got 'high'"),
    ({"confidence": True}, r"confidence must be a number in \[0, 1\).*got True"),
    ({"confidence": 0.9, "fairness_budget": None}, r"confidence=0.9 certifies a fairness budget; give fairness_budget"),
    ({"eta": -1.0}, "eta"),
    ({"eta": "auto"}, "eta"),
])
def test_bad_confidence_or_eta_is_named(settings, message):
    X, y = biased_frame(100)
    with pytest.raises(ValueError, match=message):
        fairbinn.FairBiNNClassifier(**{**SETTINGS, **settings}).fit(X, y)
