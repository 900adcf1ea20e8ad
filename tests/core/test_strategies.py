"""Each strategy's step equals a plain, unoptimised PyTorch reference computation."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fairbinn import FairModel, TrainConfig
from fairbinn.core import Batch, DemographicParity
from fairbinn.core.strategies import create_strategy

ETA = 3.0


def make_model():
    torch.manual_seed(0)
    return FairModel(
        encoder=nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU()),
        fairness=nn.Sequential(nn.Linear(8, 8), nn.ReLU()),
        head=nn.Linear(8, 1),
    )


def make_batch(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 5, generator=g)
    s = torch.randint(0, 3, (32,), generator=g)
    y = (x[:, 0] + s > 1).float()
    return Batch(x, y, s)


def config(**kw):
    return TrainConfig(eta=ETA, lr=1e-2, fairness_lr=5e-3, **kw)


def reference_optimizers(model, cfg):
    leader = torch.optim.Adam(list(model.encoder.parameters()) + list(model.head.parameters()), lr=cfg.lr)
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[cfg.follower_optimizer]
    follower = kind(model.fairness.parameters(), lr=cfg.fairness_lr)
    return leader, follower


def fairness_loss(model, batch):
    return DemographicParity()(torch.sigmoid(model(batch.inputs)), batch.y, batch.s, 3)


def reference_follower(model, optimizer, batch):
    model.zero_grad()
    (ETA * fairness_loss(model, batch)).backward()
    optimizer.step()  # only the fairness block moves
    model.zero_grad()


def reference_leader(model, optimizer, batch, penalty=False):
    model.zero_grad()
    loss = F.binary_cross_entropy_with_logits(model(batch.inputs), batch.y)
    if penalty:
        loss = loss + ETA * fairness_loss(model, batch)
    loss.backward()
    optimizer.step()
    model.zero_grad()


def assert_same_parameters(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def run_steps(cfg, batches, follower_batches=None):
    model = make_model()
    strategy = create_strategy(model, cfg, DemographicParity(), num_groups=3)
    for i, batch in enumerate(batches):
        strategy.step(batch, None if follower_batches is None else follower_batches[i])
    return model


def run_reference(cfg, batches, follower_batches=None):
    """The bilevel game written out: two Adam optimizers, full backward passes, zeroed gradients."""
    ref = make_model()
    leader, follower = reference_optimizers(ref, cfg)
    for i, batch in enumerate(batches):
        other = batch if follower_batches is None else follower_batches[i]
        if cfg.order == "follower_first":
            reference_follower(ref, follower, other)
            reference_leader(ref, leader, batch, cfg.leader_penalty)
        else:
            reference_leader(ref, leader, batch, cfg.leader_penalty)
            reference_follower(ref, follower, other)
    return ref


@pytest.mark.parametrize("order", ["follower_first", "leader_first"])
@pytest.mark.parametrize("penalty", [False, True])
def test_bilevel_matches_reference(order, penalty):
    batches = [make_batch(i) for i in range(3)]
    cfg = config(order=order, leader_penalty=penalty)
    assert_same_parameters(run_steps(cfg, batches), run_reference(cfg, batches))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("penalty", [False, True])
def test_simultaneous_order_matches_a_two_optimizer_reference(penalty, optimizer):
    """One forward; the follower's gradient of eta * fairness and the leader's of its loss at the same point."""
    batches = [make_batch(i) for i in range(3)]
    cfg = config(order="simultaneous", leader_penalty=penalty, follower_optimizer=optimizer)
    ref = make_model()
    leader, follower = reference_optimizers(ref, cfg)
    for batch in batches:
        ref.zero_grad()
        logits = ref(batch.inputs)
        fair = DemographicParity()(torch.sigmoid(logits), batch.y, batch.s, 3)
        bce = F.binary_cross_entropy_with_logits(logits, batch.y)
        follower_grads = torch.autograd.grad(ETA * fair, list(ref.fairness.parameters()), retain_graph=True)
        (bce + ETA * fair if penalty else bce).backward()
        for p, g in zip(ref.fairness.parameters(), follower_grads):
            p.grad = g
        leader.step()
        follower.step()
    model = run_steps(cfg, batches)
    for (name, p), q in zip(model.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)
    # it is a different game from the sequential orders: the follower does not move first (Adam's follower
    # moves far enough here for the difference to show)
    adam = {"leader_penalty": penalty, "follower_optimizer": "adam"}
    sequential, simultaneous = (run_steps(config(order=order, **adam), batches)
                                for order in ("follower_first", "simultaneous"))
    assert not torch.allclose(sequential.head.weight, simultaneous.head.weight)


def test_simultaneous_order_is_for_bilevel_strategies_on_one_batch():
    with pytest.raises(ValueError, match="order='simultaneous' updates a bilevel game's two players at once; the "
                                         "lagrangian strategy has one player"):
        config(strategy="lagrangian", order="simultaneous")
    with pytest.raises(ValueError, match="cannot be combined with separate_batches=True"):
        config(order="simultaneous", separate_batches=True)
    assert config(order="simultaneous").for_strategy("erm").order == "follower_first"  # erm has no order
    assert config(order="simultaneous").for_strategy("bilevel").order == "simultaneous"


@pytest.mark.parametrize("order", ["follower_first", "leader_first"])
def test_bilevel_separate_batches_matches_reference(order):
    batches = [make_batch(i) for i in range(3)]
    others = [make_batch(10 + i) for i in range(3)]
    cfg = config(order=order, separate_batches=True)
    assert_same_parameters(run_steps(cfg, batches, others), run_reference(cfg, batches, others))


@pytest.mark.parametrize("name", ["erm", "lagrangian"])
def test_single_player_strategies_match_reference(name):
    batches = [make_batch(i) for i in range(3)]
    model = run_steps(config(strategy=name), batches)
    ref = make_model()
    optimizer = torch.optim.Adam(ref.parameters(), lr=config().lr)
    for batch in batches:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(ref(batch.inputs), batch.y)
        if name == "lagrangian":
            loss = loss + ETA * fairness_loss(ref, batch)
        loss.backward()
        optimizer.step()
    assert_same_parameters(model, ref)


@pytest.mark.parametrize("optimizer, fairness_lr", [("sgd", 100.0), ("adam", 5e-3)])
def test_follower_step_lowers_fairness_loss_and_leaves_leader_alone(optimizer, fairness_lr):
    model = make_model()
    before = copy.deepcopy(model)
    cfg = config(follower_optimizer=optimizer).replace(fairness_lr=fairness_lr)  # SGD: the loss is ~3e-7 here
    strategy = create_strategy(model, cfg, DemographicParity(), 3)
    batch = make_batch(0)
    features = model.encoder(batch.inputs).detach()
    loss_before = fairness_loss(model, batch).item()
    strategy._follower_step(features, batch)
    assert fairness_loss(model, batch).item() < loss_before
    for p, q in zip(model.leader_parameters(), before.leader_parameters()):
        assert torch.equal(p, q)
    assert all(p.grad is None for p in model.leader_parameters())


def test_step_reports_losses_and_respects_mask():
    batch = make_batch(0)
    mask = torch.arange(32) < 20
    strategy = create_strategy(make_model(), config(strategy="lagrangian"), DemographicParity(), 3)
    losses = strategy.step(Batch(batch.inputs, batch.y, batch.s, mask))
    ref = make_model()
    logits = ref(batch.inputs)[mask]
    bce = F.binary_cross_entropy_with_logits(logits, batch.y[mask])
    fair = DemographicParity()(torch.sigmoid(logits), batch.y[mask], batch.s[mask], 3)
    assert losses["bce"].item() == pytest.approx(bce.item(), rel=1e-6)
    assert losses["fairness"].item() == pytest.approx(fair.item(), rel=1e-6)
    assert losses["loss"].item() == pytest.approx((bce + ETA * fair).item(), rel=1e-6)


@pytest.mark.parametrize("name, penalty", [("lagrangian", False), ("bilevel", False), ("bilevel", True),
                                           ("stackelberg", True)])
def test_fairness_mask_moves_the_fairness_loss_to_other_examples(name, penalty):
    # BCE on the first 20 examples, the fairness loss on the last 24 (their labels set to -1: never read)
    batch = make_batch(0)
    mask, fairness_mask = torch.arange(32) < 20, torch.arange(32) >= 8
    y = torch.where(fairness_mask & ~mask, torch.full_like(batch.y, -1.0), batch.y)
    cfg = config(strategy=name, leader_penalty=penalty)
    strategy = create_strategy(make_model(), cfg, DemographicParity(), 3)
    losses = strategy.step(Batch(batch.inputs, y, batch.s, mask, fairness_mask))
    ref = make_model()
    logits = ref(batch.inputs)
    bce = F.binary_cross_entropy_with_logits(logits[mask], batch.y[mask])
    fair = DemographicParity()(torch.sigmoid(logits[fairness_mask]), y[fairness_mask], batch.s[fairness_mask], 3)
    other = DemographicParity()(torch.sigmoid(logits[mask]), y[mask], batch.s[mask], 3)
    assert fair.item() != pytest.approx(other.item(), rel=0.5)  # the two sets of examples disagree
    assert losses["fairness"].item() == pytest.approx(fair.item(), rel=1e-6)
    if name == "lagrangian":  # (the games report the BCE after the follower's move) and the step followed
        assert losses["bce"].item() == pytest.approx(bce.item(), rel=1e-6)
        optimizer = torch.optim.Adam(ref.parameters(), lr=cfg.lr)
        (bce + ETA * fair).backward()
        optimizer.step()
        assert_same_parameters(strategy.model, ref)


def test_bilevel_needs_a_trainable_fairness_block():
    model = FairModel(encoder=nn.Linear(5, 4), head=nn.Linear(4, 1))
    with pytest.raises(ValueError, match="fairness block with trainable parameters"):
        create_strategy(model, config(), DemographicParity())
    shared = nn.Linear(4, 4)
    model = FairModel(encoder=nn.Sequential(nn.Linear(5, 4), shared), fairness=shared, head=nn.Linear(4, 1))
    with pytest.raises(ValueError, match="both the leader and the follower"):
        create_strategy(model, config(), DemographicParity())


@pytest.mark.parametrize("order", ["follower_first", "leader_first", "simultaneous"])
@pytest.mark.parametrize("optimizer,with_bce", [("sgd", False), ("sgd", True), ("adam", True)])
def test_follower_options_match_reference(order, optimizer, with_bce):
    """follower_optimizer='sgd': plain SGD on the follower's loss; follower_bce: the follower on BCE + eta * fairness."""
    batches = [make_batch(i) for i in range(3)]
    cfg = config(order=order, follower_optimizer=optimizer, follower_bce=with_bce)
    ref = make_model()
    leader = torch.optim.Adam(list(ref.encoder.parameters()) + list(ref.head.parameters()), lr=cfg.lr)
    opt = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    follower = opt(ref.fairness.parameters(), lr=cfg.fairness_lr)
    for batch in batches:
        ref.zero_grad()
        logits = ref(batch.inputs)
        bce = F.binary_cross_entropy_with_logits(logits, batch.y)
        fair = DemographicParity()(torch.sigmoid(logits), batch.y, batch.s, 3)
        follower_loss = ETA * fair + (bce if with_bce else 0)
        if order == "simultaneous":
            grads = torch.autograd.grad(follower_loss, list(ref.fairness.parameters()), retain_graph=True)
            (bce + ETA * fair).backward(inputs=list(ref.encoder.parameters()) + list(ref.head.parameters()))
            for p, g in zip(ref.fairness.parameters(), grads):
                p.grad = g
            follower.step()
            leader.step()
            continue
        steps = [lambda: reference_follower_loss(ref, follower, batch, with_bce),
                 lambda: reference_leader(ref, leader, batch, True)]
        for take in (steps if order == "follower_first" else steps[::-1]):
            take()
    assert_same_parameters(run_steps(cfg, batches), ref)


