import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fairbinn  # noqa: E402
from fairbinn.metrics import accuracy, demographic_parity_difference  # noqa: E402

ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
                 "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
                 "native_country", "income"]


WEIGHTS_ARE_NOT_REPEATS = {
    "check_sample_weight_equivalence_on_dense_data":
        "shuffled minibatches and the z-scoring of X differ between weighted and repeated rows",
}


@parametrize_with_checks([fairbinn.FairBiNNClassifier(strategy="erm", epochs=10, batch_size=32, lr=1e-2)],
                         expected_failed_checks=lambda estimator: WEIGHTS_ARE_NOT_REPEATS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def adult_frame(data_dir):
    frame = pd.read_csv(data_dir / "adult" / "adult.data", header=None, names=ADULT_COLUMNS,
                        skipinitialspace=True, na_values="?").dropna()
    frame = frame.drop(columns=["fnlwgt", "education"]).sample(4000, random_state=0).reset_index(drop=True)
    y = (frame.pop("income") == ">50K").astype(int).map({0: "low", 1: "high"})
    return frame, y


def test_dataframe_with_a_sensitive_column_and_fairlearn_metricframe(adult_frame):
    from fairlearn.metrics import MetricFrame, selection_rate

    X, y = adult_frame
    train, test = slice(0, 3000), slice(3000, None)
    erm = fairbinn.FairBiNNClassifier(strategy="erm", epochs=5, sensitive="sex", handle_unknown="ignore")
    erm.fit(X[train], y[train])
    fair = fairbinn.FairBiNNClassifier(strategy="lagrangian", eta=5.0, epochs=5, sensitive="sex",
                                       handle_unknown="ignore")
    fair.fit(X[train], y[train])
    assert list(erm.classes_) == ["high", "low"] and list(fair.groups_) == ["Female", "Male"]
    proba = fair.predict_proba(X[test])
    assert proba.shape == (1000, 2) and np.allclose(proba.sum(axis=1), 1)
    gaps = {}
    for name, model in (("erm", erm), ("fair", fair)):
        pred = model.predict(X[test])
        assert set(pred) <= {"high", "low"}
        positive = (pred == "high").astype(int)
        frame = MetricFrame(metrics={"accuracy": accuracy, "selection_rate": selection_rate},
                            y_true=(y[test] == "high").astype(int), y_pred=positive,
                            sensitive_features=X["sex"][test])
        gaps[name] = frame.difference()["selection_rate"]
        assert gaps[name] == pytest.approx(demographic_parity_difference(
            (y[test] == "high").astype(int), positive, sensitive_features=X["sex"][test]))
        assert frame.overall["accuracy"] == pytest.approx(model.score(X[test], y[test]))
        assert model.score(X[test], y[test]) > 0.75
    assert gaps["fair"] < gaps["erm"] / 2


def test_pipeline_and_grid_search_with_a_fairness_aware_scorer(adult_frame):
    X, y = adult_frame
    X, y = X[:2000], y[:2000]
    numeric = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    categorical = ["workclass", "marital_status", "occupation", "relationship", "race", "sex", "native_country"]
    encode = ColumnTransformer([("num", StandardScaler(), numeric),
                                ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)])
    pipeline = Pipeline([("encode", encode), ("clf", fairbinn.FairBiNNClassifier(strategy="lagrangian", epochs=2))])
    pipeline.fit(X, y, clf__sensitive_features=X["sex"])
    assert pipeline.score(X, y) > 0.7

    def accuracy_minus_dp(estimator, X, y):
        pred = estimator.predict(X)
        return (pred == y).mean() - demographic_parity_difference(y == "high", pred == "high",
                                                                  sensitive_features=X["sex"])

    search = GridSearchCV(fairbinn.FairBiNNClassifier(strategy="lagrangian", epochs=2, sensitive="sex",
                                                      handle_unknown="ignore"),
                          {"eta": [0.0, 5.0]}, scoring=accuracy_minus_dp, cv=2)
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2 and np.isfinite(scores).all()
    assert search.best_params_["eta"] == [0.0, 5.0][int(np.argmax(scores))]
    assert clone(search.best_estimator_).get_params()["eta"] == search.best_params_["eta"]


def test_intersectional_groups_and_arrays():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=300), "sex": rng.choice(["f", "m"], 300),
                      "race": rng.choice(["a", "b", "c"], 300)})
    y = (X["x"] + (X["sex"] == "m") > 0.5).astype(int)
    model = fairbinn.FairBiNNClassifier(epochs=2, sensitive=["sex", "race"], keep_sensitive=False).fit(X, y)
    assert len(model.groups_) == 6 and model.groups_[0] == ("f", "a")
    assert model.n_features_in_ == 1 and list(model.feature_names_in_) == ["x"]
    assert model.predict(X).shape == (300,)
    array_model = fairbinn.FairBiNNClassifier(epochs=2).fit(X[["x"]].to_numpy(), y, sensitive_features=X["sex"])
    assert list(array_model.groups_) == ["f", "m"]


