import os

import numpy as np
import pytest
import torch

from fairbinn.core.data import Batch, Split, TensorLoader, as_batch
from fairbinn.core.datadir import DataFilesNotFoundError, dataset_dir, resolve_data_dir


def split(n=10):
    return Split(torch.arange(2 * n, dtype=torch.float32).view(n, 2), torch.arange(n) % 2 * 1.0, torch.arange(n) % 3)


def test_loader_visits_every_row_once_per_epoch_and_reshuffles():
    loader = TensorLoader(split(), batch_size=4, shuffle=True, seed=1)
    assert len(loader) == 3
    epochs = [torch.cat([b.inputs[:, 0] for b in loader]) for _ in range(2)]
    for rows in epochs:
        assert sorted(rows.tolist()) == list(range(0, 20, 2))
    assert not torch.equal(epochs[0], epochs[1])
    again = TensorLoader(split(), batch_size=4, shuffle=True, seed=1)
    assert torch.equal(torch.cat([b.inputs[:, 0] for b in again]), epochs[0])
    ordered = [b.inputs[:, 0].tolist() for b in TensorLoader(split(), 4)]
    assert ordered == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]


def test_batch_conversion_and_mask():
    b = as_batch((torch.ones(3, 1), torch.tensor([1.0, 0, 1]), torch.tensor([0, 1, 1])))
    assert b.mask is None
    masked = Batch(b.inputs, b.y, b.s, torch.tensor([True, False, True]))
    values, y, s = masked.selected(torch.tensor([5.0, 6.0, 7.0]))
    assert values.tolist() == [5.0, 7.0] and s.tolist() == [0, 1]
    with pytest.raises(TypeError, match="tuple \\(inputs, y, s\\[, mask\\]\\)"):
        as_batch((1, 2))


def test_from_arrays_validates_inputs():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="integer group indices"):
        Split.from_arrays(x, [0, 1, 0, 1], ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="features must be numeric"):
        Split.from_arrays(np.array([["a"]] * 4), [0, 1, 0, 1], [0, 1, 0, 1])
    with pytest.raises(ValueError, match="group indices must be >= 0"):
        Split.from_arrays(x, [0, 1, 0, 1], [0, -1, 0, 1])
    with pytest.raises(ValueError, match="features must be 2-D"):
        Split(torch.zeros(4), torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="infinite"):
        Split.from_arrays(np.array([[0.0], [np.inf]]), [0, 1], [0, 1])


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRBINN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("FAIRBINN_DATA")
    assert resolve_data_dir() == tmp_path / "cache" / "fairbinn"


def test_missing_files_name_the_files_and_the_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("FAIRBINN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(DataFilesNotFoundError) as error:
        dataset_dir("health", None, [["health.csv"], ["health.csv.zip"]])
    message = str(error.value)
    assert "health.csv or health.csv.zip" in message
    assert str(tmp_path / "fairbinn" / "health") in message
    assert "FAIRBINN_DATA" in message
    (tmp_path / "x" / "health").mkdir(parents=True)
    (tmp_path / "x" / "health" / "health.csv.zip").write_bytes(b"")
    folder, paths = dataset_dir("health", tmp_path / "x", [["health.csv"], ["health.csv.zip"]])
    assert paths == [folder / "health.csv.zip"]
    assert os.fspath(folder).endswith("health")


def test_split_weights_follow_their_rows_into_every_batch():
    n = 10
    weights = np.arange(n) + 0.5
    data = Split.from_arrays(np.arange(n, dtype=np.float32)[:, None], np.arange(n) % 2, np.arange(n) % 2,
                             name="train", w=weights)
    assert data.w.dtype == torch.float32 and data.w.tolist() == weights.tolist()
    batches = list(TensorLoader(data, batch_size=4, shuffle=True, seed=3))
    for batch in batches:  # each batch's weight is that of its rows (weight = row + 0.5)
        assert torch.equal(batch.weight, batch.inputs[:, 0] + 0.5)
    assert sorted(torch.cat([b.weight for b in batches]).tolist()) == weights.tolist()
    assert all(b.weight is None for b in TensorLoader(split(), 4))  # no weights: the batches are as before
    masked = Batch(torch.zeros(3, 1), torch.ones(3), torch.zeros(3, dtype=torch.long),
                   torch.tensor([True, False, True]), weight=torch.tensor([1.0, 2.0, 3.0]))
    assert masked.selected_weight().tolist() == [1.0, 3.0]
    assert Batch(*masked[:4]).selected_weight() is None


@pytest.mark.parametrize("weights, message", [
    ([1.0, -0.5, 1.0, 1.0], r"^train sample weights: weights must be >= 0, found -0.5 at row 1$"),
    ([1.0, 1.0, np.nan, 1.0], r"^train sample weights: NaN or infinite weight at row 2 \(nan\); 1 of 4 weights "),
    ([np.inf, 1.0, 1.0, 1.0], r"^train sample weights: NaN or infinite weight at row 0 \(inf\)"),
    ([1.0, 1.0, 1.0], r"^train sample weights: 3 weights for 4 rows$"),
    ([0.0, 0.0, 0.0, 0.0], r"^train sample weights: every weight is zero; at least one must be positive$"),
    (np.ones((4, 1)), r"^train sample weights: weights must be 1-D \(one per row\), got shape \(4, 1\)$"),
    (["a", "b", "c", "d"], r"^train sample weights must be numeric, got dtype <U1$"),
])
def test_split_weights_are_validated(weights, message):
    with pytest.raises(ValueError, match=message):
        Split.from_arrays(np.zeros((4, 2)), [0, 1, 0, 1], [0, 1, 0, 1], name="train", w=weights)


def test_weighted_splits_are_refused_where_the_weights_would_be_unused():
    from fairbinn.core.config import TrainConfig
    from fairbinn.core.drfairness import DrFairnessConfig
    from fairbinn.core.stacked import stack_models
    from fairbinn.core.trainer import Trainer
    from fairbinn.tabular.mlp import build_mlp

    weighted = Split.from_arrays(np.random.default_rng(0).normal(size=(8, 3)), [0, 1] * 4, [0, 0, 1, 1] * 2,
                                 name="train", w=np.ones(8))
    with pytest.raises(ValueError, match="^stacked training does not use sample weights; train a weighted Split "
                                         "with one model$"):
        Trainer(TrainConfig(epochs=1)).fit(stack_models([build_mlp(3, (4,))]), weighted, etas=[1.0], seeds=[0])
    with pytest.raises(ValueError, match="^training data: the Dr-Fairness sampler sets its own ratios and does not use "
                                         "sample weights"):
        Trainer(TrainConfig(epochs=1, sampler=DrFairnessConfig())).fit(build_mlp(3, (4,)), weighted, weighted)
