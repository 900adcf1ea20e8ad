"""CelebA: predict a face attribute with another (by default Male) as the sensitive attribute.

Reads the official layout in ``<data_dir>/celeba/``::

    img_align_celeba/000001.jpg ...   aligned face images
    list_attr_celeba.txt              a count, the 40 attribute names, then "<file> <40 values of -1/1>" per image
    list_eval_partition.txt           "<file> <0|1|2>": train, validation, test

Only the images present on disk are used; each split reports how many of its
attribute rows had no image file and how many files could not be decoded.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from tqdm.auto import tqdm

from ..core.datadir import DataFilesNotFoundError, DatasetSource, dataset_dir
from ..core.tablefile import guess_separator
from .cache import ImageStore, as_image_size, read_image, try_read_image

__all__ = [
    "ATTRIBUTE_FILE",
    "PARTITION_FILE",
    "IMAGE_FOLDER",
    "SPLITS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CelebAIndex",
    "read_celeba_index",
    "default_transform",
    "CelebA",
    "CelebALoader",
    "CelebASplits",
    "load_celeba",
]

_CELEBA_STEPS = """\
CelebA is not downloaded automatically: its files are shared through Google Drive
(or Baidu) after agreeing to the dataset's terms (non-commercial research use only).
  1. Open https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html,
     read the agreement and follow the Google Drive link of "Align&Cropped Images".
  2. Download Img/img_align_celeba.zip, Anno/list_attr_celeba.txt,
     Eval/list_eval_partition.txt and, optionally, Anno/identity_CelebA.txt.
  3. Put them in {folder}:
       unzip img_align_celeba.zip there, so the images are
       {folder}/img_align_celeba/000001.jpg ... 202599.jpg,
       and copy the .txt files next to that folder.
  (Or pass --data-dir / set $FAIRBINN_DATA to the directory that holds celeba/.)"""
CELEBA_SOURCE = DatasetSource(
    "celeba", "celeba", manual_steps=_CELEBA_STEPS,
    expected=("img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt"),
)
"""CelebA cannot be fetched (a licence agreement): ``fairbinn download celeba`` prints these steps."""

ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDER = "img_align_celeba"
SPLITS = {"train": 0, "val": 1, "test": 2}
"""Split names and their code in ``list_eval_partition.txt``."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class CelebAIndex:
    """The parsed annotation files and which images exist.

    Attributes
    ----------
    folder : Path
        ``<data_dir>/celeba``.
    attribute_names : tuple of str
        The 40 attribute names, in file order.
    files : numpy.ndarray of str, shape (n,)
        Image file names, in the order of ``list_attr_celeba.txt``.
    attributes : numpy.ndarray of int8, shape (n, 40)
        The -1/1 attribute values.
    partition : numpy.ndarray of int8, shape (n,)
        0 train, 1 validation, 2 test.
    present : numpy.ndarray of bool, shape (n,)
        Whether ``img_align_celeba/<file>`` exists.
    """

    folder: Path
    attribute_names: tuple[str, ...]
    files: np.ndarray
    attributes: np.ndarray
    partition: np.ndarray
    present: np.ndarray

    @property
    def image_folder(self) -> Path:
        return self.folder / IMAGE_FOLDER

    def column(self, attribute: str) -> int:
        """Column of ``attribute``; ``ValueError`` listing the valid names if unknown."""
        try:
            return self.attribute_names.index(attribute)
        except ValueError:
            raise ValueError(
                f"unknown CelebA attribute {attribute!r}; choose one of: {', '.join(self.attribute_names)}"
            ) from None

    def counts(self) -> dict[str, dict[str, int]]:
        """Attribute rows and present images of each split, e.g. ``{"train": {"rows": .., "images": ..}}``."""
        return {
            split: {
                "rows": int((self.partition == code).sum()),
                "images": int(((self.partition == code) & self.present).sum()),
            }
            for split, code in SPLITS.items()
        }


