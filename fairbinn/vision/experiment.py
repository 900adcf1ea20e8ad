"""The CelebA benchmark: the paper's per-attribute settings, the image classifier, its registration."""

from __future__ import annotations

import os
from typing import Any

from ..benchmark import Benchmark, register_benchmark, run
from ..core.config import TrainConfig
from ..core.trainer import TrainResult
from .backbones import create_vision_model
from .celeba import CELEBA_SOURCE, CelebASplits, load_celeba

__all__ = ["PAPER_CELEBA_SETTINGS", "PAPER_CELEBA_COMMON", "paper_config", "run_vision"]

PAPER_CELEBA_COMMON: dict[str, Any] = {"lr": 1e-3, "batch_size": 128}
"""The paper's CelebA settings shared by every attribute: Adam, lr 1e-3, batch 128. The fairness layers
step by ``TrainConfig.follower_optimizer``, plain SGD by default; the paper's Adam is
``follower_optimizer="adam"``."""
PAPER_CELEBA_SETTINGS: dict[str, dict[str, Any]] = {
    "Attractive": {"eta": 1000.0, "fairness_lr": 1e-6, "epochs": 30},
    "Smiling": {"eta": 100.0, "fairness_lr": 1e-5, "epochs": 15},
    "Wavy_Hair": {"eta": 100.0, "fairness_lr": 1e-5, "epochs": 15},
}
"""The paper's per-attribute CelebA settings (sensitive attribute Male)."""


def paper_config(target: str, config: TrainConfig | None = None, **overrides: Any) -> TrainConfig:
    """``config`` (default ``TrainConfig()``) with the paper's settings for ``target``, then ``overrides``.

    For an attribute without paper settings only :data:`PAPER_CELEBA_COMMON` applies.
    """
    return (config or TrainConfig()).replace(**{**PAPER_CELEBA_COMMON, **PAPER_CELEBA_SETTINGS.get(target, {}), **overrides})


def run_vision(
    data: str | CelebASplits = "Attractive",
    config: TrainConfig | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    data_kwargs: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    num_workers: int = 0,
    generated: Any = None,
    **config_overrides: Any,
) -> TrainResult:
    """Train and evaluate one image classifier on CelebA.

    Parameters
    ----------
    data : str or CelebASplits, default "Attractive"
        A target attribute (loaded against Male with :func:`load_celeba`) or
        already loaded splits.
    config : TrainConfig, optional
        Training settings; default :func:`paper_config` of the target.
        ``config_overrides`` change single fields.
    data_dir : path, optional
        Data directory when ``data`` is a name.
    data_kwargs : dict, optional
        Passed to :func:`load_celeba` when ``data`` is a name (``sensitive``,
        ``image_size``, ``max_images``, ``cache_dir``...).
    model_kwargs : dict, optional
        Passed to :func:`create_vision_model` (``name``, ``source``,
        ``fairness``, ``num_fairness_layers``, ``pretrained``...).
    num_workers : int, default 0
        DataLoader worker processes.
    generated : dataset, optional
        Generated training images (a map-style dataset of ``(image, y, s)`` with
        ``targets()``), drawn beside the real ones by the Dr-Fairness sampler.

    Batches hold ``config.batch_size`` images, shuffled with ``config.seed``. The result's ``extra`` holds
    the dataset summary, the model's parameter counts, ``steps_per_epoch``, ``seconds_per_step`` and the wall time.
    """
    dataset = load_celeba(data, data_dir=data_dir, **(data_kwargs or {})) if isinstance(data, str) else data
    return run(dataset, config, model_kwargs=model_kwargs, loader_kwargs={"num_workers": num_workers},
               generated=generated, **config_overrides)


def _describe(result: TrainResult, dataset: CelebASplits, loaders: tuple, model_kwargs: dict[str, Any]) -> dict:
    steps, seconds = len(loaders[0]), sum(record["train_time_s"] for record in result.history)
    return {"steps_per_epoch": steps, "seconds_per_step": seconds / (steps * len(result.history))}


def _headline(dataset: CelebASplits, model_kwargs: dict[str, Any]) -> str:
    sizes = " / ".join(f"{len(split):,}" for split in (dataset.train, dataset.val, dataset.test))
    return (f"CelebA {dataset.target} vs {dataset.sensitive} ({model_kwargs.get('name', 'resnet18')}, "
            f"{model_kwargs.get('source', 'torchvision')}, {'x'.join(map(str, dataset.train.image_size))}, random "
            f"init unless --pretrained): test metrics, {sizes} train / val / test images")


register_benchmark(Benchmark(
    "celeba", "vision", load=lambda data_dir=None, target="Attractive", **kw: load_celeba(target, data_dir=data_dir,
                                                                                          **kw),
    build_model=lambda dataset, **kwargs: create_vision_model(**kwargs),
    paper_settings=lambda dataset: {**PAPER_CELEBA_COMMON, **PAPER_CELEBA_SETTINGS.get(dataset.target, {})},
    loaders=lambda data, config, num_workers=0: data.loaders(config.batch_size, num_workers, config.seed),
    describe=_describe, headline=_headline, dataset_type=CelebASplits, source=CELEBA_SOURCE,
))
