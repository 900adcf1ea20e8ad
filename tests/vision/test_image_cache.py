import json
import os
import pickle

import pytest
import torch

from fairbinn.vision.cache import ImageStore, as_image_size, default_cache_dir, read_image

from synthetic_celeba import write_image


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    modes = ["RGB", "L", "RGB", "corrupt", "RGBA", "RGB"]
    paths = [folder / f"{i:06d}.jpg" for i in range(len(modes))]
    for seed, (path, mode) in enumerate(zip(paths, modes)):
        write_image(path, mode, seed, size=(10 + seed, 12))
    return paths


def test_build_skips_unreadable_files_and_stores_resized_rgb(images, tmp_path):
    store = ImageStore.open_or_build(images, (8, 6), tmp_path / "cache", name="demo")
    assert not store.reused and store.unreadable == ["000003.jpg"]
    assert store.readable.tolist() == [True, True, True, False, True, True]
    assert len(store) == 5 and store.shape == (5, 3, 8, 6)
    assert store.data_path.parent == tmp_path / "cache" and store.data_path.name.startswith("demo_8x6_")
    assert store.data_path.stat().st_size == 5 * 3 * 8 * 6
    readable = [p for p in images if p.name != "000003.jpg"]
    for i, path in enumerate(readable):
        assert torch.equal(store[i], read_image(path, (8, 6)))
    meta = json.loads(store.meta_path.read_text())
    assert meta["image_size"] == [8, 6] and meta["num_files"] == 6 and meta["source"] == str(images[0].parent)


def test_valid_store_is_reused_without_rebuilding(images, tmp_path):
    first = ImageStore.open_or_build(images, (8, 8), tmp_path)
    stamp = first.data_path.stat().st_mtime_ns
    again = ImageStore.open_or_build(images, (8, 8), tmp_path)
    assert again.reused and again.data_path == first.data_path and again.unreadable == first.unreadable
    assert again.data_path.stat().st_mtime_ns == stamp
    assert torch.equal(again[4], first[4])


def test_other_size_subset_or_changed_file_never_reuses_a_store(images, tmp_path):
    base = ImageStore.open_or_build(images, (8, 8), tmp_path)
    other_size = ImageStore.open_or_build(images, (8, 4), tmp_path)
    subset = ImageStore.open_or_build(images[:-1], (8, 8), tmp_path)
    assert not other_size.reused and not subset.reused
    assert len({base.data_path, other_size.data_path, subset.data_path}) == 3
    write_image(images[0], "RGB", seed=99, size=(10, 12))  # same name, new pixels
    os.utime(images[0], ns=(1, 1))
    changed = ImageStore.open_or_build(images, (8, 8), tmp_path)
    assert not changed.reused and changed.data_path != base.data_path
    assert torch.equal(changed[0], read_image(images[0], (8, 8))) and not torch.equal(changed[0], base[0])


@pytest.mark.parametrize("damage", ["metadata", "truncated", "no metadata"])
def test_damaged_or_mismatched_store_is_rebuilt(images, tmp_path, damage):
    store = ImageStore.open_or_build(images, (8, 8), tmp_path)
    if damage == "metadata":  # a store claiming other settings under this name
        meta = json.loads(store.meta_path.read_text())
        store.meta_path.write_text(json.dumps({**meta, "source": "/elsewhere"}))
    elif damage == "truncated":
        store.data_path.write_bytes(store.data_path.read_bytes()[:100])
    else:
        store.meta_path.unlink()
    rebuilt = ImageStore.open_or_build(images, (8, 8), tmp_path)
    assert not rebuilt.reused and rebuilt.data_path == store.data_path
    assert torch.equal(rebuilt[2], read_image(images[2], (8, 8)))
    assert ImageStore.open_or_build(images, (8, 8), tmp_path).reused


def test_pickled_store_maps_its_file_again(images, tmp_path):
    store = ImageStore.open_or_build(images, (8, 8), tmp_path)
    expected = store[1]
    copy = pickle.loads(pickle.dumps(store))
    assert copy._pixels is None and torch.equal(copy[1], expected)


def test_default_cache_dir_is_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("FAIRBINN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "fairbinn" / "image_cache"
    monkeypatch.setenv("FAIRBINN_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"


def test_empty_list_and_bad_sizes_are_refused(images, tmp_path):
    with pytest.raises(ValueError, match="at least one file"):
        ImageStore.open_or_build([], (8, 8), tmp_path)
    assert as_image_size(32) == (32, 32) and as_image_size([32, 24]) == (32, 24)
    for bad in (0, (8,), (8, -1), 8.0, True):
        with pytest.raises(ValueError, match="image_size must be"):
            as_image_size(bad)
