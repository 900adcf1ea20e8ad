"""Write a tiny CelebA folder in the official layout, with the awkward files real data can hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()

SYNTHETIC_SPLITS = ["0"] * 6 + ["1"] * 3 + ["2"] * 3
"""000001-000006 train, 000007-000009 validation, 000010-000012 test."""
SYNTHETIC_IMAGES = {
    "000001.jpg": "RGB",
    "000002.jpg": "RGB",
    "000003.jpg": "L",  # grayscale JPEG
    "000004.jpg": "RGBA",  # a PNG with alpha under a .jpg name
    "000005.jpg": "corrupt",
    # 000006 (train), 000009 (val) and all of the test split have no image
    "000007.jpg": "RGB",
    "000008.jpg": "RGB",
}


def write_image(path: Path, mode: str, seed: int, size: tuple[int, int] = (10, 12)) -> None:
    """A random ``size = (w, h)`` image of ``mode`` ("RGB", "L", "RGBA") or, for "corrupt", garbage bytes."""
    rng = np.random.default_rng(seed)
    if mode == "corrupt":
        path.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
        return
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze(-1 if channels == 1 else None)
    Image.fromarray(pixels, mode).save(path, format="PNG" if mode == "RGBA" else "JPEG")


def synthetic_attribute_values(rows: int) -> np.ndarray:
    """The -1/1 attribute table of the synthetic folder: every label and group appears in each split."""
    values = -np.ones((rows, len(ATTRIBUTES)), dtype=int)
    values[0::2, ATTRIBUTES.index("Smiling")] = 1
    values[1::2, ATTRIBUTES.index("Attractive")] = 1
    values[[0, 2, 3, 6], ATTRIBUTES.index("Male")] = 1
    return values


def write_synthetic_celeba(root: Path) -> Path:
    """Write ``root/celeba`` (see :data:`SYNTHETIC_IMAGES`); return ``root`` (the data directory)."""
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, len(SYNTHETIC_SPLITS) + 1)]
    values = synthetic_attribute_values(len(names))
    lines = [str(len(names)), " ".join(ATTRIBUTES) + " "]
    lines += [name + " " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, values)]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text(
        "\n".join(f"{name} {split}" for name, split in zip(names, SYNTHETIC_SPLITS)) + "\n"
    )
    for seed, (name, mode) in enumerate(SYNTHETIC_IMAGES.items()):
        write_image(folder / "img_align_celeba" / name, mode, seed)
    return root