@pytest.mark.parametrize("make, message", [
    (lambda X, y: fairbinn.FairBiNNClassifier().fit(X, y),
     "the bilevel strategy needs the sensitive attribute: pass sensitive_features="),
    (lambda X, y: fairbinn.FairBiNNClassifier(sensitive="age").fit(X, y), r"sensitive column\(s\) \['age'\] not in X"),
    (lambda X, y: fairbinn.FairBiNNClassifier(strategy="erm", epochs=1).fit(X, y).predict(X.assign(c=["zz"] * 40)),
     "column 'c' has category 'zz', unseen in fit"),
    (lambda X, y: fairbinn.FairBiNNClassifier(strategy="erm", epochs=1).fit(X, y).predict(X[["x"]]),
     r"X has columns \['x'\]"),
    (lambda X, y: fairbinn.FairBiNNClassifier(sensitive="c").fit(X, y, sensitive_features=X["c"]), "once"),
    (lambda X, y: fairbinn.FairBiNNClassifier(strategy="erm").fit(X, np.where(np.arange(40) % 7 == 0, np.nan, y)),
     r"^Input y contains NaN \(missing labels\) in 6 of 40 rows; drop those rows or fill in their labels$"),
    (lambda X, y: fairbinn.FairBiNNClassifier(strategy="erm").fit(X, np.array(["lo", None] * 20, dtype=object)),
     r"^Input y contains NaN \(missing labels\) in 20 of 40 rows"),
    (lambda X, y: fairbinn.FairBiNNClassifier(strategy="erm").fit(X, y[:30]), r"^y has 30 labels but X has 40 rows$"),
    (lambda X, y: fairbinn.FairBiNNClassifier().fit(X, y, sensitive_features=X["c"][:39]),
     r"^sensitive_features has 39 rows but X has 40$"),
    (lambda X, y: fairbinn.FairBiNNClassifier().fit(X, y, sensitive_features=X["c"].where(X.x < 0.9)),
     r"^missing values \(NaN\) in 2 of 40 rows of sensitive_features; drop those rows or fill them in$"),
    (lambda X, y: fairbinn.FairBiNNClassifier(sensitive="c", keep_sensitive=False)
     .fit(X.assign(c=X.c.where(X.x < 0.9)), y),
     r"^missing values \(NaN\) in 2 of 40 rows of sensitive column\(s\) \['c'\]"),
    (lambda X, y: fairbinn.FairBiNNClassifier(sensitive="c").fit(X.assign(c=X.c.where(X.x < 0.9)), y),
     r"^column 'c' has missing values in 2 of 40 rows$"),
])
def test_bad_input_is_named(make, message):
    X = pd.DataFrame({"x": np.linspace(-1, 1, 40), "c": ["p", "q"] * 20})
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match=message):
        make(X, y)


def test_fairness_budget_chooses_the_epoch_on_held_out_rows(adult_frame):
    X, y = adult_frame
    kwargs = dict(strategy="lagrangian", eta=2.0, epochs=6, sensitive="sex", handle_unknown="ignore",
                  validation_fraction=0.25)
    free = fairbinn.FairBiNNClassifier(**kwargs).fit(X, y)
    gaps = [r["val_dp"] for r in free.result_.history]
    budget = sorted(gaps)[2]
    fair = fairbinn.FairBiNNClassifier(**kwargs, fairness_budget=budget, confidence=0).fit(X, y)
    assert fair.result_.budget_met is True and fair.result_.val["dp"] <= budget
    assert fair.eta_ == 2.0 and fair.certificate_ is None and fair.search_table_ is None  # a given eta: no search
    meeting = [r for r in fair.result_.history if r["val_dp"] <= budget]
    assert fair.result_.val["accuracy"] == max(r["val_accuracy"] for r in meeting)
    with pytest.raises(ValueError, match="set validation_fraction > 0"):
        fairbinn.FairBiNNClassifier(strategy="lagrangian", epochs=1, sensitive="sex", fairness_budget=0.1).fit(X, y)


def test_unseen_category_is_named_as_a_plain_value():
    X = pd.DataFrame({"flag": [True, False] * 10, "x": np.linspace(0, 1, 20)})
    y = np.array([0, 0, 1, 1] * 5)
    model = fairbinn.FairBiNNClassifier(strategy="erm", epochs=1).fit(X[X.flag], y[X.flag.to_numpy()])
    with pytest.raises(ValueError, match=r"^column 'flag' has category False, unseen in fit$"):
        model.predict(X)