def read_celeba_index(data_dir: str | os.PathLike | None = None) -> CelebAIndex:
    """Parse ``list_attr_celeba.txt`` and ``list_eval_partition.txt`` and list the images present.

    Raises :class:`~fairbinn.core.datadir.DataFilesNotFoundError` naming the
    expected files when the annotation files or the image folder are missing,
    and ``ValueError`` (naming file and line) for a malformed file. The result
    is memoised until one of the files or the image folder changes.
    """
    folder, (attr_path, partition_path) = dataset_dir(
        "celeba", data_dir, [[ATTRIBUTE_FILE, PARTITION_FILE]]
    )
    images = folder / IMAGE_FOLDER
    if not images.is_dir():
        raise DataFilesNotFoundError(
            f"celeba: expected the image folder {IMAGE_FOLDER}/ (the aligned JPEGs, e.g. "
            f"{IMAGE_FOLDER}/000001.jpg) beside {ATTRIBUTE_FILE} in {folder}"
        )
    stamps = tuple(os.stat(p).st_mtime_ns for p in (attr_path, partition_path, images))
    return _read_index(folder.resolve(), stamps)


@functools.lru_cache(maxsize=4)
def _read_index(folder: Path, stamps: tuple[int, ...]) -> CelebAIndex:
    names, files, values = _read_attributes(folder / ATTRIBUTE_FILE)
    partition = _read_partition(folder / PARTITION_FILE, files)
    on_disk = {entry.name for entry in os.scandir(folder / IMAGE_FOLDER) if entry.is_file()}
    present = np.fromiter((name in on_disk for name in files), dtype=bool, count=len(files))
    return CelebAIndex(folder, names, files, values, partition, present)


