"""Rebuild CelebA's official layout (and the other packed folders) from what ``pack_celeba.py`` wrote.

For the GPU machine behind ``benchmarks/gpu/run_gpu.sh``: its working tree is limited to 64 MiB, so
``pack_celeba.py`` **re-encoded every CelebA image as WebP at quality 25** (lossy) to fit. This script writes
each one back as ``DEST/celeba/img_align_celeba/<same name>.jpg`` (JPEG, quality 95, the same size; a file
that was not decodable is written back as it was), the annotation files unchanged beside that folder, and
extracts each packed folder (e.g. ``DEST/adult/``). The images are therefore not the original pixels: results
on them are for timing and checking, and users with the full data skip packing and unpacking and pass
``--data-dir`` to the benchmarks instead.

Usage::

    python benchmarks/gpu/unpack_celeba.py /tmp/data                  # from .gpu_data/, 16 processes
    python benchmarks/gpu/unpack_celeba.py /tmp/data --packed DIR --workers 4
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import mmap
import multiprocessing
import os
import tarfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
IMAGE_FOLDER = "img_align_celeba"
BLOB, INDEX, MANIFEST = "images.webp.bin", "images.index.tsv.xz", "manifest.json"

_blob: mmap.mmap | None = None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help="data directory to write (celeba/ and the packed folders go in it)")
    parser.add_argument("--packed", type=Path, default=REPO / ".gpu_data",
                        help="the folder pack_celeba.py wrote (default .gpu_data/)")
    parser.add_argument("--workers", type=int, default=16, help="decoding processes (default 16)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the written images (default 95)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    return args


def _open_blob(path: str) -> None:
    global _blob
    with open(path, "rb") as handle:
        _blob = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _write_image(job: tuple[str, int, int, str, int]) -> None:
    """Write one image: a WebP entry as JPEG at ``quality``, a raw one (a file that was not decodable) as it was."""
    target, offset, length, kind, quality = job
    data = _blob[offset:offset + length]
    if kind == "raw":
        Path(target).write_bytes(data)
        return
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB").save(target, format="JPEG", quality=quality)


def unpack(packed: Path, dest: Path, workers: int, quality: int) -> dict:
    manifest_path = packed / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"expected {manifest_path}: run benchmarks/gpu/pack_celeba.py first")
    manifest = json.loads(manifest_path.read_text())
    source, target = packed / "celeba", dest / "celeba"
    images = target / IMAGE_FOLDER
    images.mkdir(parents=True, exist_ok=True)
    for name in manifest["text_files"]:
        (target / name).write_bytes(lzma.decompress((source / f"{name}.xz").read_bytes()))
    rows = [line.split("\t") for line in lzma.decompress((source / INDEX).read_bytes()).decode().splitlines()]
    blob = source / BLOB
    if len(rows) != manifest["images"] or blob.stat().st_size != manifest["blob_bytes"]:
        raise ValueError(f"{source}: the index lists {len(rows):,} images and {blob.name} holds "
                         f"{blob.stat().st_size:,} bytes; {manifest_path} says {manifest['images']:,} and "
                         f"{manifest['blob_bytes']:,}: the packed folder is incomplete, pack it again")
    digest = hashlib.sha256()
    with blob.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            digest.update(chunk)
    if digest.hexdigest() != manifest["blob_sha256"]:
        raise ValueError(f"{blob}: its sha256 differs from {manifest_path}'s: the file is damaged, pack it again")
    jobs, offset = [], 0
    for name, length, kind in rows:
        jobs.append((str(images / name), offset, int(length), kind, quality))
        offset += int(length)
    with multiprocessing.Pool(workers, initializer=_open_blob, initargs=(str(blob),)) as pool:
        for _ in pool.imap_unordered(_write_image, jobs, chunksize=256):
            pass
    for name in manifest["folders"]:
        with tarfile.open(packed / name) as tar:
            tar.extractall(dest, filter="data")
    return manifest


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    manifest = unpack(args.packed, args.dest, args.workers, args.quality)
    written = sum(1 for entry in os.scandir(args.dest / "celeba" / IMAGE_FOLDER) if entry.is_file())
    print(f"unpacked {manifest['images']:,} CelebA images (WebP quality {manifest['webp_quality']} -> JPEG quality "
          f"{args.quality}; {written:,} files in {args.dest / 'celeba' / IMAGE_FOLDER}) and "
          f"{', '.join(manifest['folders']) or 'no other folder'} into {args.dest} in "
          f"{time.perf_counter() - start:.1f} s with {args.workers} processes", flush=True)


if __name__ == "__main__":
    main()
