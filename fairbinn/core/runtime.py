"""Seeding and device selection."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["seed_everything", "resolve_device", "DeviceNotAvailableError"]


class DeviceNotAvailableError(RuntimeError):
    """The requested device does not exist on this machine."""


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn "cpu", "cuda", "cuda:N", "mps" or "auto" into an available device.

    Raises :class:`DeviceNotAvailableError` naming the device when it is not
    available here, ``ValueError`` for a string that is no device.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N, mps or auto") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceNotAvailableError(f"device {device!r} requested but CUDA is not available on this machine")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceNotAvailableError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceNotAvailableError(f"device {device!r} requested but MPS is not available on this machine")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}; use cpu, cuda, cuda:N, mps or auto")
    return resolved
