"""Decoding image files, and a pre-resized, memory-mapped uint8 store of them.

Decoding tens of thousands of JPEGs every epoch dominates a CPU run. An
:class:`ImageStore` decodes and resizes a list of image files once, writes the
pixels to one raw ``uint8`` file of shape ``(n, 3, h, w)`` and memory-maps it,
so an epoch reads memory instead of JPEG files.

A store is two files in the cache directory::

    <name>_<h>x<w>_<key>.u8     the pixels, row i = the i-th readable file
    <name>_<h>x<w>_<key>.json   what they were built from, and which files were unreadable

``key`` hashes the source folder, the image size, the resize method and the
name, size and modification time of every file, in order; the JSON repeats
those fields and is checked on every open. A different image size, subset of
files, source folder or a changed file therefore never reuses a stale store:
it is built anew. The JSON is written last, so an interrupted build is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

__all__ = [
    "CACHE_ENV_VAR",
    "ImageStore",
    "as_image_size",
    "default_cache_dir",
    "read_image",
    "try_read_image",
]

logger = logging.getLogger("fairbinn")

CACHE_ENV_VAR = "FAIRBINN_CACHE"
_FORMAT = 1
_RESIZE = "bilinear, antialias"
_KEY_FIELDS = ("format", "source", "image_size", "resize", "num_files", "files_sha256")


def default_cache_dir() -> Path:
    """Where image stores go by default.

    ``$FAIRBINN_CACHE`` if set, else ``$XDG_CACHE_HOME/fairbinn/image_cache``
    (by default ``~/.cache/fairbinn/image_cache``). Never the data directory
    itself, which may be shared or read-only.
    """
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "fairbinn" / "image_cache"


def as_image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` from an int (a square) or a pair; both must be positive."""
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    valid = isinstance(size, (tuple, list)) and len(size) == 2
    if not valid or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise ValueError(f"image_size must be a positive int or a (height, width) pair, got {image_size!r}")
    return tuple(size)


