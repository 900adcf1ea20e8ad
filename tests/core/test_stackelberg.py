"""The stackelberg leader's hypergradients against independent computations (float64), its step,
its stacks and its errors."""

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from fairbinn import FairModel, Trainer, TrainConfig
from fairbinn.core import Batch, DemographicParity, EqualizedOdds, EqualOpportunity
from fairbinn.core.constraints import RateSurrogate
from fairbinn.core.strategies import Stackelberg, _STRATEGIES, create_strategy, is_stackelberg, register_strategy
from synthetic import make_biased_split

ETA = 3.0


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return FairModel(
        encoder=nn.Sequential(nn.Linear(4, 3), nn.Tanh()),
        fairness=nn.Sequential(nn.Linear(3, 3), nn.Tanh()),
        head=nn.Linear(3, 1),
    ).double()


def tiny_batch(seed=0, n=24):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    s = torch.randint(0, 2, (n,), generator=g)
    y = (x[:, 0] + s > 0.5).double()
    return Batch(x, y, s)


def config(**kw):
    return TrainConfig(**{"strategy": "stackelberg", "eta": ETA, "lr": 1e-2, "fairness_lr": 0.5, **kw})


def split_names(model):
    theta = [n for n, _ in model.named_parameters() if not n.startswith("fairness.")]
    phi = [n for n, _ in model.named_parameters() if n.startswith("fairness.")]
    return theta, phi


def losses(model, params, batch, constraint, cfg):
    """Follower and leader losses at ``params`` (a full parameter dict), written out."""
    logits = functional_call(model, params, (batch.inputs,))
    bce = F.binary_cross_entropy_with_logits(logits, batch.y)
    fairness = constraint(torch.sigmoid(logits), batch.y, batch.s, 2)
    follower = ETA * fairness + (bce if cfg.follower_bce else 0)
    leader = bce + ETA * fairness if cfg.leader_penalty else bce
    return follower, leader


def unrolled_leader_loss(model, theta, batch, constraint, cfg):
    """L(theta, phi_k(theta)) with plain (non-differentiable) follower gradient steps."""
    params = {n: p.detach() for n, p in model.named_parameters()}
    params.update(theta)
    _, phi_names = split_names(model)
    for _ in range(cfg.unroll_steps):
        phi = [params[n].clone().requires_grad_() for n in phi_names]
        follower, _ = losses(model, {**params, **dict(zip(phi_names, phi))}, batch, constraint, cfg)
        grads = torch.autograd.grad(follower, phi)
        params.update({n: p.detach() - cfg.fairness_lr * g for n, p, g in zip(phi_names, phi, grads)})
    return losses(model, params, batch, constraint, cfg)[1].item()


@pytest.mark.parametrize("constraint", [DemographicParity(), EqualizedOdds(),
                                        RateSurrogate(EqualOpportunity(), temperature=0.3)])
@pytest.mark.parametrize("changes", [dict(unroll_steps=1), dict(unroll_steps=3, leader_penalty=False),
                                     dict(unroll_steps=2, follower_bce=True)])
def test_unrolled_hypergradient_matches_finite_differences(constraint, changes):
    model, batch, cfg = tiny_model(), tiny_batch(), config(**changes)
    strategy = create_strategy(model, cfg, constraint, num_groups=2)
    got = strategy.hypergradient(batch)
    theta_names, _ = split_names(model)
    theta = {n: p.detach() for n, p in model.named_parameters() if n in theta_names}
    eps = 1e-6
    for name, grad in zip(theta_names, got):
        expected = torch.zeros_like(grad)
        for index in range(grad.numel()):
            step = torch.zeros_like(grad).view(-1)
            step[index] = eps
            up = unrolled_leader_loss(model, {**theta, name: theta[name] + step.view_as(grad)}, batch, constraint, cfg)
            down = unrolled_leader_loss(model, {**theta, name: theta[name] - step.view_as(grad)}, batch, constraint,
                                        cfg)
            expected.view(-1)[index] = (up - down) / (2 * eps)
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6, msg=name)
    # the anticipation matters: the partial gradient d_theta L at the current phi is different
    params = dict(model.named_parameters())
    _, leader = losses(model, params, batch, constraint, cfg)
    partial = torch.autograd.grad(leader, [params[n] for n in theta_names])
    assert max((a - b).abs().max().item() for a, b in zip(got, partial)) > 1e-5  # FD error here ~1e-9


