"""Dr-Fairness sampler: valid ratios, no drift without a reason, batches drawn to the ratios, trainer integration."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fairbinn.core.data import Split
from fairbinn.core.drfairness import DrFairnessConfig, DrFairnessSampler, _group_gap
from fairbinn.core.model import FairModel
from fairbinn.core.trainer import Trainer
from fairbinn.graph.dataset import FullGraph
from torch_geometric.data import Data

from synthetic import make_biased_split


def _model(d: int = 6) -> FairModel:
    return FairModel(nn.Sequential(nn.Linear(d, 16), nn.ReLU()), nn.Linear(16, 1), nn.Linear(16, 16))


def _bound(train, val, **kwargs) -> DrFairnessSampler:
    sampler = DrFairnessSampler(train, val, **kwargs)
    sampler.bind(_model(train.num_features))
    return sampler


def test_initial_ratios_are_the_real_group_proportions_per_label(biased):
    train, val, _ = biased
    sampler = _bound(train, val)
    for label in (0, 1):
        groups = train.s[train.y == label]
        expected = torch.bincount(groups, minlength=2).double() / len(groups)
        got = torch.tensor([sampler.ratios()[f"ratio_y{label}_g{g}"] for g in (0, 1)], dtype=torch.double)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert "real_fraction_y0" not in sampler.ratios()  # no generated data, no real fraction


def test_ratios_stay_distributions_and_batches_keep_the_label_totals(biased):
    train, val, _ = biased
    sampler = _bound(train, val, batch_size=50, lr=0.2)
    label_share = float(train.y.mean())
    for _ in range(30):
        sampler.update()
        weights = sampler.cell_weights()
        assert (weights >= 0).all()
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-6)
        ratios = sampler.ratios()
        for label in (0, 1):
            assert sum(ratios[f"ratio_y{label}_g{g}"] for g in (0, 1)) == pytest.approx(1.0, abs=1e-6)
        batch = train.y[sampler.draw()]
        assert len(batch) == 50
        assert int(batch.sum()) == round(50 * label_share)  # per-label totals held at the real proportions
    assert sampler.ratios() != pytest.approx(_bound(train, val).ratios(), abs=1e-3)  # lr 0.2 moved them


def test_batches_follow_the_ratios(biased):
    train, val, _ = biased
    sampler = _bound(train, val, batch_size=100)
    with torch.no_grad():
        sampler.alpha.copy_(torch.log(torch.tensor([[0.8, 0.2], [0.3, 0.7]])))
    rows = torch.cat([sampler.draw() for _ in range(300)])
    for label, expected in ((0, 0.2), (1, 0.7)):
        of_label = train.s[rows][train.y[rows] == label]
        assert float(of_label.float().mean()) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("hessian", ["identity", "last_layer"])
def test_identical_groups_do_not_drift(hessian):
    """Group 1 is an exact copy of group 0: every cell's loss gradient is the same, so the ratios stay put."""
    base = make_biased_split(200, 3, groups=1)
    twin = Split(torch.cat([base.x, base.x]), torch.cat([base.y, base.y]),
                 torch.cat([torch.zeros(200, dtype=torch.long), torch.ones(200, dtype=torch.long)]))
    val = make_biased_split(300, 4, groups=2, name="val")
    sampler = _bound(twin, val, lr=0.1, probe_per_cell=400, hessian=hessian)  # the probe: every member of every cell
    start = sampler.alpha.detach().clone()
    for _ in range(20):
        sampler.update()
    torch.testing.assert_close(sampler.alpha.detach(), start, atol=1e-5, rtol=0)


def _minority_problem(n: int, seed: int, minority: float = 0.1) -> Split:
    """Group 1 is rare and follows its own decision rule (harder to learn from few examples)."""
    g = torch.Generator().manual_seed(seed)
    s = (torch.rand(n, generator=g) < minority).long()
    x = torch.randn(n, 5, generator=g)
    w0, w1 = torch.tensor([2.0, -1, 0, 0, 0]), torch.tensor([-1.0, 0, 2, 1, 0])
    logit = torch.where(s[:, None] == 0, x * w0, x * w1).sum(1)
    y = (torch.rand(n, generator=g) < torch.sigmoid(3 * logit)).float()
    return Split(torch.cat([x, s[:, None].float()], 1), y, s)


