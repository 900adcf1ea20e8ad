import shutil

import numpy as np
import pytest
import torch

from fairbinn.core.datadir import DataFilesNotFoundError
from fairbinn.vision import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CelebA,
    load_celeba,
    read_celeba_index,
)
from fairbinn.vision.cache import read_image

from synthetic_celeba import ATTRIBUTES, synthetic_attribute_values


# --- the real files -------------------------------------------------------------------------------


def test_real_index_counts_rows_and_images_per_split(data_dir):
    index = read_celeba_index(data_dir)
    assert len(index.files) == 202_599 and index.attributes.shape == (202_599, 40)
    assert index.attribute_names == tuple(ATTRIBUTES)
    assert index.counts() == {
        "train": {"rows": 162_770, "images": 41_389},
        "val": {"rows": 19_867, "images": 4_530},
        "test": {"rows": 19_962, "images": 4_640},
    }
    assert int(index.present.sum()) == 50_559
    # line 3 of list_attr_celeba.txt
    assert index.files[0] == "000001.jpg"
    assert index.attributes[0, :5].tolist() == [-1, 1, 1, -1, -1]
    assert index.attributes[0, index.column("Smiling")] == 1 and index.attributes[0, index.column("Male")] == -1


def test_real_split_uses_present_images_only(data_dir, tmp_path):
    val = CelebA(data_dir, "val", "Smiling", image_size=32, max_images=100, cache_dir=tmp_path)
    assert len(val) == 100 and val.attribute_rows == 19_867 and val.missing_images == 15_337
    assert val.files[:3] == ["162771.jpg", "162773.jpg", "162784.jpg"] and val.files[-1] == "163141.jpg"
    assert int(val.y.sum()) == 47 and int(val.s.sum()) == 49  # Smiling / Male among these 100
    assert val.group_names == ["Female", "Male"] and val.unreadable == []
    image, y, s = val[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert y.dtype == torch.float32 and s.dtype == torch.int64
    raw = read_image(data_dir / "celeba" / "img_align_celeba" / "162771.jpg")
    assert raw.shape == (3, 109, 89)  # the shared copy is at half resolution
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.allclose(image, (val.image(0).float() / 255 - mean) / std, atol=1e-6)


def test_real_max_images_keeps_each_split_share(data_dir, tmp_path):
    data = load_celeba("Wavy_Hair", data_dir=data_dir, image_size=16, max_images=300, cache_dir=tmp_path)
    summary = data.summary()
    assert [summary[split]["images"] for split in ("train", "val", "test")] == [246, 27, 28]
    assert summary["train"]["missing_images"] == 121_381 and summary["test"]["attribute_rows"] == 19_962
    assert data.target == "Wavy_Hair" and data.sensitive == "Male"


# --- a synthetic folder with awkward files ---------------------------------------------------------


def test_parsing_missing_and_unreadable_images(synthetic_celeba, tmp_path):
    train = CelebA(synthetic_celeba, "train", "Smiling", image_size=(8, 6), cache_dir=tmp_path / "cache")
    assert train.attribute_rows == 6 and train.missing_images == 1  # 000006.jpg has no file
    assert train.unreadable == ["000005.jpg"]  # present but corrupt: skipped, counted
    assert train.files == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg"]
    values = synthetic_attribute_values(12)[:4]
    assert train.y.tolist() == (values[:, ATTRIBUTES.index("Smiling")] == 1).tolist()
    assert train.s.tolist() == [1, 0, 1, 1]
    assert train.summary() == {
        "images": 4, "attribute_rows": 6, "missing_images": 1, "unreadable_images": 1,
        "positive_rate": 0.5, "group_shares": [0.25, 0.75],
    }
    gray, rgba = train.image(2), train.image(3)  # grayscale and RGBA files come out RGB
    assert gray.shape == rgba.shape == (3, 8, 6) and gray.dtype == torch.uint8
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_without_cache_images_match_and_unreadable_are_found_up_front(synthetic_celeba, tmp_path):
    cached = CelebA(synthetic_celeba, "train", image_size=8, cache_dir=tmp_path / "cache")
    direct = CelebA(synthetic_celeba, "train", image_size=8, cache=False)
    assert direct.store is None and direct.unreadable == ["000005.jpg"] and direct.files == cached.files
    for i in range(len(direct)):
        assert torch.equal(direct.image(i), cached.image(i))
    assert not any((tmp_path / "data").rglob("*.u8"))  # nothing written beside the data


def test_empty_split_is_refused_with_a_clear_message(synthetic_celeba):
    with pytest.raises(ValueError, match=r"CelebA test split: none of its 3 images is in .*img_align_celeba"):
        CelebA(synthetic_celeba, "test", cache=False)


def test_split_of_only_corrupt_files_is_refused(synthetic_celeba, tmp_path):
    for name in ("000007.jpg", "000008.jpg"):
        (synthetic_celeba / "celeba" / "img_align_celeba" / name).write_bytes(b"")
    with pytest.raises(ValueError, match="CelebA val split: none of its 2 image files could be decoded"):
        CelebA(synthetic_celeba, "val", cache_dir=tmp_path / "cache")


def test_unknown_attribute_lists_the_valid_names(synthetic_celeba):
    valid_names = r"unknown CelebA attribute 'Beard'; choose one of: 5_o_Clock_Shadow, .*Wavy_Hair"
    with pytest.raises(ValueError, match=valid_names):
        CelebA(synthetic_celeba, "train", "Beard", cache=False)
    with pytest.raises(ValueError, match="unknown CelebA attribute 'male'"):
        CelebA(synthetic_celeba, "train", "Smiling", "male", cache=False)
    with pytest.raises(ValueError, match="both 'Male'"):
        CelebA(synthetic_celeba, "train", "Male", "Male", cache=False)
    with pytest.raises(ValueError, match=r"unknown CelebA split 'valid'; choose one of \['train', 'val', 'test'\]"):
        CelebA(synthetic_celeba, "valid", cache=False)


def test_missing_files_name_what_is_expected(tmp_path, synthetic_celeba):
    with pytest.raises(DataFilesNotFoundError, match="list_attr_celeba.txt \\+ list_eval_partition.txt"):
        CelebA(tmp_path / "nowhere")
    shutil.rmtree(synthetic_celeba / "celeba" / "img_align_celeba")
    with pytest.raises(DataFilesNotFoundError, match="img_align_celeba/"):
        CelebA(synthetic_celeba)


def _cut_last_line(lines):
    lines[-1] = lines[-1][: len(lines[-1]) // 2]


def _blank_line_then_bad_value(lines):
    lines.insert(5, "")  # line 6 is blank: the rows below move down one line
    lines[7] = lines[7][:-2] + " x"


ATTRIBUTE_FIELDS = r"expected 41 whitespace-separated fields \(the file name and the 40 attribute values\)"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines.__setitem__(3, lines[3].replace(" 1", " 0", 1)),
         r"line 4: expected -1 or 1 for attribute 'Attractive', got '0'"),
        (lambda lines: lines.__setitem__(8, lines[8][:-2] + " x"), r"line 9: expected -1 or 1 for attribute 'Young', got 'x'"),
        (_blank_line_then_bad_value, r"line 8: expected -1 or 1 for attribute 'Young', got 'x'"),
        (lambda lines: lines.__setitem__(0, "13"), r"line 1: expected the number of image rows that follow \(12\), got 13"),
        (lambda lines: lines.__setitem__(0, "images: 12"), r"line 1: expected the number of images, got 'images: 12'"),
        (lambda lines: lines.__setitem__(1, " ".join(ATTRIBUTES[:39])),
         r"line 2: expected the 40 attribute names separated by spaces, found 39 field\(s\)"),
        (lambda lines: lines.__setitem__(1, ",".join(ATTRIBUTES)),
         r"line 2: expected the 40 attribute names separated by spaces, found 1 field\(s\); line 2 looks ','-separated"),
        (lambda lines: lines.__setitem__(4, lines[4] + " 1"), rf"line 5: {ATTRIBUTE_FIELDS}, found 42 \(a value too many\)"),
        (lambda lines: lines.__setitem__(2, lines[2] + " 1"), rf"line 3: {ATTRIBUTE_FIELDS}, found 42"),
        (lambda lines: lines.__setitem__(5, lines[5][:-9]), rf"line 6: {ATTRIBUTE_FIELDS}, found 38 \(a row cut short"),
        (_cut_last_line, rf"line 14: {ATTRIBUTE_FIELDS}, found 19 \(a row cut short"),
        (lambda lines: lines.__setitem__(6, ",".join(lines[6].split())),
         rf"line 7: {ATTRIBUTE_FIELDS}, found 1 \(the line looks ','-separated\)"),
    ],
)
def test_malformed_attribute_file(synthetic_celeba, edit, message):
    path = synthetic_celeba / "celeba" / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"list_attr_celeba\.txt, " + message):
        read_celeba_index(synthetic_celeba)