def reference_follower_loss(model, optimizer, batch, with_bce):
    model.zero_grad()
    logits = model(batch.inputs)
    loss = ETA * DemographicParity()(torch.sigmoid(logits), batch.y, batch.s, 3)
    if with_bce:
        loss = loss + F.binary_cross_entropy_with_logits(logits, batch.y)
    loss.backward()
    optimizer.step()
    model.zero_grad()


def test_sgd_follower_step_scales_with_eta_and_adam_does_not():
    """The issue's point: Adam divides eta out of the follower's step; SGD's is proportional to eta."""
    batch = make_batch(0)
    batch = Batch(batch.inputs.double(), batch.y.double(), batch.s)

    def follower_move(optimizer, eta):
        model = make_model().double()
        before = [p.detach().clone() for p in model.fairness.parameters()]
        strategy = create_strategy(model, config(follower_optimizer=optimizer), DemographicParity(), 3, eta=eta)
        strategy._follower_step(model.encoder(batch.inputs).detach(), batch)
        return torch.cat([(p - q).reshape(-1) for p, q in zip(model.fairness.parameters(), before)]).norm().item()

    assert follower_move("sgd", 0.2) == pytest.approx(follower_move("sgd", 0.1) * 2, rel=1e-5)
    assert follower_move("adam", 20.0) == pytest.approx(follower_move("adam", 10.0), rel=0.05)  # Adam eps aside
    assert follower_move("sgd", 0.0) == 0.0