def _harder_minority(n: int, seed: int) -> Split:
    """The rare-group problem of benchmarks/drfairness_synthetic.py (one generator for the test and the figures)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "drfairness_synthetic.py"
    spec = importlib.util.spec_from_file_location("drfairness_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.harder_minority(n, seed)


@pytest.mark.parametrize("hessian, k", [("identity", 1.0), ("last_layer", 20.0)])
def test_an_undersampled_harder_group_gains_ratio_and_the_eo_gap_falls(hessian, k):
    """The identity version needs a small k; with the last layer's Hessian the default k = 20 works too."""
    train, val, test = _harder_minority(3000, 1), _harder_minority(1000, 2), _harder_minority(20000, 3)
    settings = dict(strategy="erm", epochs=8, lr=1e-2, selection_metric=None, progress=False)
    results = {}
    for sampler in ("uniform", "drfairness"):
        torch.manual_seed(0)
        model = FairModel(nn.Sequential(nn.Linear(5, 16), nn.ReLU()), nn.Linear(16, 1))
        chosen = DrFairnessConfig(lr=3e-2, k=k, hessian=hessian) if sampler == "drfairness" else sampler
        results[sampler] = Trainer(sampler=chosen, **settings).fit(model, train, val, test)
    first, last = results["drfairness"].history[0], results["drfairness"].history[-1]
    for label in (0, 1):
        share = float((train.s[train.y == label] == 1).float().mean())
        assert last[f"ratio_y{label}_g1"] > 2 * share  # the rare group's ratio at least doubled
    assert last["ratio_y1_g1"] >= first["ratio_y1_g1"]
    uniform, adaptive = results["uniform"].test, results["drfairness"].test
    assert uniform["eo"] > 0.1
    assert adaptive["eo"] < uniform["eo"] / 2
    assert adaptive["accuracy"] > uniform["accuracy"] - 0.01


def test_generated_noise_loses_to_real_data():
    """Generated examples with random features and labels: the sampler learns to rely on the real ones."""
    train, val = _minority_problem(1500, 1), _minority_problem(600, 2)
    g = torch.Generator().manual_seed(5)
    noise = Split(torch.randn(1500, 6, generator=g), (torch.rand(1500, generator=g) < 0.5).float(),
                  (torch.rand(1500, generator=g) < 0.5).long())
    model = _model(6)
    trainer = Trainer(strategy="erm", epochs=3, lr=1e-2, sampler=DrFairnessConfig(lr=3e-2), progress=False)
    result = trainer.fit(model, train, val, generated=noise)
    last = result.history[-1]
    assert last["real_fraction_y0"] > 0.6 and last["real_fraction_y1"] > 0.6
    assert [r["real_fraction_y1"] for r in result.history] == sorted(r["real_fraction_y1"] for r in result.history)


def test_noise_with_the_real_labels_loses_to_real_data_with_the_last_layer_hessian():
    """Noise features but the real labels (as noise images would have): both labels' real fractions rise."""
    train, val = _minority_problem(1500, 1), _minority_problem(600, 2)
    g = torch.Generator().manual_seed(5)
    noise = Split(torch.randn(1500, 6, generator=g), train.y.clone(), train.s.clone())
    torch.manual_seed(0)
    trainer = Trainer(strategy="erm", epochs=3, lr=1e-2, sampler=DrFairnessConfig(lr=3e-2, hessian="last_layer"),
                      progress=False)
    history = trainer.fit(_model(6), train, val, generated=noise).history
    for label in (0, 1):
        trace = [r[f"real_fraction_y{label}"] for r in history]
        assert trace == sorted(trace) and trace[-1] > 0.6, trace


