import numpy as np
import pytest
import torch

from fairbinn import metrics as fm
from fairbinn.core.constraints import (
    DemographicParity,
    EqualizedOdds,
    EqualOpportunity,
    ReleasedDemographicParity,
    create_constraint,
    group_gaps,
)


def t(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def test_demographic_parity_is_squared_max_minus_min_of_group_means():
    probs = t([0.9, 0.7, 0.2, 0.4, 0.5, 0.6])
    groups = t([0, 0, 1, 1, 2, 2], torch.long)
    y = t([1, 0, 1, 0, 1, 0])
    # group means 0.8, 0.3, 0.55 -> gap 0.5
    assert DemographicParity()(probs, y, groups).item() == pytest.approx(0.25)
    assert DemographicParity(norm="absolute")(probs, y, groups).item() == pytest.approx(0.5)


def test_absolute_gap_equals_soft_metric_on_random_data():
    rng = np.random.default_rng(0)
    probs, y, s = rng.random(300), rng.integers(0, 2, 300), rng.integers(0, 4, 300)
    args = (t(probs), t(y), t(s, torch.long))
    assert DemographicParity(norm="absolute")(*args).item() == pytest.approx(
        fm.soft_demographic_parity_difference(y, probs, sensitive_features=s), abs=1e-6
    )
    assert EqualizedOdds(norm="absolute")(*args).item() == pytest.approx(
        fm.soft_equalized_odds_difference(y, probs, sensitive_features=s), abs=1e-6
    )


def test_equalized_odds_and_opportunity_hand_computed():
    probs = t([0.9, 0.5, 0.4, 0.2, 0.6, 0.6, 0.9, 0.3])
    y = t([1, 1, 0, 0, 1, 1, 0, 0])
    groups = t([0, 0, 0, 0, 1, 1, 1, 1], torch.long)
    # positives: group means 0.7 vs 0.6 -> 0.1 ; negatives: 0.3 vs 0.6 -> 0.3
    assert EqualOpportunity(norm="absolute")(probs, y, groups).item() == pytest.approx(0.1)
    assert EqualizedOdds(norm="absolute")(probs, y, groups).item() == pytest.approx(0.3)


def test_absent_group_contributes_nothing():
    probs = t([0.9, 0.1, 0.5])
    y = t([1, 0, 1])
    groups = t([0, 0, 2], torch.long)  # group 1 of 3 is absent
    assert DemographicParity(norm="absolute")(probs, y, groups, num_groups=3).item() == pytest.approx(0.0)
    groups = t([0, 0, 1], torch.long)
    assert DemographicParity(norm="absolute")(probs, y, groups, num_groups=5).item() == pytest.approx(0.0)


@pytest.mark.parametrize("constraint", [DemographicParity(), EqualizedOdds(), EqualOpportunity()])
def test_fewer_than_two_groups_gives_zero_loss_and_finite_zero_gradient(constraint):
    probs = t([0.3, 0.8, 0.6]).requires_grad_()
    y = t([1, 0, 1])
    groups = t([1, 1, 1], torch.long)
    loss = constraint(probs, y, groups, num_groups=2)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(probs.grad, torch.zeros(3))


def test_gradient_pulls_group_means_together():
    probs = t([0.9, 0.8, 0.2, 0.1]).requires_grad_()
    groups = t([0, 0, 1, 1], torch.long)
    DemographicParity()(probs, t([1, 1, 0, 0]), groups).backward()
    # d(gap^2)/dp = 2 * gap * (+1/2 for the high group, -1/2 for the low group), gap = 0.7
    np.testing.assert_allclose(probs.grad.numpy(), [0.7, 0.7, -0.7, -0.7], rtol=1e-6)


def test_group_gaps_rows_are_independent():
    values = t([0.2, 0.4, 1.0, 0.0, 0.5])
    cells = t([0, 1, 2, 3, 3], torch.long)  # row 0: groups 0, 1 ; row 1: groups 0, 1
    gaps = group_gaps(values, cells, num_rows=2, num_groups=2)
    np.testing.assert_allclose(gaps.numpy(), [0.2, 0.75])


def test_create_constraint_by_name_and_errors():
    assert isinstance(create_constraint("DP"), DemographicParity)
    assert isinstance(create_constraint("equalized_odds", norm="absolute"), EqualizedOdds)
    custom = EqualOpportunity()
    assert create_constraint(custom) is custom
    with pytest.raises(ValueError, match="unknown fairness constraint 'parity'"):
        create_constraint("parity")
    with pytest.raises(ValueError, match="norm"):
        DemographicParity(norm="l3")
    with pytest.raises(ValueError, match="equal length"):
        DemographicParity()(t([0.1, 0.2]), t([1.0]), t([0, 1], torch.long))


def _reference_gaps(values, cells, num_rows, num_groups):
    """max - min of cell means per row, written the obvious way."""
    out = []
    for row in range(num_rows):
        means = [values[cells == row * num_groups + g].mean() for g in range(num_groups)
                 if (cells == row * num_groups + g).any()]
        out.append(torch.stack(means).max() - torch.stack(means).min() if len(means) >= 2 else values.sum() * 0)
    return torch.stack(out)


@pytest.mark.parametrize("num_rows, num_groups", [(1, 2), (1, 9), (2, 3)])
def test_group_gaps_value_and_gradient_match_direct_computation(num_rows, num_groups):
    g = torch.Generator().manual_seed(num_groups)
    values = torch.rand(60, dtype=torch.float64, generator=g).requires_grad_()
    cells = torch.randint(0, num_rows * num_groups, (60,), generator=g)
    cells[cells == 1] = 0  # leave one cell empty
    weights = torch.arange(1.0, num_rows + 1, dtype=torch.float64)
    ours = group_gaps(values, cells, num_rows, num_groups)
    reference = _reference_gaps(values, cells, num_rows, num_groups)
    torch.testing.assert_close(ours, reference)
    (grad_ours,) = torch.autograd.grad((ours * weights).sum(), values)
    (grad_ref,) = torch.autograd.grad((reference * weights).sum(), values)
    torch.testing.assert_close(grad_ours, grad_ref)


def _released_code_loss(probs, groups, classes, alpha=1.0):
    """The released code's DemographicParityLoss, rebuilt from its description: constraint rows
    M mu with mu = (group means..., batch mean), a matrix whose every row refers to the first
    class, and alpha times the mean of relu(M mu) squared over its 2K rows."""
    k = len(classes)
    matrix = torch.zeros(2 * k, k + 1)
    for i in range(2 * k):
        column = 0  # as released: i % 2 - 1 and i % 2 both land on column 0 for the group means
        matrix[i, column], matrix[i, -1] = (1.0, -1.0) if i % 2 == 0 else (-1.0, 1.0)
    mu = torch.stack([probs[groups == c].mean() for c in classes] + [probs.mean()])
    return alpha * torch.relu(matrix @ mu).square().mean()


def test_released_code_loss_value_and_gradient():
    generator = torch.Generator().manual_seed(1)
    probs = torch.rand(60, generator=generator, requires_grad=True)
    groups = torch.randint(0, 3, (60,), generator=generator)
    y = torch.randint(0, 2, (60,), generator=generator)
    ours = ReleasedDemographicParity()(probs, y, groups, 3)
    reference = _released_code_loss(probs, groups, [0, 1, 2])
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)
    assert ours.item() == pytest.approx(0.5 * (probs[groups == 0].mean() - probs.mean()).item() ** 2, rel=1e-5)
    mine, = torch.autograd.grad(ours, probs)
    theirs, = torch.autograd.grad(reference, probs)
    torch.testing.assert_close(mine, theirs, atol=1e-7, rtol=1e-4)
    # each group against the batch mean, the formula the released class was written for
    every = ReleasedDemographicParity(groups="all", norm="absolute")(probs, y, groups, 3)
    direct = sum((probs[groups == g].mean() - probs.mean()).abs() for g in range(3)) / 6
    assert every.item() == pytest.approx(direct.item(), rel=1e-5)
    torch.testing.assert_close(torch.autograd.grad(every, probs)[0], torch.autograd.grad(direct, probs)[0])