def test_follower_settings_are_checked():
    with pytest.raises(ValueError, match=r"follower_optimizer must be one of \('sgd', 'adam'\), got 'rmsprop'"):
        config(follower_optimizer="rmsprop")


def weighted_batch(seed=0):
    batch = make_batch(seed)
    weight = torch.arange(32, dtype=torch.float32) % 4  # 0, 1, 2, 3, 0, ...: integer weights, some zero
    return batch._replace(weight=weight)


@pytest.mark.parametrize("name, settings", [
    ("erm", {}), ("lagrangian", {}), ("bilevel", {"order": "leader_first", "leader_penalty": False}),
    ("bilevel", {"order": "leader_first"}), ("stackelberg", {"order": "leader_first", "hypergradient": "implicit"}),
])
def test_weighted_bce_is_the_hand_computed_weighted_mean(name, settings):
    batch = weighted_batch()
    mask = torch.arange(32) >= 6  # the weights of the counted rows only
    with torch.no_grad():
        logits = make_model()(batch.inputs)[mask]
    y, w = batch.y[mask], batch.weight[mask]
    p = torch.sigmoid(logits.double())
    per_row = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    expected = float((w * per_row).sum() / w.sum())
    strategy = create_strategy(make_model(), config(strategy=name, **settings), DemographicParity(), 3)
    losses = strategy.step(batch._replace(mask=mask))  # the leader's BCE before any step
    assert losses["bce"].item() == pytest.approx(expected, rel=1e-5)
    unweighted = float(per_row.mean())
    assert abs(expected - unweighted) > 1e-3  # the weights matter on this batch
    if name == "lagrangian":  # its fairness loss, on the same parameters, stays unweighted
        fair = DemographicParity()(torch.sigmoid(logits), y, batch.s[mask], 3)
        assert losses["fairness"].item() == pytest.approx(fair.item(), rel=1e-6)


