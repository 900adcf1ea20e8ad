"""One call from a CelebA target attribute to a trained, evaluated image classifier."""

from __future__ import annotations

import os
import time
from typing import Any

from ..core.config import TrainConfig
from ..core.runtime import seed_everything
from ..core.trainer import Trainer, TrainResult
from .backbones import create_vision_model
from .celeba import CelebASplits, load_celeba

__all__ = ["PAPER_CELEBA_SETTINGS", "PAPER_CELEBA_COMMON", "paper_config", "run_vision"]

PAPER_CELEBA_COMMON: dict[str, Any] = {"lr": 1e-3, "batch_size": 128}
"""The paper's CelebA settings shared by every attribute: Adam, lr 1e-3, batch 128."""
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
        Generated training images: a map-style dataset of ``(image, y, s)``
        with ``targets()``, drawn beside the real ones by
        ``config.sampler="drfairness"``.

    Batches hold ``config.batch_size`` images; the training order is shuffled
    with ``config.seed``, and the model is initialised after seeding with it.
    The result's ``extra`` holds the dataset summary (image counts of each
    split), the model's parameter counts, ``steps_per_epoch``,
    ``seconds_per_step`` (training time over all epochs / steps) and the wall time.
    """
    dataset = load_celeba(data, data_dir=data_dir, **(data_kwargs or {})) if isinstance(data, str) else data
    config = config or paper_config(dataset.target)
    if config_overrides:
        config = config.replace(**config_overrides)
    train, val, test = dataset.loaders(config.batch_size, num_workers=num_workers, seed=config.seed)
    seed_everything(config.seed)
    model = create_vision_model(**(model_kwargs or {}))
    start = time.perf_counter()
    result = Trainer(config).fit(model, train, val, test, generated=generated)
    train_time = sum(record["train_time_s"] for record in result.history)
    result.extra.update(
        dataset=dataset.summary(),
        model={
            **{k: str(v) for k, v in (model_kwargs or {}).items()},
            **model.parameter_counts(),
        },
        steps_per_epoch=len(train),
        seconds_per_step=train_time / (len(train) * len(result.history)),
        wall_time_s=time.perf_counter() - start,
    )
    return result