def dense_implicit(model, batch, constraint, cfg):
    """d_theta L - H_{theta phi} [H_{phi phi} + damping I]^-1 d_phi L from dense Jacobians and a linear solve."""
    theta_names, phi_names = split_names(model)
    params = {n: p.detach() for n, p in model.named_parameters()}
    shapes = {n: p.shape for n, p in params.items()}

    def unflatten(names, flat):
        out, start = {}, 0
        for n in names:
            size = shapes[n].numel()
            out[n] = flat[start:start + size].view(shapes[n])
            start += size
        return out

    theta0 = torch.cat([params[n].reshape(-1) for n in theta_names])
    phi0 = torch.cat([params[n].reshape(-1) for n in phi_names])

    def follower_grad(theta, phi):
        def follower(phi_):
            return losses(model, {**unflatten(theta_names, theta), **unflatten(phi_names, phi_)}, batch,
                          constraint, cfg)[0]
        return torch.autograd.functional.jacobian(follower, phi, create_graph=True)

    h_phi_theta, h_phi_phi = torch.autograd.functional.jacobian(follower_grad, (theta0, phi0))

    def leader(theta, phi):
        return losses(model, {**unflatten(theta_names, theta), **unflatten(phi_names, phi)}, batch, constraint,
                      cfg)[1]

    d_theta, d_phi = torch.autograd.functional.jacobian(leader, (theta0, phi0))
    eye = torch.eye(len(phi0), dtype=phi0.dtype)
    v = torch.linalg.solve(h_phi_phi + cfg.cg_damping * eye, d_phi)
    flat = d_theta - h_phi_theta.T @ v
    return [unflatten(theta_names, flat)[n] for n in theta_names], h_phi_phi


@pytest.mark.parametrize("constraint", [DemographicParity(), EqualizedOdds(),
                                        RateSurrogate(DemographicParity(), temperature=0.3)])
@pytest.mark.parametrize("changes", [dict(), dict(leader_penalty=False, follower_bce=True)])
def test_implicit_hypergradient_matches_a_dense_solve(constraint, changes):
    model, batch = tiny_model(), tiny_batch()
    probe = config(hypergradient="implicit", **changes)
    _, hessian = dense_implicit(model, batch, constraint, probe)
    # damping that makes H + damping I positive definite; 12 follower parameters: CG is exact in 12 steps
    damping = max(0.0, -torch.linalg.eigvalsh(hessian).min().item()) + 0.5
    cfg = probe.replace(cg_damping=damping, cg_iters=30)
    expected, _ = dense_implicit(model, batch, constraint, cfg)
    got = create_strategy(model, cfg, constraint, num_groups=2).hypergradient(batch)
    for grad, want in zip(got, expected):
        torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-7)


def test_implicit_hypergradient_of_a_stack_is_each_models_own():
    """One conjugate-gradient step size per model: a stack's hypergradient equals its models' apart."""
    from fairbinn.core.stacked import stack_models

    models = [tiny_model(seed) for seed in (0, 1, 2)]
    batches = [tiny_batch(seed) for seed in (0, 1, 2)]
    etas = torch.tensor([1.0, 3.0, 10.0], dtype=torch.float64)
    cfg = config(hypergradient="implicit", cg_iters=4, cg_damping=0.3)
    stack = stack_models(models)
    stacked = create_strategy(stack, cfg, DemographicParity(), num_groups=2, eta=etas)
    batch = Batch(torch.stack([b.inputs for b in batches]), torch.stack([b.y for b in batches]),
                  torch.stack([b.s for b in batches]))
    got = stacked.hypergradient(batch)
    for i, (model, one) in enumerate(zip(models, batches)):
        alone = create_strategy(model, cfg, DemographicParity(), num_groups=2, eta=float(etas[i]))
        for grad, want in zip(got, alone.hypergradient(one)):
            torch.testing.assert_close(grad[i].reshape(want.shape), want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("order", ["follower_first", "leader_first"])
@pytest.mark.parametrize("hypergradient", ["unrolled", "implicit"])
@pytest.mark.parametrize("follower_optimizer", ["sgd", "adam"])
def test_step_takes_the_hypergradient_with_adam_then_the_follower_step(order, hypergradient, follower_optimizer):
    model, batch = tiny_model(), tiny_batch()
    cfg = config(order=order, hypergradient=hypergradient, fairness_lr=1e-2, follower_optimizer=follower_optimizer)
    strategy = create_strategy(model, cfg, DemographicParity(), num_groups=2)
    # reference: the same step from a copy of the model, written with the public pieces
    ref = tiny_model()
    ref_strategy = create_strategy(ref, cfg, DemographicParity(), num_groups=2)
    leader = torch.optim.Adam(list(ref.leader_parameters()), lr=cfg.lr)
    optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[follower_optimizer]
    follower = optimizer(list(ref.follower_parameters()), lr=cfg.fairness_lr)

    def follower_step():
        follower.zero_grad()
        logits = ref(batch.inputs)
        (ETA * DemographicParity()(torch.sigmoid(logits), batch.y, batch.s, 2)).backward(
            inputs=list(ref.follower_parameters()))
        follower.step()

    def leader_step():
        grads = ref_strategy.hypergradient(batch)
        for p, g in zip(ref.leader_parameters(), grads):
            p.grad = g
        leader.step()
        return torch.sqrt(sum((g * g).sum() for g in grads))

    if order == "follower_first":
        follower_step()
        norm = leader_step()
    else:
        norm = leader_step()
        follower_step()
    record = strategy.step(batch)
    assert set(record) == {"bce", "fairness", "hypergradient_norm"}
    assert record["hypergradient_norm"].item() == pytest.approx(norm.item(), rel=1e-10)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12, msg=name)


