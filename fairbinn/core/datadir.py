"""Where datasets live: the data directory setting shared by every loader.

Resolution order: the ``data_dir`` argument of a loader, then the environment
variable ``FAIRBINN_DATA``, then the user cache directory
(``$XDG_CACHE_HOME/fairbinn``, by default ``~/.cache/fairbinn``). Each dataset
sits in a sub-directory named after it, e.g. ``<data_dir>/adult/adult.data``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DATA_ENV_VAR", "DataFilesNotFoundError", "resolve_data_dir", "dataset_dir", "RemoteFile", "DatasetSource",
           "file_sha256"]

DATA_ENV_VAR = "FAIRBINN_DATA"


class DataFilesNotFoundError(FileNotFoundError):
    """A dataset's files are not where the data directory setting points."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$FAIRBINN_DATA``, else the user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "fairbinn"


def dataset_dir(
    dataset: str,
    data_dir: str | os.PathLike | None,
    alternatives: list[list[str]],
) -> tuple[Path, list[Path]]:
    """Locate ``<data_dir>/<dataset>`` and the first complete set of files in it.

    ``alternatives`` lists acceptable file sets in order of preference (for
    example ``[["health.csv"], ["health.csv.zip"]]``). Returns the folder and
    the paths of the first set whose files all exist; raises
    :class:`DataFilesNotFoundError` naming the expected files and how to set
    the data directory otherwise.
    """
    folder = resolve_data_dir(data_dir) / dataset
    for names in alternatives:
        paths = [folder / name for name in names]
        if all(p.is_file() for p in paths):
            return folder, paths
    expected = " or ".join(" + ".join(names) for names in alternatives)
    source = (
        "the data_dir argument" if data_dir is not None
        else f"${DATA_ENV_VAR}" if os.environ.get(DATA_ENV_VAR)
        else f"the default cache directory (set ${DATA_ENV_VAR} or pass data_dir / --data-dir)"
    )
    raise DataFilesNotFoundError(
        f"{dataset}: expected {expected} in {folder} (data directory from {source})"
    )


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name in the dataset folder, where it comes from, its size and sha256."""

    name: str
    url: str
    size: int
    sha256: str

    @classmethod
    def published(cls, file: Any, base_url: str) -> "RemoteFile":
        """From anything with ``name``, ``size`` and ``sha256`` (a published file) at ``base_url + name``."""
        return cls(file.name, base_url + file.name, file.size, file.sha256)


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's files come from.

    ``folder`` is the sub-directory of the data directory the loader reads.
    A dataset with ``manual_steps`` cannot be fetched automatically (a login
    or a licence form); ``expected`` then lists the files (or folders) the
    steps put in ``folder``, so their presence can be reported.
    """

    name: str
    folder: str
    files: tuple[RemoteFile, ...] = ()
    manual_steps: str = ""
    expected: tuple[str, ...] = ()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
