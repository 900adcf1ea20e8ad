import math

import numpy as np
import pandas as pd
import pytest

from fairbinn.search import EtaSearch, gap_levels, refined_etas, search_etas, transition


def _levels(mapping):
    return pd.Series(mapping, dtype=float)


def test_transition_by_hand():
    levels = _levels({0.0: 0.20, 0.01: 0.20, 0.1: 0.19, 1.0: 0.10, 10.0: 0.01, 100.0: 0.0})
    # ~0 is at most 0.1 x 0.20 = 0.02: first at eta 10; ERM's level is at least 0.8 x 0.20 = 0.16: last at 0.1
    assert transition(levels) == (0.1, 10.0)
    # a budget below 0.02 moves ~0 to the budget
    assert transition(levels, budget=0.005) == (0.1, 100.0)
    # no eta reaches ~0: up to the largest eta
    assert transition(_levels({0.0: 0.2, 1.0: 0.19, 10.0: 0.1})) == (1.0, 10.0)
    # even the smallest positive eta has left ERM's level: a decade below it
    assert transition(_levels({0.0: 0.2, 1.0: 0.05, 10.0: 0.0})) == (0.1, 10.0)
    assert transition(_levels({0.0: 0.2, 1.0: 0.0, 10.0: 0.0})) == (0.1, 1.0)
    # nothing to trade (ERM already at 0): the whole range
    assert transition(_levels({0.0: 0.0, 1.0: 0.0, 100.0: 0.0})) == (0.1, 100.0)


def test_gap_levels_take_the_later_half_median_then_the_seed_mean():
    rows = [{"eta": eta, "seed": seed, "epoch": epoch, "val_dp": eta + seed + epoch / 10}
            for eta in (0.0, 1.0) for seed in (0, 1) for epoch in (1, 2, 3, 4)]
    levels = gap_levels(pd.DataFrame(rows))
    # epochs 3 and 4 (later than 4 / 2): median (0.3 + 0.4) / 2 = 0.35 plus eta, plus the seeds' mean 0.5
    assert levels.to_dict() == pytest.approx({0.0: 0.85, 1.0: 1.85})
    with pytest.raises(ValueError, match=r"no column\(s\) \['val_eo'\]"):
        gap_levels(pd.DataFrame(rows), "eo")


def test_refined_etas_are_log_midpoints_strictly_inside():
    etas = refined_etas(0.1, 100.0, 8)
    assert len(etas) == 8 and all(0.1 < e < 100.0 for e in etas)
    assert np.allclose(np.diff(np.log(etas)), math.log(1000) / 8)
    assert etas[0] == pytest.approx(0.1 * 1000 ** (1 / 16))
    assert not set(etas) & {1.0, 10.0}  # never a coarse decade again


def _fake_train(calls, seed):
    """val_dp falls from 0.2 at eta 0 to 0 beyond eta 10; the test columns are noise drawn with ``seed``."""
    rng = np.random.default_rng(seed)

    def train(etas, epochs):
        calls.append((list(etas), epochs))
        rows = [{"eta": eta, "seed": 0, "epoch": epoch, "val_dp": 0.2 / (1 + eta) if eta < 10 else 0.0,
                 "test_dp": rng.random(), "test_accuracy": rng.random()}
                for eta in etas for epoch in range(1, epochs + 1)]
        return pd.DataFrame(rows)

    return train


def test_search_runs_a_short_coarse_pass_then_fills_the_transition():
    calls = []
    table = search_etas(_fake_train(calls, 0), 50)
    (coarse, coarse_epochs), (refined, refined_epochs) = calls
    assert coarse == list(EtaSearch().coarse) and coarse_epochs == 10 and refined_epochs == 50
    # levels 0.2 / (1 + eta): ERM's level (>= 0.16) up to eta 0.1, ~0 (<= 0.02) from eta 10
    assert refined == pytest.approx(refined_etas(0.1, 10.0, 8))
    assert len(set(coarse) | set(refined)) == 16
    assert table["search"].value_counts().to_dict() == {"coarse": 8 * 10, "refined": 8 * 50}
    # the test columns never steer the search
    other = []
    search_etas(_fake_train(other, 1), 50)
    assert other == calls


@pytest.mark.parametrize("kwargs, message", [
    ({"coarse": (1.0,)}, "coarse must hold at least two"),
    ({"coarse": (10.0, 1.0)}, "increasing"),
    ({"coarse": (0.0, -1.0)}, "coarse must hold"),
    ({"refined": 0}, "refined must be a positive integer"),
    ({"coarse_epochs": 0.0}, "coarse_epochs must be in"),
    ({"near_zero": 0.9}, "need 0 < near_zero < level_drop"),
])
def test_bad_search_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EtaSearch(**kwargs)
    with pytest.raises(ValueError, match="metric must be one of dp"):
        search_etas(_fake_train([], 0), 5, metric="accuracy")
