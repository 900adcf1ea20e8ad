"""Training checkpoints: everything a run needs to continue exactly, written atomically.

:class:`RunCheckpoints` is the part of a training loop that writes and
resumes them, shared by :class:`~fairbinn.core.trainer.Trainer` and
:class:`~fairbinn.core.stacked.StackedTrainer`.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import distributed

__all__ = ["CHECKPOINT_NAME", "RunCheckpoints", "divergence", "save_checkpoint", "load_checkpoint",
           "rng_states", "restore_rng_states"]

CHECKPOINT_NAME = "checkpoint.pt"
"""File name of the latest checkpoint inside a checkpoint directory."""


def rng_states() -> dict[str, Any]:
    """Python's, NumPy's and PyTorch's (CPU and every CUDA device's) generator states."""
    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                              "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Undo :func:`rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt``: first to a temporary file, then renamed.

    A crash mid-write leaves the previous checkpoint intact; the final name
    never holds a half-written file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_NAME
    temporary = directory / f".{CHECKPOINT_NAME}.{os.getpid()}.tmp"
    torch.save(state, temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def load_checkpoint(directory: str | os.PathLike) -> dict[str, Any]:
    """Read ``directory/checkpoint.pt``; a missing or unreadable file is an error naming it."""
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"{path}: not a readable fairbinn checkpoint ({error})") from None


class RunCheckpoints:
    """A training loop's checkpoints: ``config.checkpoint_dir`` every ``config.checkpoint_every`` epochs.

    A checkpoint holds the model, the strategy's optimizers and schedulers,
    the random generators, the epoch and the loop's own ``parts`` (loader
    state, history, epoch selection); only rank 0 writes it. A resumed run
    must share its settings: ``config``'s (not epochs, progress, paths or
    device) updated with ``settings``.
    """

    def __init__(self, config: Any, **settings: Any) -> None:
        skip = ("epochs", "progress", "resume", "checkpoint_dir", "checkpoint_every", "device", "compile")
        self.config, self.saved_epoch = config, None
        self.settings = {**{k: v for k, v in config.to_dict().items() if k not in skip}, **settings}

    @contextmanager
    def diverging(self) -> Iterator[None]:
        """A ``FloatingPointError`` (training diverged) raised inside names the last good checkpoint."""
        try:
            yield
        except FloatingPointError as error:
            where = (f"the last good checkpoint is {self.config.checkpoint_dir}/{CHECKPOINT_NAME} "
                     f"(epoch {self.saved_epoch})" if self.saved_epoch
                     else "no checkpoint was written (set checkpoint_dir to keep one)")
            raise FloatingPointError(f"{error}; {where}") from None

    def save(self, epoch: int, model: torch.nn.Module, strategy: Any, **parts: Any) -> None:
        """Write a checkpoint after ``epoch`` if one is due (and a directory set)."""
        cfg = self.config
        if not cfg.checkpoint_dir or (epoch % cfg.checkpoint_every and epoch != cfg.epochs):
            return
        if distributed.is_main_process():  # the others hold the same state
            save_checkpoint(cfg.checkpoint_dir, {
                "config": self.settings, "epoch": epoch, "model": model.state_dict(),
                "optimizers": [o.state_dict() for o in strategy.optimizers],
                "schedulers": [s.state_dict() for s in strategy.schedulers], "rng": rng_states(), **parts,
            })
        distributed.barrier()
        self.saved_epoch = epoch

    def resume(self, model: torch.nn.Module, strategy: Any) -> dict[str, Any]:
        """Restore the model, optimizers, schedulers and generators of a checkpoint written with the same
        settings; return the checkpoint (the caller restores its parts)."""
        cfg = self.config
        # rank 0 reads the checkpoint and sends it to the others (no shared file system needed)
        state = distributed.from_main_process(load_checkpoint, cfg.checkpoint_dir)
        if state["config"] != self.settings:
            changed = sorted(k for k in {**state["config"], **self.settings}
                             if state["config"].get(k) != self.settings.get(k))
            raise ValueError(f"the checkpoint in {cfg.checkpoint_dir} was written with other settings: {changed}")
        if state["epoch"] >= cfg.epochs:
            raise ValueError(f"the checkpoint in {cfg.checkpoint_dir} is at epoch {state['epoch']}; "
                             f"nothing is left of {cfg.epochs} epochs")
        model.load_state_dict(state["model"])
        for optimizer, saved in zip(strategy.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(strategy.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        restore_rng_states(state["rng"])
        self.saved_epoch = state["epoch"]
        return state


def divergence(epoch: int, detail: str) -> FloatingPointError:
    """The error of a training loop whose losses stopped being finite in ``epoch`` (``detail``: where, what)."""
    return FloatingPointError(f"training diverged in epoch {epoch}{detail}; lower the learning rate or eta")
