"""Data-parallel training: 2 CPU processes (gloo) end with a single process's parameters.

The test starts this file twice as a script with torchrun's environment
variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); each process trains
every configuration of RUNS and saves its parameters, its history and how many
checkpoints it wrote.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/synthetic.py, also when run as a script

from synthetic import make_biased_split  # noqa: E402

from fairbinn import Trainer, build_mlp  # noqa: E402
from fairbinn.core import distributed  # noqa: E402
from fairbinn.core.data import Batch  # noqa: E402
from fairbinn.core.drfairness import DrFairnessConfig  # noqa: E402

COMMON = dict(epochs=2, batch_size=100, eta=1.0, lr=1e-2, fairness_lr=1e-3, progress=False, selection_metric=None)
RUNS = {
    "erm": dict(strategy="erm"),
    "lagrangian": dict(strategy="lagrangian", constraint="eo"),
    "bilevel": dict(strategy="bilevel"),
    "bilevel_separate": dict(strategy="bilevel", order="leader_first", separate_batches=True, constraint="dp"),
    "drfairness": dict(strategy="bilevel", sampler=DrFairnessConfig(k=1.0)),
    "released_loss": dict(strategy="lagrangian", constraint="released_dp", eta=20.0),
    "budget": dict(strategy="lagrangian", selection_metric="accuracy", fairness_budget=0.3, budget_metric="soft_dp",
                   confidence=0),
    # certified: epoch 1 comes first in the test order and passes (bound 0.26), epoch 2 fails (bound 0.35)
    "certified": dict(strategy="lagrangian", selection_metric="accuracy", fairness_budget=0.3,
                      budget_metric="soft_dp"),
    # anticipation that moves the parameters by 1e-2 to 1e-1 against an unanticipating leader, far above atol
    "stackelberg": dict(strategy="stackelberg", unroll_steps=2, eta=5.0, fairness_lr=0.3, follower_optimizer="sgd"),
    "stackelberg_implicit": dict(strategy="stackelberg", hypergradient="implicit", cg_iters=3, cg_damping=0.2,
                                 eta=5.0, constraint="eo", surrogate="rate", order="leader_first"),
}
WORLD = 2


def data():
    # 1037 rows: the last global batch (37 rows) splits unevenly, 18 + 19
    return make_biased_split(1037, seed=0), make_biased_split(300, seed=1, name="val")


def model_for(train):
    torch.manual_seed(0)
    return build_mlp(train.num_features, (16, 16), num_fairness_layers=1)


def train(name, checkpoint_dir=None, **changes):
    train_split, val = data()
    model = model_for(train_split)
    settings = {**COMMON, **RUNS[name], **changes}
    if checkpoint_dir is not None:
        settings["checkpoint_dir"] = str(checkpoint_dir)
    result = Trainer(**settings).fit(model, train_split, val)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, result.history


def worker(out: Path) -> None:
    """One process of a distributed run (started by the test)."""
    torch.set_num_threads(1)
    assert distributed.init_from_env()
    rank = distributed.rank()
    saves = []
    import fairbinn.core.checkpoint as checkpoints

    original = checkpoints.save_checkpoint
    checkpoints.save_checkpoint = lambda directory, state: (saves.append(str(directory)), original(directory, state))[1]
    results = {name: train(name, checkpoint_dir=out / "ckpt" / name) for name in RUNS}
    # interrupted after epoch 1, then resumed to epoch 2: ends as the uninterrupted run
    train("bilevel", checkpoint_dir=out / "ckpt" / "resumed", epochs=1)
    results["resumed"] = train("bilevel", checkpoint_dir=out / "ckpt" / "resumed", resume=True)
    torch.save({"results": results, "saves": saves}, out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    port = _free_port()
    procs = []
    for rank in range(WORLD):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD),
               "LOCAL_WORLD_SIZE": str(WORLD), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, __file__, str(out)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=180)[0])
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            raise
    for rank, (proc, output) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"rank {rank} failed:\n{output[-4000:]}"
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def assert_same_parameters(got, expected, atol):
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=atol, rtol=0, msg=f"parameter {key}")


@pytest.mark.parametrize("name", list(RUNS))
def test_two_processes_end_with_single_process_parameters(distributed_run, name):
    _, ranks = distributed_run
    expected, expected_history = train(name)
    if RUNS[name].get("selection_metric"):
        # the parameters compared are those of the selected epoch: the choice must not hang on a rounding
        # difference, so the epochs' validation accuracies lie at least 3 of the 300 rows apart
        accuracies = sorted(r["val_accuracy"] for r in expected_history)
        assert accuracies[-1] - accuracies[-2] >= 3 / 300
        budget = RUNS[name]["fairness_budget"]
        if RUNS[name].get("confidence") == 0:
            assert all(abs(r["val_soft_dp"] - budget) > 0.05 for r in expected_history)
        else:  # neither the test order nor a pass hangs on a rounding difference either
            assert all(abs(r["val_bound"] - budget) > 0.02 for r in expected_history)
            order = sorted(r["order_bound"] for r in expected_history)
            assert all(b - a > 0.02 for a, b in zip(order, order[1:]))
    state0, history0 = ranks[0]["results"][name]
    assert_same_parameters(state0, expected, atol=1e-5)
    for other in ranks[1:]:  # every process holds the same model and history
        state, history = other["results"][name]
        assert_same_parameters(state, state0, atol=0)
        assert [{k: v for k, v in r.items() if k != "train_time_s"} for r in history] == \
               [{k: v for k, v in r.items() if k != "train_time_s"} for r in history0]
    # the epoch losses are those of the global batches
    for got, want in zip(history0, expected_history):
        for key in want:
            if key.startswith(("train_bce", "train_fairness", "train_loss", "ratio_")):
                assert got[key] == pytest.approx(want[key], abs=1e-5), key
    if RUNS[name].get("fairness_budget") and RUNS[name].get("confidence") != 0:
        # the certification entries (continuous for soft_dp) are measured on every row, not one process's share
        for got, want in zip(history0, expected_history):
            for key in ("val_bound", "order_gap", "order_bound"):
                assert got[key] == pytest.approx(want[key], abs=1e-5), key


def test_only_rank_zero_writes_checkpoints(distributed_run):
    out, ranks = distributed_run
    assert ranks[1]["saves"] == []
    assert len(ranks[0]["saves"]) == 2 * len(RUNS) + 2  # every epoch of every run, 1 + 1 for the resumed one
    for name in RUNS:
        assert sorted(p.name for p in (out / "ckpt" / name).iterdir()) == ["checkpoint.pt"]


def test_resumed_distributed_run_ends_as_uninterrupted(distributed_run):
    _, ranks = distributed_run
    for rank in ranks:
        assert_same_parameters(rank["results"]["resumed"][0], rank["results"]["bilevel"][0], atol=0)
        assert len(rank["results"]["resumed"][1]) == 2


def test_global_batch_shares_cover_it_once():
    batch = Batch(torch.arange(37.0)[:, None], torch.zeros(37), torch.zeros(37, dtype=torch.long))
    shares = [distributed.ShardedLoader([batch], r, 3).shard(batch) for r in range(3)]
    assert torch.cat([s.inputs for s in shares]).squeeze(1).tolist() == list(range(37))
    mask = torch.arange(10) % 2 == 0  # a graph: the whole graph, the masked nodes shared out
    graph = Batch(torch.zeros(10, 2), torch.zeros(10), torch.zeros(10, dtype=torch.long), mask)
    parts = [distributed.ShardedLoader([graph], r, 2).shard(graph) for r in range(2)]
    assert [p.mask.tolist() for p in parts] == [[0, 2], [4, 6, 8]]
    assert all(p.inputs.shape == (10, 2) for p in parts)


def test_single_process_calls_no_collective():
    assert not distributed.is_distributed() and not distributed.active()
    with distributed.exact_statistics():
        assert not distributed.active()
        x = torch.ones(3, requires_grad=True)
        assert distributed.global_sum(x) is x


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
