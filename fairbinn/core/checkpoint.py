"""Training checkpoints: everything a run needs to continue exactly, written atomically."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CHECKPOINT_NAME", "save_checkpoint", "load_checkpoint", "rng_states", "restore_rng_states"]

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
