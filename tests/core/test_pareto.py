import math

import numpy as np
import pandas as pd
import pytest

from fairbinn.core.pareto import accuracy_at_budgets, area_over_curve, pareto_front

POINTS = np.array([
    # accuracy, unfairness
    [0.80, 0.02],  # 0 front
    [0.85, 0.10],  # 1 front
    [0.78, 0.05],  # 2 dominated by 0
    [0.85, 0.12],  # 3 dominated by 1 (same accuracy, less fair)
    [0.70, 0.00],  # 4 front
    [0.80, 0.02],  # 5 equal to 0: kept
    [np.nan, 0.0],  # 6 never on the front
])


def test_pareto_front_by_hand():
    assert pareto_front(POINTS).tolist() == [4, 0, 5, 1]
    assert pareto_front([[0.5, 0.5]]).tolist() == [0]
    assert pareto_front(np.empty((0, 2))).tolist() == []


def test_pareto_front_of_a_frame_keeps_rows():
    frame = pd.DataFrame(POINTS, columns=["acc", "gap"]).assign(eta=range(7))
    front = pareto_front(frame, accuracy="acc", unfairness="gap")
    assert front["eta"].tolist() == [4, 0, 5, 1]
    with pytest.raises(ValueError, match=r"no column\(s\) \['dp'\]"):
        pareto_front(frame, accuracy="acc")
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        pareto_front(np.zeros((3, 3)))


def test_area_over_curve_by_hand():
    # reference (0.70, 0.12): front (0.70, 0.00) adds nothing above a_ref; (0.80, 0.02) spans u 0.02..0.10
    # at height 0.10; (0.85, 0.10) spans 0.10..0.12 at height 0.15
    expected = (0.10 - 0.02) * 0.10 + (0.12 - 0.10) * 0.15
    assert area_over_curve(POINTS) == pytest.approx(expected)
    assert area_over_curve(POINTS, reference=(0.70, 0.12)) == pytest.approx(expected)
    # a wider corner adds the rectangles below and right of the front
    wider = (0.0 - 0.0) + (0.02 - 0.00) * 0.05 + (0.10 - 0.02) * 0.15 + (0.20 - 0.10) * 0.20
    assert area_over_curve(POINTS, reference=(0.65, 0.20)) == pytest.approx(wider)
    # points outside the corner count for nothing; no points, no area
    assert area_over_curve([[0.6, 0.5]], reference=(0.7, 0.2)) == 0.0
    assert area_over_curve(np.empty((0, 2))) == 0.0


def test_a_better_front_has_a_larger_area():
    worse = [[0.80, 0.05], [0.84, 0.15]]
    better = [[0.81, 0.04], [0.84, 0.15]]
    reference = (0.75, 0.20)
    assert area_over_curve(better, reference) > area_over_curve(worse, reference)


def test_budgets_choose_on_validation_and_report_test():
    table = pd.DataFrame({
        "strategy": ["bilevel"] * 4 + ["lagrangian"],
        "seed": [0, 0, 0, 1, 0],
        "eta": [0.0, 10.0, 100.0, 10.0, 10.0],
        "val_accuracy": [0.85, 0.83, 0.80, 0.82, 0.70],
        "val_dp": [0.15, 0.04, 0.01, 0.03, 0.20],
        # eta 100 has the best test accuracy among the fair ones, but the choice is on validation
        "test_accuracy": [0.84, 0.81, 0.90, 0.80, 0.71],
        "test_dp": [0.16, 0.05, 0.02, 0.04, 0.21],
    })
    chosen = accuracy_at_budgets(table, budgets=[0.01, 0.05, 0.2])
    assert len(chosen) == 3 * 3  # (bilevel, 0), (bilevel, 1), (lagrangian, 0) x 3 budgets
    row = chosen[(chosen.strategy == "bilevel") & (chosen.seed == 0) & (chosen.budget == 0.05)].iloc[0]
    assert row["eta"] == 10.0 and row["test_accuracy"] == 0.81 and row["found"]
    row = chosen[(chosen.strategy == "bilevel") & (chosen.seed == 0) & (chosen.budget == 0.01)].iloc[0]
    assert row["eta"] == 100.0 and row["test_accuracy"] == 0.90
    row = chosen[(chosen.strategy == "lagrangian") & (chosen.budget == 0.05)].iloc[0]
    assert not row["found"] and math.isnan(row["test_accuracy"])
    row = chosen[(chosen.strategy == "bilevel") & (chosen.seed == 1) & (chosen.budget == 0.2)].iloc[0]
    assert row["eta"] == 10.0 and row["test_dp"] == 0.04
    with pytest.raises(ValueError, match="val_soft_dp"):
        accuracy_at_budgets(table, fairness="soft_dp")