def test_settings_are_checked_before_training():
    for changes, message in [
        (dict(unroll_steps=0), "unroll_steps must be an integer >= 1, got 0"),
        (dict(cg_iters=0), "cg_iters must be an integer >= 1, got 0"),
        (dict(cg_damping=-1.0), "cg_damping must be a finite number >= 0, got -1.0"),
        (dict(temperature=-0.1), "temperature must be a finite number > 0, got -0.1"),
        (dict(hypergradient="exact"), r"hypergradient must be one of \('unrolled', 'implicit'\)"),
        (dict(order="simultaneous"), "a stackelberg leader anticipates the follower's response"),
    ]:
        with pytest.raises(ValueError, match=message):
            config(**changes)
    no_block = FairModel(encoder=nn.Linear(4, 3), head=nn.Linear(3, 1))
    with pytest.raises(ValueError, match="the stackelberg strategy needs a fairness block with trainable "
                                         "parameters"):
        Trainer(config(epochs=1, progress=False)).fit(no_block, make_biased_split(40, 0, d=4))


def test_for_strategy_keeps_the_settings_of_the_game_it_plays():
    cfg = config(hypergradient="implicit", cg_iters=3, follower_optimizer="sgd", follower_bce=True,
                 order="leader_first", surrogate="rate")
    bilevel = cfg.for_strategy("bilevel")
    assert (bilevel.follower_optimizer, bilevel.follower_bce, bilevel.order) == ("sgd", True, "leader_first")
    assert (bilevel.hypergradient, bilevel.cg_iters) == ("unrolled", 10)
    erm = cfg.for_strategy("erm")
    assert (erm.follower_optimizer, erm.follower_bce, erm.order, erm.cg_iters) == ("sgd", False, "follower_first",
                                                                                   10)
    assert erm.surrogate == "rate"  # the constraint's setting serves every strategy
    assert cfg.for_strategy("stackelberg") == cfg


def test_a_non_finite_hypergradient_stops_training_with_epoch_and_step():
    @register_strategy("poisoned_stackelberg")
    class Poisoned(Stackelberg):
        steps = 0

        def _hypergradient(self, features, batch):
            grads, bce = super()._hypergradient(features, batch)
            Poisoned.steps += 1
            return ([g * float("nan") for g in grads] if Poisoned.steps == 3 else grads), bce

    try:
        assert is_stackelberg("poisoned_stackelberg")
        train = make_biased_split(200, 0)
        torch.manual_seed(0)
        from fairbinn import build_mlp
        with pytest.raises(FloatingPointError, match=r"diverged in epoch 1, step 3 of 4: non-finite "
                                                     r"train_hypergradient_norm \("):
            Trainer(strategy="poisoned_stackelberg", epochs=2, batch_size=50, progress=False).fit(
                build_mlp(6, (8,)), train)
    finally:
        _STRATEGIES.pop("poisoned_stackelberg")


@pytest.mark.parametrize("changes", [dict(), dict(hypergradient="implicit", cg_iters=3, surrogate="rate",
                                                  constraint="eo", follower_optimizer="sgd")])
def test_trainer_runs_stackelberg(changes):
    from fairbinn import build_mlp

    train, val = make_biased_split(300, 0), make_biased_split(100, 1, name="val")
    torch.manual_seed(0)
    result = Trainer(strategy="stackelberg", eta=1.0, epochs=3, batch_size=50, lr=1e-2, fairness_lr=1e-2,
                     progress=False, **changes).fit(build_mlp(6, (8, 8), num_fairness_layers=1), train, val)
    history = result.history_frame()
    assert [c for c in history.columns if c.startswith("train_") and c != "train_time_s"] == [
        "train_bce", "train_fairness", "train_hypergradient_norm"]
    assert (history["train_hypergradient_norm"] > 0).all()
    assert history["train_bce"].iloc[-1] < history["train_bce"].iloc[0]