def _read_attributes(path: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    with path.open(encoding="utf-8") as handle:
        first, second_line, third_line = handle.readline().strip(), handle.readline(), handle.readline()
    if not first.isdigit():
        raise ValueError(f"{path}, line 1: expected the number of images, got {first[:40]!r}")
    second = second_line.split()
    if len(second) != 40:
        other = guess_separator(second_line) if len(second) == 1 else None
        raise ValueError(
            f"{path}, line 2: expected the 40 attribute names separated by spaces, found {len(second)} field(s)"
            + (f"; line 2 looks {other!r}-separated" if other else "")
        )
    # the first row is checked up front: pandas would take one with a field too many as an index column
    _check_attribute_rows(path, tuple(second), [(3, third_line)])
    try:
        table = pd.read_csv(path, sep=r"\s+", skiprows=2, header=None, names=["file", *second], dtype={"file": str})
    except (pd.errors.ParserError, ValueError) as error:
        _check_attribute_rows(path, tuple(second), _numbered_lines(path))
        raise ValueError(
            f"{path}: expected '<file> <40 values of -1 or 1>' on every line from line 3 ({error})"
        ) from None
    values = table[list(second)]
    if values.isna().any().any() or not values.isin([-1, 1]).all().all():
        _check_attribute_rows(path, tuple(second), _numbered_lines(path))  # raises, naming the line
        raise ValueError(f"{path}: expected '<file> <40 values of -1 or 1>' on every line from line 3")
    if int(first) != len(table):
        raise ValueError(
            f"{path}, line 1: expected the number of image rows that follow ({len(table)}), got {int(first)}"
        )
    return tuple(second), table["file"].to_numpy(dtype=str), values.to_numpy(dtype=np.int8)


def _numbered_lines(path: Path):
    """``(1-based line number, line)`` of a text file, lazily."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        yield from enumerate(handle, start=1)


def _field_count_problem(line: str, found: int, expected: int) -> str:
    if found > expected:
        return "a value too many"
    other = guess_separator(line) if found == 1 else None
    return f"the line looks {other!r}-separated" if other else "a row cut short or a missing value"


def _check_attribute_rows(path: Path, names: tuple[str, ...], lines) -> None:
    """Raise for the first of ``lines`` (``(number, text)``, from line 3) that is not ``<file> <40 values of -1/1>``."""
    for number, line in lines:
        fields = line.split()
        if number < 3 or not fields:
            continue
        if len(fields) != len(names) + 1:
            raise ValueError(
                f"{path}, line {number}: expected {len(names) + 1} whitespace-separated fields (the file name "
                f"and the {len(names)} attribute values), found {len(fields)} "
                f"({_field_count_problem(line, len(fields), len(names) + 1)}): {line.strip()[:80]!r}"
            )
        for name, value in zip(names, fields[1:]):
            if value not in ("-1", "1") and _number(value) not in (-1.0, 1.0):
                raise ValueError(f"{path}, line {number}: expected -1 or 1 for attribute {name!r}, got {value!r}")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _check_partition_rows(path: Path, lines) -> None:
    """Raise for the first of ``lines`` (``(number, text)``) that is not ``<file> <0|1|2>``."""
    for number, line in lines:
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(
                f"{path}, line {number}: expected 2 whitespace-separated fields (the file name and the split "
                f"0, 1 or 2), found {len(fields)} ({_field_count_problem(line, len(fields), 2)}): "
                f"{line.strip()[:80]!r}"
            )
        if fields[1] not in ("0", "1", "2") and _number(fields[1]) not in (0.0, 1.0, 2.0):
            raise ValueError(f"{path}, line {number}: expected the split 0, 1 or 2, got {fields[1]!r}")


def _read_partition(path: Path, files: np.ndarray) -> np.ndarray:
    first = next(((n, line) for n, line in _numbered_lines(path) if line.strip()), (1, ""))
    _check_partition_rows(path, [first])  # pandas would take a first row with a field too many as an index
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, names=["file", "split"], dtype={"file": str})
    except (pd.errors.ParserError, ValueError) as error:
        _check_partition_rows(path, _numbered_lines(path))
        raise ValueError(f"{path}: expected '<file> <0|1|2>' on every line ({error})") from None
    if not table["split"].isin(list(SPLITS.values())).all():
        _check_partition_rows(path, _numbered_lines(path))  # raises, naming the line
        raise ValueError(f"{path}: expected '<file> <0|1|2>' on every line")
    try:
        split = table.set_index("file")["split"].reindex(files)
    except ValueError:  # a file listed twice
        seen: dict[str, int] = {}
        for number, line in _numbered_lines(path):
            name = line.split()[0] if line.strip() else None
            if name in seen:
                raise ValueError(
                    f"{path}, line {number}: expected each image once, found {name} again (first on line {seen[name]})"
                ) from None
            if name is not None:
                seen[name] = number
        raise
    if split.isna().any():
        missing = split.index[split.isna()]
        raise ValueError(
            f"{path}: expected a line '<file> <0|1|2>' for every image of {ATTRIBUTE_FILE}; "
            f"{len(missing)} image(s) of {ATTRIBUTE_FILE} have no split (first: {missing[0]})"
        )
    return split.to_numpy(dtype=np.int8)


def default_transform() -> v2.Compose:
    """``uint8 (3, h, w)`` -> ``float32`` in [0, 1] -> ImageNet mean/std normalisation."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class CelebA(Dataset):
    """One split of CelebA as ``(image, y, s)`` examples.

    Parameters
    ----------
    data_dir : path, optional
        The data directory (holding ``celeba/``); defaults to ``$FAIRBINN_DATA``,
        then the user cache.
    split : {"train", "val", "test"}, default "train"
        The official partition.
    target : str, default "Attractive"
        Attribute to predict: ``y = 1`` where it is 1. Any of the 40 names.
    sensitive : str, default "Male"
        Sensitive attribute: group ``s = 1`` where it is 1, else ``s = 0``.
    image_size : int or (int, int), default 64
        Images are resized to ``(h, w)`` (an int is a square), bilinear with
        antialiasing; the aspect ratio is not kept.
    transform : callable, optional
        Applied to each ``uint8 (3, h, w)`` image. ``None`` (default) means
        :func:`default_transform` (ImageNet normalisation). Pass your own for
        augmentation; it must return what the model takes.
    max_images : int, optional
        Use only the first ``max_images`` images present in this split (file
        order; unreadable ones among them are then skipped), e.g. for tests
        and quick runs.
    cache : bool, default True
        Decode and resize every image once into an :class:`ImageStore`
        (memory-mapped ``uint8``) and read that each epoch. With ``False``
        every access decodes the JPEG; all files are decoded once here to
        find the unreadable ones, so an epoch never meets one.
    cache_dir : path, optional
        Folder of the image store; default
        :func:`~fairbinn.vision.cache.default_cache_dir`.
    progress : bool, default False
        Progress bar while building the store or checking the files.

    Attributes
    ----------
    files : list of str
        Image file of each example.
    y : Tensor, shape (n,), float32
        0/1 labels.
    s : Tensor, shape (n,), int64
        0/1 groups; ``group_names[k]`` names group ``k``.
    attribute_rows : int
        Rows of this split in ``list_attr_celeba.txt``.
    missing_images : int
        Rows of this split whose image file is absent.
    unreadable : list of str
        Files present but not decodable, skipped.
    store : ImageStore or None
        The pixel cache when ``cache=True``.

    ``dataset[i]`` is ``(transform(image), y[i], s[i])``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        split: str = "train",
        target: str = "Attractive",
        sensitive: str = "Male",
        *,
        image_size: int | Sequence[int] = 64,
        transform: Callable[[Tensor], Any] | None = None,
        max_images: int | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = False,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown CelebA split {split!r}; choose one of {list(SPLITS)}")
        if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
            raise ValueError(f"max_images must be a positive integer or None, got {max_images!r}")
        self.image_size = as_image_size(image_size)
        index = read_celeba_index(data_dir)
        target_column, sensitive_column = index.column(target), index.column(sensitive)
        if target == sensitive:
            raise ValueError(f"the target and the sensitive attribute are both {target!r}")
        in_split = index.partition == SPLITS[split]
        rows = np.flatnonzero(in_split & index.present)
        self.split, self.target, self.sensitive = split, target, sensitive
        self.attribute_rows = int(in_split.sum())
        self.missing_images = self.attribute_rows - len(rows)
        if len(rows) == 0:
            raise ValueError(
                f"CelebA {split} split: none of its {self.attribute_rows:,} images is in {index.image_folder}; "
                "check the data directory or download the aligned images"
            )
        rows = rows[:max_images]
        paths = [index.image_folder / name for name in index.files[rows]]
        if cache:
            self.store: ImageStore | None = ImageStore.open_or_build(
                paths, self.image_size, cache_dir, name=f"celeba_{split}", progress=progress
            )
            readable = self.store.readable
        else:
            self.store = None
            readable = np.array(
                [
                    try_read_image(p) is not None
                    for p in tqdm(paths, desc=f"checking {split} images", disable=not progress, leave=False)
                ],
                dtype=bool,
            )
        self.unreadable = [p.name for p, ok in zip(paths, readable) if not ok]
        rows = rows[readable]
        if len(rows) == 0:
            raise ValueError(f"CelebA {split} split: none of its {len(paths):,} image files could be decoded")
        self._folder = index.image_folder
        self.files: list[str] = index.files[rows].tolist()
        self.y = torch.from_numpy(index.attributes[rows, target_column] == 1).float()
        self.s = torch.from_numpy(index.attributes[rows, sensitive_column] == 1).long()
        self.group_names = [f"not {sensitive}", sensitive] if sensitive != "Male" else ["Female", "Male"]
        self.transform = default_transform() if transform is None else transform

    def __len__(self) -> int:
        return len(self.files)

    def image(self, index: int) -> Tensor:
        """The resized ``uint8 (3, h, w)`` image of example ``index``, before the transform."""
        if self.store is not None:
            return self.store[index]
        return read_image(self._folder / self.files[index], self.image_size)

    def __getitem__(self, index: int) -> tuple[Any, Tensor, Tensor]:
        return self.transform(self.image(index)), self.y[index], self.s[index]

    def targets(self) -> tuple[Tensor, Tensor]:
        """``(y, s)`` of the whole split, for the trainer's checks."""
        return self.y, self.s

    def summary(self) -> dict[str, Any]:
        """Image counts, positive rate and group shares, as plain values."""
        counts = torch.bincount(self.s, minlength=2).tolist()
        return {
            "images": len(self),
            "attribute_rows": self.attribute_rows,
            "missing_images": self.missing_images,
            "unreadable_images": len(self.unreadable),
            "positive_rate": round(float(self.y.mean()), 4),
            "group_shares": [round(c / len(self), 4) for c in counts],
        }

    def loader(
        self,
        batch_size: int = 128,
        shuffle: bool = False,
        num_workers: int = 0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> "CelebALoader":
        """A :class:`CelebALoader` over this split.

        ``shuffle`` draws a new order each epoch from a generator seeded with
        ``seed``; ``num_workers`` worker processes decode / read the images;
        ``kwargs`` go to ``torch.utils.data.DataLoader`` (e.g. ``pin_memory``).
        """
        generator = torch.Generator().manual_seed(0 if seed is None else seed) if shuffle else None
        return CelebALoader(
            self, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, generator=generator, **kwargs
        )


class CelebALoader(DataLoader):
    """A ``DataLoader`` of ``(images (n, 3, h, w), y (n,), s (n,))`` that exposes the split's targets.

    The trainer calls :meth:`targets` to check labels and groups before training.
    """

    def targets(self) -> tuple[Tensor, Tensor]:
        return self.dataset.targets()


@dataclass(frozen=True)
class CelebASplits:
    """Train, validation and test splits of CelebA for one target / sensitive pair."""

    train: CelebA
    val: CelebA
    test: CelebA
    name: ClassVar[str] = "celeba"

    @property
    def target(self) -> str:
        return self.train.target

    @property
    def sensitive(self) -> str:
        return self.train.sensitive

    @property
    def group_names(self) -> list[str]:
        return self.train.group_names

    @property
    def num_features(self) -> int:
        """Input values per image: 3 x height x width."""
        return 3 * self.train.image_size[0] * self.train.image_size[1]

    def summary(self) -> dict[str, Any]:
        """Target (also as ``label``), sensitive attribute, image size, each split's :meth:`CelebA.summary`
        and ``examples`` (image counts)."""
        return {
            "name": self.name,
            "target": self.target,
            "label": self.target,
            "sensitive_attribute": self.sensitive,
            "groups": self.group_names,
            "image_size": list(self.train.image_size),
            **{split.split: split.summary() for split in (self.train, self.val, self.test)},
            "examples": {split.split: len(split) for split in (self.train, self.val, self.test)},
        }

    def loaders(
        self, batch_size: int = 128, num_workers: int = 0, seed: int = 0, **kwargs: Any
    ) -> tuple[CelebALoader, CelebALoader, CelebALoader]:
        """Train (shuffled with ``seed``), validation and test loaders."""
        return (
            self.train.loader(batch_size, shuffle=True, num_workers=num_workers, seed=seed, **kwargs),
            self.val.loader(batch_size, num_workers=num_workers, **kwargs),
            self.test.loader(batch_size, num_workers=num_workers, **kwargs),
        )


def load_celeba(
    target: str = "Attractive",
    sensitive: str = "Male",
    data_dir: str | os.PathLike | None = None,
    *,
    image_size: int | Sequence[int] = 64,
    max_images: int | None = None,
    **kwargs: Any,
) -> CelebASplits:
    """The three official splits of CelebA for ``target`` vs ``sensitive``.

    Parameters
    ----------
    target, sensitive : str
        Attribute names (default Attractive vs Male).
    data_dir : path, optional
    image_size : int or (int, int), default 64
    max_images : int, optional
        At most this many images in all, each split keeping its share of the
        images present (with all 50,559 of the shared copy: 81.9 % train,
        9.0 % validation, 9.2 % test), at least one per split.
    **kwargs
        Passed to :class:`CelebA` (``transform``, ``cache``, ``cache_dir``, ``progress``).
    """
    caps: dict[str, int | None] = dict.fromkeys(SPLITS)
    if max_images is not None:
        if not isinstance(max_images, int) or max_images < 1:
            raise ValueError(f"max_images must be a positive integer or None, got {max_images!r}")
        present = {split: c["images"] for split, c in read_celeba_index(data_dir).counts().items()}
        total = sum(present.values())
        caps = {split: max(1, round(max_images * n / total)) if total else None for split, n in present.items()}
    return CelebASplits(
        *(
            CelebA(data_dir, split, target, sensitive, image_size=image_size, max_images=caps[split], **kwargs)
            for split in SPLITS
        )
    )
