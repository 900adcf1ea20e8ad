"""Training checkpoints: everything a run needs to continue exactly, written atomically.

:class:`RunCheckpoints` is the part of the training loop
(:meth:`~fairbinn.core.trainer.Trainer.fit`) that writes and resumes them,
for one model or a stack.

A checkpoint is data: tensors and plain values (dicts, lists, tuples,
strings, numbers, booleans, None) only, read back with
``torch.load(weights_only=True)``, so loading one never runs code. A file
holding anything else is refused (:func:`load_tensors`).
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import distributed

__all__ = ["CHECKPOINT_NAME", "RunCheckpoints", "divergence", "save_checkpoint", "load_checkpoint",
           "load_tensors", "plain_state", "rng_states", "restore_rng_states"]

CHECKPOINT_NAME = "checkpoint.pt"
"""File name of the latest checkpoint inside a checkpoint directory."""

logger = logging.getLogger("fairbinn")


def rng_states() -> dict[str, Any]:
    """Python's, NumPy's and PyTorch's (CPU and every CUDA device's) generator states, as tensors and plain data."""
    version, internal, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    states: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"bit_generator": numpy["bit_generator"],
                  "key": torch.from_numpy(numpy["state"]["key"].astype(np.int64)),
                  "pos": int(numpy["state"]["pos"]), "has_gauss": int(numpy["has_gauss"]),
                  "gauss": float(numpy["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Undo :func:`rng_states`."""
    python, numpy = states["python"], states["numpy"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    np.random.set_state({"bit_generator": numpy["bit_generator"],
                         "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
                         "has_gauss": numpy["has_gauss"], "gauss": numpy["gauss"]})
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


_PLAIN = (str, int, float, bool, type(None), torch.Size, torch.dtype, torch.device)


def plain_state(value: Any, where: str = "state") -> Any:
    """``value`` as a checkpoint holds it: tensors and plain data, NumPy scalars turned into Python numbers.

    Raises ``TypeError`` naming where (e.g. ``state['history'][0]['x']``)
    anything else is, so that every checkpoint written can be read back
    with ``torch.load(weights_only=True)``.
    """
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        return value.item()  # exact: np.float64 -> float, np.int64 -> int, np.bool_ -> bool
    if isinstance(value, _PLAIN):
        return value
    if type(value) in (dict, OrderedDict):
        return type(value)((key, plain_state(item, f"{where}[{key!r}]")) for key, item in value.items())
    if type(value) in (list, tuple):
        return type(value)(plain_state(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise TypeError(f"a checkpoint holds tensors and plain data only; {where} is a {type(value).__qualname__}")


def load_tensors(path: str | os.PathLike, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain data, never code.

    A file holding other objects (a pickle naming a class or function) is
    refused before any of it is run, and a corrupt or truncated one is an
    error; both are a ``ValueError`` naming ``path`` (``what`` says what the
    file should be, e.g. "fairbinn checkpoint").
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notes on old pickle protocols
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        named = re.search(r"GLOBAL ([\w.]+)", str(error))
        if named:
            raise ValueError(f"{path}: refused: a {what} holds tensors and plain data only, and this file "
                             f"holds other objects (it names {named.group(1)}); nothing in it was run") from None
        raise ValueError(f"{path}: not a readable {what}: not a file of tensors and plain data written by "
                         "torch.save; nothing in it was run") from None
    except Exception as error:  # noqa: BLE001 - a zip or stream error: a damaged file
        first = str(error).strip().split(". ")[0]
        if not first or "weights_only" in first:  # torch's own advice never reaches the user
            first = "the file is empty" if os.path.getsize(path) == 0 else type(error).__name__
        raise ValueError(f"{path}: not a readable {what}: the file is corrupt or truncated ({first})") from None


def save_checkpoint(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``directory/checkpoint.pt``: first to a temporary file, then renamed.

    A crash mid-write leaves the previous checkpoint intact; the final name
    never holds a half-written file. ``state`` must be tensors and plain
    data (see :func:`plain_state`; NumPy scalars become Python numbers).
    """
    state = plain_state(state)
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
    """Read ``directory/checkpoint.pt`` with ``torch.load(weights_only=True)`` (see :func:`load_tensors`).

    A missing file is a ``FileNotFoundError``; a file holding anything but
    tensors and plain data, a damaged one, or one that is not a dict, a
    ``ValueError`` naming it.
    """
    path = Path(directory) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    state = load_tensors(path, "fairbinn checkpoint")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a fairbinn checkpoint (it holds a {type(state).__name__}, not a dict)")
    return state


class RunCheckpoints:
    """A training loop's checkpoints: ``config.checkpoint_dir`` every ``config.checkpoint_every`` epochs.

    A checkpoint holds the model, the strategy's optimizers and schedulers,
    the random generators, the epoch and the loop's own ``parts`` (loader
    state, history, epoch selection); only rank 0 writes it. A resumed run
    must share its settings: ``config``'s (not epochs, progress, paths or
    device) updated with ``settings``.

    Created at the start of training, it checks ``config.checkpoint_dir``:
    a path naming a file is an error, and so is a directory that already
    holds a checkpoint unless ``config.resume`` (continue it) or
    ``config.overwrite`` (start over) is set.
    """

    def __init__(self, config: Any, **settings: Any) -> None:
        skip = ("epochs", "progress", "resume", "overwrite", "checkpoint_dir", "checkpoint_every", "device",
                "compile")
        self.config, self.saved_epoch, self.finished = config, None, False
        self.settings = {**{k: v for k, v in config.to_dict().items() if k not in skip}, **settings}
        if config.checkpoint_dir:
            self._check_directory(Path(config.checkpoint_dir))

    def _check_directory(self, directory: Path) -> None:
        for place in (directory, *directory.parents):  # the nearest existing one must be a directory
            if place.exists():
                if not place.is_dir():
                    raise ValueError(f"checkpoint_dir {str(directory)!r}: {place} is a file, not a directory")
                break
        existing = directory / CHECKPOINT_NAME
        if existing.exists() and not self.config.resume and not getattr(self.config, "overwrite", False):
            raise ValueError(f"{existing} already holds a run: pass resume=True (CLI --resume) to continue it, "
                             "or overwrite=True (CLI --overwrite) to train a new one in its place")

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
        settings; return the checkpoint (the caller restores its parts).

        A checkpoint at the last epoch (a finished run) is restored too:
        ``finished`` becomes True, one line is logged, and the caller trains
        no further epoch, going straight to the run's result.
        """
        cfg = self.config
        # rank 0 reads the checkpoint and sends it to the others (no shared file system needed)
        state = distributed.from_main_process(load_checkpoint, cfg.checkpoint_dir)
        path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME
        missing = [k for k in ("config", "epoch", "model", "optimizers", "schedulers", "rng") if k not in state]
        if missing or not isinstance(state["config"], dict) or type(state["epoch"]) is not int:
            raise ValueError(f"{path}: not a checkpoint of a fairbinn training run "
                             f"({'missing ' + ', '.join(missing) if missing else 'bad config or epoch'})")
        if state["config"] != self.settings:
            changed = sorted(k for k in {**state["config"], **self.settings}
                             if state["config"].get(k) != self.settings.get(k))
            raise ValueError(f"the checkpoint in {cfg.checkpoint_dir} was written with other settings: {changed}")
        if state["epoch"] > cfg.epochs:
            raise ValueError(f"the checkpoint in {cfg.checkpoint_dir} is at epoch {state['epoch']}, "
                             f"past the {cfg.epochs} epochs of this run")
        model.load_state_dict(state["model"])
        for optimizer, saved in zip(strategy.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        for scheduler, saved in zip(strategy.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)
        restore_rng_states(state["rng"])
        self.saved_epoch = state["epoch"]
        self.finished = state["epoch"] == cfg.epochs
        if self.finished and distributed.is_main_process():
            logger.warning("%s: the run already finished (epoch %d of %d); returning its result without training",
                           path, state["epoch"], cfg.epochs)
        return state


def divergence(epoch: int, detail: str) -> FloatingPointError:
    """The error of a training loop whose losses stopped being finite in ``epoch`` (``detail``: where, what)."""
    return FloatingPointError(f"training diverged in epoch {epoch}{detail}; lower the learning rate or eta")