def read_image(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> Tensor:
    """Decode an image file to RGB ``uint8`` of shape ``(3, h, w)`` with torchvision.

    Grayscale, palette, CMYK and RGBA images are converted to RGB (alpha is
    dropped). With ``image_size=(h, w)`` the image is resized to exactly that
    size (bilinear, antialiased; the aspect ratio is not kept). Raises
    ``RuntimeError`` or ``OSError`` for a missing, empty or corrupt file.
    """
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders in favour of TorchCodec
        warnings.filterwarnings("ignore", "The image decoding and encoding capabilities", DeprecationWarning)
        image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    if image_size is not None and tuple(image.shape[-2:]) != image_size:
        image = TF.resize(image, list(image_size), antialias=True)
    return image


def try_read_image(path: str | os.PathLike, image_size: tuple[int, int] | None = None) -> Tensor | None:
    """:func:`read_image`, or ``None`` when the file cannot be read or decoded."""
    try:
        return read_image(path, image_size)
    except (RuntimeError, OSError, ValueError):
        return None


class ImageStore:
    """Pre-resized RGB images of a list of files, memory-mapped from the cache directory.

    Build or reuse one with :meth:`open_or_build`. Indexing gives the
    ``uint8`` tensor ``(3, h, w)`` of the ``i``-th readable file.

    Attributes
    ----------
    data_path, meta_path : Path
        The pixel file and its metadata JSON.
    image_size : tuple of int
        ``(h, w)``.
    readable : numpy.ndarray of bool, shape (num_files,)
        Which of the given files decoded; row ``i`` of the store is the
        ``i``-th ``True`` entry.
    unreadable : list of str
        Names of the files that could not be read or decoded (skipped).
    reused : bool
        Whether :meth:`open_or_build` found a valid store instead of building it.
    """

    def __init__(
        self,
        data_path: Path,
        meta: dict,
        readable: np.ndarray,
        reused: bool,
    ) -> None:
        self.data_path = data_path
        self.meta_path = data_path.with_suffix(".json")
        self.image_size: tuple[int, int] = tuple(meta["image_size"])
        self.readable = readable
        self.unreadable: list[str] = list(meta["unreadable"])
        self.reused = reused
        self._pixels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(n, 3, h, w)``: ``n`` readable images."""
        return (int(self.readable.sum()), 3, *self.image_size)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        if self._pixels is None:  # opened lazily, so a pickled store (DataLoader workers) re-maps the file
            self._pixels = np.memmap(self.data_path, dtype=np.uint8, mode="r", shape=self.shape)
        return torch.from_numpy(np.array(self._pixels[index]))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pixels": None}

    @classmethod
    def open_or_build(
        cls,
        paths: Sequence[Path],
        image_size: tuple[int, int],
        cache_dir: str | os.PathLike | None = None,
        name: str = "images",
        progress: bool = False,
    ) -> "ImageStore":
        """The store of ``paths`` at ``image_size``: reused when a valid one exists, else built.

        Parameters
        ----------
        paths : sequence of Path
            Image files, all in one folder (the "source"); order is kept.
        image_size : (int, int)
            ``(h, w)`` every image is resized to.
        cache_dir : path, optional
            Folder for the store; default :func:`default_cache_dir`. Created if needed.
        name : str, default "images"
            Prefix of the file names (e.g. ``"celeba_train"``).
        progress : bool, default False
            Show a progress bar while building.

        Unreadable files (corrupt, empty, not an image) are skipped and listed
        in ``unreadable``; building never stops halfway because of one.
        """
        if not paths:
            raise ValueError("an image store needs at least one file")
        folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        key_fields = _key_fields(paths, image_size)
        key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
        data_path = folder / f"{name}_{image_size[0]}x{image_size[1]}_{key}.u8"
        meta = _valid_meta(data_path, key_fields)
        if meta is not None:
            return cls(data_path, meta, _readable_mask(paths, meta["unreadable"]), reused=True)
        folder.mkdir(parents=True, exist_ok=True)
        meta = _build(paths, image_size, data_path, key_fields, progress)
        return cls(data_path, meta, _readable_mask(paths, meta["unreadable"]), reused=False)


def _key_fields(paths: Sequence[Path], image_size: tuple[int, int]) -> dict:
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path.name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return {
        "format": _FORMAT,
        "source": str(Path(paths[0]).parent.resolve()),
        "image_size": list(image_size),
        "resize": _RESIZE,
        "num_files": len(paths),
        "files_sha256": digest.hexdigest(),
    }


def _valid_meta(data_path: Path, key_fields: dict) -> dict | None:
    """The stored metadata if it matches ``key_fields`` and the pixel file has the right size."""
    meta_path = data_path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text())
        if any(meta.get(field) != key_fields[field] for field in _KEY_FIELDS):
            logger.info("image cache %s was built from other files or settings; rebuilding", meta_path)
            return None
        kept = meta["num_files"] - len(meta["unreadable"])
        h, w = meta["image_size"]
        if data_path.stat().st_size != kept * 3 * h * w:
            logger.info("image cache %s is incomplete; rebuilding", data_path)
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta


def _build(
    paths: Sequence[Path], image_size: tuple[int, int], data_path: Path, key_fields: dict, progress: bool
) -> dict:
    logger.info("building image cache %s from %d files", data_path, len(paths))
    unreadable: list[str] = []
    partial = data_path.with_name(f"{data_path.name}.{os.getpid()}.partial")
    with partial.open("wb") as handle:
        for path in tqdm(paths, desc=f"caching {data_path.stem}", disable=not progress, leave=False):
            image = try_read_image(path, image_size)
            if image is None:
                unreadable.append(Path(path).name)
            else:
                handle.write(image.numpy().tobytes())
    os.replace(partial, data_path)
    if unreadable:
        logger.warning("%d of %d image files could not be read and are skipped (first: %s)",
                       len(unreadable), len(paths), unreadable[0])
    meta = {**key_fields, "unreadable": unreadable}
    meta_partial = data_path.with_name(f"{data_path.stem}.json.{os.getpid()}.partial")
    meta_partial.write_text(json.dumps(meta, indent=1))
    os.replace(meta_partial, data_path.with_suffix(".json"))
    return meta


def _readable_mask(paths: Sequence[Path], unreadable: list[str]) -> np.ndarray:
    skipped = set(unreadable)
    return np.array([Path(p).name not in skipped for p in paths], dtype=bool)