def test_weights_of_one_give_exactly_the_unweighted_loss():
    batch = make_batch(0)
    plain = create_strategy(make_model(), config(strategy="erm"), DemographicParity(), 3)
    ones = create_strategy(make_model(), config(strategy="erm"), DemographicParity(), 3)
    assert torch.equal(plain.step(batch)["bce"], ones.step(batch._replace(weight=torch.ones(32)))["bce"])
    assert_same_parameters(plain.model, ones.model)
    zero = create_strategy(make_model(), config(strategy="erm"), DemographicParity(), 3)
    assert zero.step(batch._replace(weight=torch.zeros(32)))["bce"].item() == 0.0  # a batch of zero weights


def test_integer_weights_equal_repeated_rows():
    batch = weighted_batch()
    counts = batch.weight.long()
    repeated = Batch(batch.inputs.repeat_interleave(counts, 0), batch.y.repeat_interleave(counts),
                     batch.s.repeat_interleave(counts))
    assert len(repeated.y) == int(counts.sum()) == 48
    weighted = create_strategy(make_model(), config(strategy="erm"), DemographicParity(), 3)
    copies = create_strategy(make_model(), config(strategy="erm"), DemographicParity(), 3)
    for _ in range(2):
        a, b = weighted.step(batch)["bce"], copies.step(repeated)["bce"]
        assert a.item() == pytest.approx(b.item(), rel=1e-6)
    assert_same_parameters(weighted.model, copies.model)
