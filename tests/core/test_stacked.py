import pytest
import torch
from torch import nn

from fairbinn.core.config import TrainConfig
from fairbinn.core.metrics import binary_fairness_report
from fairbinn.core.model import FairModel
from fairbinn.core.runtime import seed_everything
from fairbinn.core.stacked import NotStackableError, stack_models
from fairbinn.core.trainer import Trainer
from fairbinn.tabular.mlp import build_mlp
from comparing import assert_histories_close, assert_logits_close, assert_smooth_close
from synthetic import make_biased_split

TRAIN, VAL, TEST = (make_biased_split(n, seed, name=name) for n, seed, name in
                    ((230, 0, "train"), (120, 1, "val"), (120, 2, "test")))


def _model(seed, **kwargs):
    seed_everything(seed)
    return build_mlp(6, (8, 8), num_fairness_layers=2, **kwargs)


@pytest.mark.parametrize("strategy,extra", [
    ("bilevel", {}),
    ("bilevel", {"order": "leader_first", "leader_penalty": True, "constraint": "eo"}),
    ("bilevel", {"order": "simultaneous"}),
    ("bilevel", {"follower_optimizer": "sgd", "follower_bce": True, "surrogate": "rate"}),
    ("stackelberg", {"unroll_steps": 2, "fairness_lr": 1e-2}),
    ("stackelberg", {"hypergradient": "implicit", "cg_iters": 3, "order": "leader_first", "constraint": "eo"}),
    ("lagrangian", {"constraint": "eopp", "constraint_norm": "absolute"}),
    ("erm", {}),
])
def test_stacked_models_equal_separate_runs(strategy, extra):
    """A stack rounds differently from its models trained alone: the two are compared on continuous
    quantities (losses, soft gaps, parameters, logits); see tests/comparing.py. Every epoch's
    validation metrics are recorded; the models keep their last epoch, so no selection between
    near-equal epochs can part the two."""
    config = TrainConfig(**{"strategy": strategy, "epochs": 4, "batch_size": 32, "lr": 1e-2, "fairness_lr": 1e-3,
                            "lr_decay": 0.9, "progress": False, "selection_metric": None, **extra})
    pairs = [(0.0, 0), (5.0, 0), (50.0, 1)]
    stack = stack_models([_model(seed, fairness_layer="residual") for _, seed in pairs])
    stacked = Trainer(config).fit(stack, TRAIN, VAL, TEST, etas=[e for e, _ in pairs], seeds=[s for _, s in pairs])
    with torch.no_grad():
        stacked_logits = {split.name: stack(split.x.expand(len(pairs), -1, -1)) for split in (VAL, TEST)}
    for index, (eta, seed) in enumerate(pairs):
        model = _model(seed, fairness_layer="residual")
        alone = Trainer(config, eta=eta, seed=seed).fit(model, TRAIN, VAL, TEST)
        result = stacked[index]
        assert result.config == alone.config
        assert result.selected_epoch == alone.selected_epoch == 4  # no selection: the last epoch
        assert_histories_close(result.history, alone.history, atol=1e-5)
        assert "val_soft_dp" in result.history[0] and "train_bce" in result.history[0]
        assert_smooth_close(result.test, alone.test, atol=1e-5, what="test")
        for name, value in model.state_dict().items():
            torch.testing.assert_close(stack.model_state_dict(index)[name], value, atol=1e-5, rtol=1e-4)
        with torch.no_grad():
            for split in (VAL, TEST):
                assert_logits_close(stacked_logits[split.name][index], model(split.x))


def test_what_cannot_be_stacked_is_refused_by_name():
    with pytest.raises(NotStackableError, match="dropout"):
        stack_models([_model(0, dropout=0.1), _model(1, dropout=0.1)])
    with pytest.raises(NotStackableError, match="BatchNorm1d"):
        stack_models([FairModel(nn.BatchNorm1d(3), nn.Linear(3, 1), nn.Linear(3, 3)) for _ in range(2)])
    with pytest.raises(NotStackableError, match="shape"):
        stack_models([build_mlp(6, (8,)), build_mlp(6, (9,))])
    with pytest.raises(NotStackableError, match="separate_batches"):
        Trainer(TrainConfig(separate_batches=True)).fit(stack_models([build_mlp(6, (8,))]), TRAIN, etas=[1.0],
                                                        seeds=[0])
    with pytest.raises(ValueError, match="equal length"):
        Trainer(TrainConfig()).fit(stack_models([build_mlp(6, (8,))] * 2), TRAIN, etas=[1.0, 2.0], seeds=[0])
    with pytest.raises(ValueError, match="the stack holds 2 models but 1"):
        Trainer(TrainConfig()).fit(stack_models([build_mlp(6, (8,))] * 2), TRAIN, etas=[1.0], seeds=[0])
    with pytest.raises(ValueError, match="etas, seeds and adam_kwargs are for a stack of models"):
        Trainer(TrainConfig()).fit(build_mlp(6, (8,)), TRAIN, etas=[1.0])


def test_stacked_constraint_rows_equal_one_row_each():
    from fairbinn.core.constraints import create_constraint
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(3, 40, generator=generator)
    y = torch.randint(0, 2, (3, 40), generator=generator)
    s = torch.randint(0, 3, (3, 40), generator=generator)
    for name in ("dp", "eo", "eopp"):
        constraint = create_constraint(name)
        rows = constraint(probs, y, s, 3)
        assert rows.shape == (3,)
        for i in range(3):
            assert rows[i].item() == pytest.approx(constraint(probs[i], y[i], s[i], 3).item(), abs=1e-7)


def test_a_resumed_stack_ends_exactly_like_an_uninterrupted_one(tmp_path):
    config = TrainConfig(strategy="bilevel", batch_size=32, lr=1e-2, fairness_lr=1e-3, lr_decay=0.9, progress=False)
    etas, seeds = [1.0, 10.0, 100.0], [0, 1, 1]

    def run(epochs, etas=etas, **extra):
        stack = stack_models([_model(seed) for seed in seeds])
        results = Trainer(config.replace(epochs=epochs, **extra)).fit(stack, TRAIN, VAL, TEST, etas=etas, seeds=seeds)
        return stack, results

    whole, whole_results = run(5)
    run(2, checkpoint_dir=str(tmp_path))
    resumed, resumed_results = run(5, checkpoint_dir=str(tmp_path), resume=True)
    for (name, mine), theirs in zip(resumed.state_dict().items(), whole.state_dict().values()):
        assert torch.equal(mine, theirs), name
    with torch.no_grad():
        probs = torch.sigmoid(whole(VAL.x.expand(len(seeds), -1, -1))).numpy()
    for index, result in enumerate(whole_results):  # each model holds the epoch its own selector chose
        accuracies = [r["val_accuracy"] for r in result.history]
        assert result.selected_epoch == accuracies.index(max(accuracies)) + 1
        report = binary_fairness_report(VAL.y.numpy(), probs[index], sensitive_features=VAL.s.numpy())
        assert_smooth_close(report, result.val, atol=1e-6, what="val")
    assert {r.selected_epoch for r in whole_results} != {5}  # some model kept an earlier epoch
    for mine, theirs in zip(resumed_results, whole_results):
        assert (mine.selected_epoch, mine.val, mine.test) == (theirs.selected_epoch, theirs.val, theirs.test)
        assert [{**r, "train_time_s": 0} for r in mine.history] == [{**r, "train_time_s": 0} for r in theirs.history]
    with pytest.raises(ValueError, match=r"other settings: \['eta'\]"):
        run(5, etas=[1.0, 10.0, 50.0], checkpoint_dir=str(tmp_path), resume=True)
