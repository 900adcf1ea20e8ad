"""Pack CelebA (and small data folders such as Adult) into a few files for a GPU machine with a transfer limit.

The GPU machine that runs ``benchmarks/gpu/run_gpu.sh`` receives the repository's working tree limited to
64 MiB in all, and has no internet. The shared CelebA copy (50,559 aligned images of 89x109, about 230 MB with
the annotation files) does not fit, so this script **re-encodes every image as WebP at quality 25** (about
840 bytes each; lossy: the pixels differ from the original JPEGs) and concatenates them into one file.
``benchmarks/gpu/unpack_celeba.py`` rebuilds the official layout from it on the GPU machine. Users who have
the full data where they train skip both scripts and pass ``--data-dir`` to the benchmarks instead.

Output folder (default ``.gpu_data/`` at the repository root, which ``.git/info/exclude`` keeps out of git)::

    celeba/list_attr_celeba.txt.xz        the three annotation files, unchanged but xz-compressed
    celeba/list_eval_partition.txt.xz
    celeba/identity_CelebA.txt.xz         (when present)
    celeba/images.webp.bin                every image as WebP, concatenated (no per-file padding, unlike tar)
    celeba/images.index.tsv.xz            "<file name>\\t<bytes>\\t<webp|raw>" per image, in the blob's order
    adult.tar.xz, bail.tar.xz             each folder named by --also, as an xz-compressed tar
    manifest.json                         image count, WebP quality, sizes and sha256 of images.webp.bin

Usage::

    python benchmarks/gpu/pack_celeba.py --data-dir ../shared/data            # writes .gpu_data/, prints its size
    python benchmarks/gpu/pack_celeba.py --data-dir ../shared/data --also      # CelebA only
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import multiprocessing
import os
import subprocess
import tarfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
TEXT_FILES = ("list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt")
REQUIRED = TEXT_FILES[:2]
IMAGE_FOLDER = "img_align_celeba"
BLOB, INDEX, MANIFEST = "images.webp.bin", "images.index.tsv.xz", "manifest.json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("FAIRBINN_DATA"),
                        help="the directory holding celeba/ (default $FAIRBINN_DATA)")
    parser.add_argument("--out", type=Path, default=REPO / ".gpu_data", help="output folder (default .gpu_data/)")
    parser.add_argument("--quality", type=int, default=25, help="WebP quality, 1-100 (default 25)")
    parser.add_argument("--also", nargs="*", default=["adult", "bail"],
                        help="other folders of the data directory to pack as <name>.tar.xz (default: adult bail)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="encoding processes")
    args = parser.parse_args()
    if args.data_dir is None:
        parser.error("give --data-dir (the directory holding celeba/) or set $FAIRBINN_DATA")
    if not 1 <= args.quality <= 100:
        parser.error(f"--quality must be in 1..100, got {args.quality}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    return args


def encode_webp(job: tuple[str, int]) -> tuple[str, bytes]:
    """``("webp", bytes)``: one image file as WebP (RGB, the same size) at the given quality; or
    ``("raw", the file's bytes)`` for a file Pillow cannot decode, kept as it is (the library skips it)."""
    path, quality = job
    try:
        with Image.open(path) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="WEBP", quality=quality, method=6)
        return "webp", buffer.getvalue()
    except (OSError, ValueError, SyntaxError):
        return "raw", Path(path).read_bytes()


def pack(data_dir: Path, out: Path, quality: int, also: list[str], workers: int) -> dict:
    celeba = data_dir / "celeba"
    images = celeba / IMAGE_FOLDER
    missing = [p for p in (*(celeba / f for f in REQUIRED), images) if not p.exists()]
    missing += [data_dir / name for name in also if not (data_dir / name).is_dir()]
    if missing:
        raise FileNotFoundError(f"expected {', '.join(str(p) for p in missing)}")
    names = sorted(entry.name for entry in os.scandir(images) if entry.is_file())
    if not names:
        raise FileNotFoundError(f"no image files in {images}")
    (out / "celeba").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    text_files = [name for name in TEXT_FILES if (celeba / name).is_file()]
    for name in text_files:
        (out / "celeba" / f"{name}.xz").write_bytes(lzma.compress((celeba / name).read_bytes(), preset=9))
    digest, lengths, kinds = hashlib.sha256(), [], []
    with multiprocessing.Pool(workers) as pool, (out / "celeba" / BLOB).open("wb") as blob:
        jobs = ((str(images / name), quality) for name in names)
        for i, (kind, data) in enumerate(pool.imap(encode_webp, jobs, chunksize=256), start=1):
            blob.write(data)
            digest.update(data)
            lengths.append(len(data))
            kinds.append(kind)
            if i % 10000 == 0 or i == len(names):
                print(f"  encoded {i:,} / {len(names):,} images ({time.perf_counter() - start:.0f} s)", flush=True)
    index = "".join(f"{name}\t{length}\t{kind}\n" for name, length, kind in zip(names, lengths, kinds))
    (out / "celeba" / INDEX).write_bytes(lzma.compress(index.encode(), preset=9))
    for name in also:
        with tarfile.open(out / f"{name}.tar.xz", "w:xz", preset=9) as tar:
            tar.add(data_dir / name, arcname=name)
    raw = [name for name, kind in zip(names, kinds) if kind == "raw"]
    if raw:
        print(f"  {len(raw)} file(s) Pillow cannot decode, kept as they are (first: {raw[0]})")
    manifest = {"images": len(names), "webp_quality": quality, "blob_bytes": sum(lengths), "undecodable": raw,
                "blob_sha256": digest.hexdigest(), "text_files": text_files,
                "folders": [f"{name}.tar.xz" for name in also], "source": str(data_dir.resolve())}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


TRANSFER_LIMIT = 64 * 2**20
"""What the GPU machine receives at most: the working tree and the carried .gpu_data together."""


def working_tree_bytes(repo: Path = REPO) -> int | None:
    """Bytes of the files git tracks or would track (untracked, not ignored) in ``repo``; None outside git."""
    try:
        listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = {repo / name for name in listed.decode().split("\0") if name}
    return sum(path.stat().st_size for path in paths if path.is_file())


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    manifest = pack(args.data_dir, args.out, args.quality, args.also, args.workers)
    files = sorted(p for p in args.out.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    for path in files:
        print(f"  {path.stat().st_size / 2**20:8.2f} MiB  {path.relative_to(args.out)}")
    print(f"packed {manifest['images']:,} images (WebP quality {manifest['webp_quality']}, "
          f"{manifest['blob_bytes'] / manifest['images']:.0f} bytes each on average) and "
          f"{', '.join(manifest['folders']) or 'no other folder'} into {args.out}: "
          f"{total / 2**20:.2f} MiB in {len(files)} files, {time.perf_counter() - start:.0f} s")
    tree = working_tree_bytes()
    if tree is not None:
        both = tree + total
        print(f"with the repository's working tree ({tree / 2**20:.2f} MiB) the GPU machine receives "
              f"{both / 2**20:.2f} MiB of its {TRANSFER_LIMIT / 2**20:.0f} MiB limit"
              + ("" if both <= TRANSFER_LIMIT else ": too much; the call would be refused"))


if __name__ == "__main__":
    main()