def test_released_code_loss_on_adult_scale_and_rows():
    # two groups, men (our group 1) two thirds of the batch: (m_men - m) = (1/3)(m_men - m_women)
    probs = t([0.2] * 10 + [0.5] * 20)
    groups = t([0] * 10 + [1] * 20, torch.long)
    y = torch.zeros(30)
    gap = 0.3
    assert ReleasedDemographicParity(reference_group=1)(probs, y, groups).item() == pytest.approx(gap ** 2 / 18)
    assert ReleasedDemographicParity()(probs, y, groups).item() == pytest.approx(gap ** 2 * 2 / 9)
    assert ReleasedDemographicParity().gap(probs, y, groups, 2).item() == pytest.approx(0.2)
    stacked = torch.stack([probs, probs.flip(0)])
    rows = create_constraint("released_dp")(stacked, torch.zeros(2, 30), torch.stack([groups, groups]), 2)
    assert rows.shape == (2,) and rows[0].item() == pytest.approx(gap ** 2 * 2 / 9)
    with pytest.raises(ValueError, match="groups must be 'reference' or 'all'"):
        ReleasedDemographicParity(groups="some")
    with pytest.raises(ValueError, match="reference_group must be an integer >= 0"):
        ReleasedDemographicParity(reference_group=-1)


