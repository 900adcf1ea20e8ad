import math

import pytest

from fairbinn.core.config import TrainConfig
from fairbinn.vision import PAPER_CELEBA_SETTINGS, paper_config, run_vision

METRICS = {"accuracy", "auc", "ap", "f1", "dp", "eo", "eopp", "soft_dp", "soft_eo"}


def test_paper_settings_per_attribute():
    assert PAPER_CELEBA_SETTINGS == {
        "Attractive": {"eta": 1000.0, "fairness_lr": 1e-6, "epochs": 30},
        "Smiling": {"eta": 100.0, "fairness_lr": 1e-5, "epochs": 15},
        "Wavy_Hair": {"eta": 100.0, "fairness_lr": 1e-5, "epochs": 15},
    }
    config = paper_config("Attractive", strategy="lagrangian")
    assert (config.lr, config.batch_size, config.epochs) == (1e-3, 128, 30)
    assert (config.eta, config.fairness_lr) == (1000.0, 1e-6)
    assert config.strategy == "lagrangian"
    other = paper_config("Young", TrainConfig(epochs=3))
    assert (other.batch_size, other.epochs, other.eta) == (128, 3, 100.0)


def test_run_vision_end_to_end_on_200_real_images(data_dir, tmp_path):
    result = run_vision(
        "Smiling",
        data_dir=data_dir,
        data_kwargs={"image_size": 32, "max_images": 200, "cache_dir": tmp_path},
        epochs=1,
        batch_size=64,
        progress=False,
    )
    assert result.config["strategy"] == "bilevel" and result.config["eta"] == 100.0
    assert result.config["fairness_lr"] == 1e-5 and result.selected_epoch == 1
    for metrics in (result.val, result.test):
        assert set(metrics) == METRICS and all(math.isfinite(v) for v in metrics.values())
    assert math.isfinite(result.history[0]["train_bce"]) and math.isfinite(result.history[0]["train_fairness"])
    dataset = result.extra["dataset"]
    assert [dataset[s]["images"] for s in ("train", "val", "test")] == [164, 18, 18]
    assert dataset["train"]["missing_images"] == 121_381 and dataset["image_size"] == [32, 32]
    assert result.extra["model"]["follower_parameters"] == 512 * 512 + 512
    assert result.extra["steps_per_epoch"] == 3 and result.extra["seconds_per_step"] > 0
    assert result.to_dict()["dataset"]["target"] == "Smiling"


def test_run_vision_rejects_unknown_target(data_dir):
    with pytest.raises(ValueError, match="unknown CelebA attribute 'Happy'"):
        run_vision("Happy", data_dir=data_dir)


def test_budget_selection_on_images(data_dir, tmp_path):
    result = run_vision(
        "Smiling", data_dir=data_dir, data_kwargs={"image_size": 32, "max_images": 200, "cache_dir": tmp_path},
        epochs=2, batch_size=64, progress=False, strategy="lagrangian", eta=1.0, fairness_budget=1.0,
        budget_metric="soft_dp",
    )
    # every epoch meets a budget of 1: the most accurate on validation is kept
    assert result.budget_met is True
    assert result.val["accuracy"] == max(r["val_accuracy"] for r in result.history)