def test_last_layer_hypergradient_matches_an_explicit_hessian_solve(biased):
    """<H^-1 grad F, grad loss_c> against torch.func.hessian of the weighted probe loss, per cell."""
    train, val, _ = biased
    torch.manual_seed(0)
    model = _model()
    sampler = DrFairnessSampler(train, val, hessian="last_layer", damping=0.05, probe_per_cell=8)
    sampler.bind(model)
    with torch.no_grad():
        sampler.alpha.copy_(torch.log(torch.tensor([[0.7, 0.3], [0.4, 0.6]])))
    rows = sampler._probe()
    probe = sampler._head_inputs(sampler.pool.batch(rows), torch.device("cpu"))
    val_rows = torch.arange(200)
    val_batch = sampler._head_inputs(sampler.val_pool.batch(val_rows), torch.device("cpu"))
    cells = sampler.cell[rows]
    got, objective = sampler._last_layer_alignment(probe, val_batch, cells)

    layer = model.head
    features = probe[0]  # the head is a single nn.Linear: its inputs are the head inputs
    theta = torch.cat([layer.weight.detach().reshape(-1), layer.bias.detach()])

    def logits(t, h):
        return h @ t[:-1] + t[-1]

    weights = sampler.cell_weights().detach().reshape(-1)
    counts = torch.bincount(cells, minlength=sampler.num_cells).clamp_min(1)

    def train_loss(t):  # the expected minibatch loss: cell means weighted by the cell weights
        losses = nn.functional.binary_cross_entropy_with_logits(logits(t, features), probe[1], reduction="none")
        return ((weights / counts)[cells] * losses).sum()

    def outer(t):
        losses = nn.functional.binary_cross_entropy_with_logits(logits(t, val_batch[0]), val_batch[1],
                                                                reduction="none")
        gaps = []
        for label in (0, 1):
            of_label = val_batch[1] == label
            means = [losses[of_label & (val_batch[2] == g)].mean() for g in (0, 1)]
            gaps.append((means[0] - means[1]).abs())
        return torch.stack(gaps).max() + 20.0 * losses.mean()

    hessian = torch.func.hessian(train_loss)(theta)
    hessian = hessian + 0.05 * hessian.diagonal().mean() * torch.eye(len(theta))
    direction = torch.linalg.solve(hessian, torch.func.grad(outer)(theta))
    expected = torch.stack([
        torch.func.grad(lambda t: nn.functional.binary_cross_entropy_with_logits(
            logits(t, features[cells == c]), probe[1][cells == c]))(theta) @ direction
        if bool((cells == c).any()) else torch.tensor(0.0)
        for c in range(sampler.num_cells)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert float(objective) == pytest.approx(float(outer(theta)), rel=1e-6)


def test_probe_uses_batch_statistics_and_leaves_running_statistics_alone(biased):
    """Batch norm sees the probe as a training step would; the model's state and modes come back unchanged."""
    train, val, _ = biased
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(16)
    model = FairModel(nn.Sequential(nn.Linear(6, 16), norm, nn.ReLU()), nn.Linear(16, 1))
    model.train()
    with torch.no_grad():
        model(train.x[:200])  # running statistics away from their initial values
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sampler = DrFairnessSampler(train, val, probe_per_cell=50)
    sampler.bind(model)
    seen = []
    norm.register_forward_hook(lambda module, args, out: seen.append((module.training, out.detach())))
    sampler.update()
    assert model.training and norm.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    (probe_mode, probe_out), (val_mode, _) = seen  # the probe first, then the validation batch
    assert probe_mode and not val_mode
    torch.testing.assert_close(probe_out.mean(0), norm.bias.detach().expand(16), atol=1e-5, rtol=0)


def _reference_group_gap(losses, y, s, num_groups):
    """The outer objective's gap as first written: a loop over the labels."""
    gaps = [losses.new_zeros(())]
    for label in (0, 1):
        rows = y == label
        counts = torch.bincount(s[rows], minlength=num_groups)
        if int((counts > 0).sum()) < 2:
            continue
        means = torch.zeros(num_groups).index_add(0, s[rows], losses[rows])
        means = (means / counts.clamp_min(1))[counts > 0]
        gaps.append(means.max() - means.min())
    return torch.stack(gaps).max()


@pytest.mark.parametrize("case", ["three groups", "one group in label 0", "one group in all"])
def test_the_outer_gap_is_the_loop_it_replaced(case):
    g = torch.Generator().manual_seed(3)
    y = (torch.rand(40, generator=g) < 0.5).float()
    s = torch.randint(3, (40,), generator=g)
    if case == "one group in label 0":
        s[y == 0] = 2
    elif case == "one group in all":
        s[:] = 1
    losses = torch.rand(40, generator=g, dtype=torch.float32).requires_grad_()
    got = _group_gap(losses, y, s, 3)
    (got_grad,) = torch.autograd.grad(got, losses)
    want = _reference_group_gap(losses, y, s, 3)
    want_grad = torch.autograd.grad(want, losses)[0] if want.requires_grad else torch.zeros_like(losses)  # a constant 0
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got_grad, want_grad, atol=1e-6, rtol=0)


def test_trainer_records_ratios_and_resumes_exactly(biased, tmp_path):
    train, val, test = biased
    settings = dict(strategy="bilevel", lr=1e-2, sampler=DrFairnessConfig(lr=1e-2), progress=False)
    torch.manual_seed(0)
    whole_model = _model()
    whole = Trainer(epochs=4, **settings).fit(whole_model, train, val, test)
    assert {"ratio_y0_g0", "ratio_y1_g1", "outer_objective"} <= set(whole.history[0])
    assert all(math.isfinite(r["outer_objective"]) for r in whole.history)

    torch.manual_seed(0)
    Trainer(epochs=2, checkpoint_dir=str(tmp_path), **settings).fit(_model(), train, val, test)
    resumed_model = _model()
    resumed = Trainer(epochs=4, checkpoint_dir=str(tmp_path), resume=True, **settings).fit(
        resumed_model, train, val, test)
    for a, b in zip(whole_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.history[-1]["ratio_y1_g1"] == whole.history[-1]["ratio_y1_g1"]


def test_a_sampler_given_as_training_data_is_used_as_it_is(biased):
    train, val, _ = biased
    settings = dict(strategy="erm", epochs=1, lr=1e-2, progress=False)
    torch.manual_seed(0)
    configured = Trainer(sampler=DrFairnessConfig(lr=1e-2), **settings).fit(_model(), train, val).history
    torch.manual_seed(0)
    given = Trainer(**settings).fit(_model(), DrFairnessSampler(train, val, lr=1e-2), val).history
    assert [{**r, "train_time_s": 0} for r in given] == [{**r, "train_time_s": 0} for r in configured]


def test_graph_nodes_are_drawn_with_repeats_from_the_training_nodes():
    n = 60
    g = torch.Generator().manual_seed(0)
    s = (torch.arange(n) % 3 == 0).long()
    y = (torch.rand(n, generator=g) < 0.5).long()
    y[:4] = torch.tensor([0, 1, 0, 1])
    data = Data(x=torch.randn(n, 4, generator=g), edge_index=torch.randint(n, (2, 200), generator=g), y=y, sens=s)
    train_mask, val_mask = torch.arange(n) < 40, torch.arange(n) >= 40
    sampler = DrFairnessSampler(FullGraph(data, train_mask), FullGraph(data, val_mask), batch_size=64)

    class GraphEncoder(nn.Module):
        def forward(self, inputs):
            x, _ = inputs
            return x

    sampler.bind(FairModel(GraphEncoder(), nn.Linear(4, 1)))
    batch = next(iter(sampler))
    assert batch.mask.dtype == torch.long and len(batch.mask) == 64
    assert bool(train_mask[batch.mask].all())  # only training nodes
    assert len(torch.unique(batch.mask)) < 64  # 64 draws from 40 nodes repeat some


def test_bad_input_is_refused(biased):
    train, val, _ = biased
    with pytest.raises(ValueError, match="validation data"):
        DrFairnessSampler(train, None)
    with pytest.raises(ValueError, match="k must be"):
        DrFairnessSampler(train, val, k=-1.0)
    with pytest.raises(ValueError, match="generated data has 3 features"):
        DrFairnessSampler(train, val, generated=Split.from_arrays(np.zeros((4, 3), np.float32), [0, 1, 0, 1],
                                                                  [0, 1, 1, 0]))
    with pytest.raises(ValueError, match="separate_batches"):
        Trainer(sampler="drfairness", separate_batches=True, epochs=1, progress=False).fit(_model(), train, val)
    with pytest.raises(ValueError, match="only used by sampler='drfairness'"):
        Trainer(epochs=1, progress=False).fit(_model(), train, val, generated=train)
    with pytest.raises(ValueError, match="sampler must be one of"):
        Trainer(sampler="fairbatch")
    with pytest.raises(RuntimeError, match="bind"):
        next(iter(DrFairnessSampler(train, val)))
    with pytest.raises(ValueError, match="hessian must be one of"):
        DrFairnessSampler(train, val, hessian="newton")
    with pytest.raises(ValueError, match="damping must be"):
        DrFairnessSampler(train, val, hessian="last_layer", damping=0.0)
    with pytest.raises(ValueError, match="ratio_hessian must be one of"):
        Trainer(sampler=DrFairnessConfig(hessian="exact"))
    two_outputs = FairModel(nn.Sequential(nn.Linear(6, 16), nn.ReLU()), nn.Linear(16, 2))
    with pytest.raises(ValueError, match="ends in an nn.Linear with one output"):
        DrFairnessSampler(train, val, hessian="last_layer").bind(two_outputs)
    squashed = FairModel(nn.Sequential(nn.Linear(6, 16), nn.ReLU()), nn.Sequential(nn.Linear(16, 1), nn.Tanh()))
    sampler = DrFairnessSampler(train, val, hessian="last_layer")
    sampler.bind(squashed)
    with pytest.raises(ValueError, match="nothing may follow it"):
        sampler.update()