def test_rate_surrogate_is_the_constraint_on_sigmoid_of_scaled_scores():
    from fairbinn.core.constraints import RateSurrogate

    probs = t([0.9, 0.7, 0.2, 0.4, 0.55, 0.45])
    y, groups = t([1, 0, 1, 0, 1, 0]), t([0, 0, 1, 1, 2, 2], torch.long)
    for inner in (DemographicParity(), EqualizedOdds(norm="absolute"), EqualOpportunity()):
        rate = RateSurrogate(inner, temperature=0.2, threshold=0.6)
        expected = inner(torch.sigmoid((probs - 0.6) / 0.2), y, groups)
        assert rate(probs, y, groups).item() == pytest.approx(expected.item(), abs=1e-7)
        assert rate.norm == inner.norm
        rows = rate(probs.expand(2, -1), y.expand(2, -1), groups.expand(2, -1), 3)  # a stack's rows
        assert rows.tolist() == pytest.approx([expected.item()] * 2, abs=1e-7)


@pytest.mark.parametrize("name,metric", [("dp", "demographic_parity_difference"),
                                         ("eo", "equalized_odds_difference"),
                                         ("eopp", "equal_opportunity_difference")])
def test_rate_surrogate_approaches_the_thresholded_gap(name, metric):
    rng = np.random.default_rng(0)
    probs, y, s = rng.random(400), rng.integers(0, 2, 400), rng.integers(0, 3, 400)
    probs[np.abs(probs - 0.5) < 1e-2] = 0.7  # no score at the threshold itself, where the surrogate is 1/2
    hard = getattr(fm, metric)(y, (probs >= 0.5).astype(int), sensitive_features=s)
    args = (t(probs, torch.float64), t(y, torch.float64), t(s, torch.long))
    soft = create_constraint(name, "absolute")(*args).item()
    rate = create_constraint(name, "absolute", surrogate="rate", temperature=1e-4)(*args).item()
    assert rate == pytest.approx(hard, abs=1e-6)
    assert abs(soft - hard) > 0.01  # the score's gap is another quantity


def test_rate_surrogate_settings():
    from fairbinn import TrainConfig
    from fairbinn.core.constraints import RateSurrogate

    built = TrainConfig(constraint="eo", surrogate="rate", temperature=0.05, threshold=0.3).build_constraint()
    assert isinstance(built, RateSurrogate) and isinstance(built.constraint, EqualizedOdds)
    assert (built.temperature, built.threshold) == (0.05, 0.3)
    assert repr(built) == "RateSurrogate(EqualizedOdds(norm='squared'), temperature=0.05, threshold=0.3)"
    assert isinstance(TrainConfig(constraint=DemographicParity(), surrogate="rate").build_constraint(), RateSurrogate)
    assert type(TrainConfig().build_constraint()) is DemographicParity
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        TrainConfig(surrogate="rate", temperature=0)
    with pytest.raises(ValueError, match=r"surrogate must be one of \('score', 'rate'\), got 'hard'"):
        TrainConfig(surrogate="hard")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        RateSurrogate(DemographicParity(), temperature=-1)


def test_which_constraints_read_the_labels():
    from fairbinn.core.constraints import RateSurrogate, create_constraint

    reads = {name: create_constraint(name).uses_labels for name in ("dp", "eo", "eopp", "released_dp")}
    assert reads == {"dp": False, "eo": True, "eopp": True, "released_dp": False}
    assert not RateSurrogate(create_constraint("dp")).uses_labels
    assert RateSurrogate(create_constraint("eopp")).uses_labels
    # a label-free constraint gives the same loss whatever the labels, -1 (unlabelled) included
    probs, groups = torch.tensor([0.2, 0.9, 0.4, 0.7]), torch.tensor([0, 0, 1, 1])
    dp = create_constraint("dp")
    assert dp(probs, torch.tensor([-1.0, -1.0, 1.0, 0.0]), groups, 2).item() == pytest.approx(
        dp(probs, torch.tensor([1.0, 0.0, 0.0, 1.0]), groups, 2).item())