PARTITION_FIELDS = r"expected 2 whitespace-separated fields \(the file name and the split 0, 1 or 2\)"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines.__setitem__(2, "000003.jpg 3"), r"line 3: expected the split 0, 1 or 2, got '3'"),
        (lambda lines: lines.__setitem__(4, "000005.jpg x"), r"line 5: expected the split 0, 1 or 2, got 'x'"),
        (lambda lines: lines.__setitem__(3, "000004.jpg"), rf"line 4: {PARTITION_FIELDS}, found 1 \(a row cut short"),
        (lambda lines: lines.__setitem__(0, "000001.jpg 0 0"), rf"line 1: {PARTITION_FIELDS}, found 3 \(a value too many\)"),
        (lambda lines: lines.__setitem__(6, "000007.jpg 1 1"), rf"line 7: {PARTITION_FIELDS}, found 3"),
        (lambda lines: lines.__setitem__(1, "000002.jpg,0"), r"line 2: .*found 1 \(the line looks ','-separated\)"),
        (lambda lines: lines.__setitem__(11, "000001.jpg 0"),
         r"line 12: expected each image once, found 000001.jpg again \(first on line 1\)"),
        (lambda lines: lines.pop(),
         r"expected a line '<file> <0\|1\|2>' for every image of list_attr_celeba.txt; "
         r"1 image\(s\) of list_attr_celeba.txt have no split \(first: 000012.jpg\)"),
    ],
)
def test_malformed_partition_file(synthetic_celeba, edit, message):
    path = synthetic_celeba / "celeba" / "list_eval_partition.txt"
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"list_eval_partition\.txt(, |: )" + message):
        read_celeba_index(synthetic_celeba)


def test_loader_batches_with_workers_and_exposes_targets(synthetic_celeba, tmp_path):
    train = CelebA(synthetic_celeba, "train", image_size=8, cache_dir=tmp_path / "cache")
    serial = list(train.loader(batch_size=3))
    loader = train.loader(batch_size=3, num_workers=2)
    assert loader.num_workers == 2
    parallel = list(loader)
    assert [len(b[1]) for b in parallel] == [3, 1]
    for (xa, ya, sa), (xb, yb, sb) in zip(serial, parallel):
        assert xa.shape[1:] == (3, 8, 8) and torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(sa, sb)
    y, s = loader.targets()
    assert torch.equal(y, train.y) and torch.equal(s, train.s)
    # a seeded shuffle: the same seed gives the same order, each epoch a new one
    first, again = (np.concatenate([b[2].numpy() for b in train.loader(2, shuffle=True, seed=3)]) for _ in range(2))
    assert sorted(first.tolist()) == sorted(train.s.tolist()) and np.array_equal(first, again)
