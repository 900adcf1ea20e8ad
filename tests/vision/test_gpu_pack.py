"""benchmarks/gpu: packing CelebA small for a GPU machine and rebuilding the official layout; vision.py's configs."""

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from fairbinn.vision import CelebA, read_celeba_index
from synthetic_celeba import SYNTHETIC_IMAGES

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name: str, path: Path):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # vision.py imports reporting from there
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the pools' workers find their functions by module name
    spec.loader.exec_module(module)
    return module


pack = _module("gpu_pack_celeba", BENCHMARKS / "gpu" / "pack_celeba.py")
unpack = _module("gpu_unpack_celeba", BENCHMARKS / "gpu" / "unpack_celeba.py")


def test_pack_then_unpack_rebuilds_the_official_layout(synthetic_celeba, tmp_path):
    (synthetic_celeba / "adult").mkdir()
    (synthetic_celeba / "adult" / "adult.data").write_text("39, State-gov\n")
    packed = tmp_path / "packed"
    manifest = pack.pack(synthetic_celeba, packed, quality=25, also=["adult"], workers=1)
    assert manifest["images"] == len(SYNTHETIC_IMAGES) == 7
    assert manifest["undecodable"] == ["000005.jpg"]  # the corrupt file travels as it is
    assert manifest["text_files"] == ["list_attr_celeba.txt", "list_eval_partition.txt"]  # no identity file here
    assert sorted(p.name for p in packed.rglob("*") if p.is_file()) == [
        "adult.tar.xz", "images.index.tsv.xz", "images.webp.bin", "list_attr_celeba.txt.xz",
        "list_eval_partition.txt.xz", "manifest.json"]

    dest = tmp_path / "dest"
    unpack.unpack(packed, dest, workers=2, quality=95)
    source, target = synthetic_celeba / "celeba", dest / "celeba"
    for name in manifest["text_files"]:
        assert (target / name).read_bytes() == (source / name).read_bytes()
    assert (dest / "adult" / "adult.data").read_text() == "39, State-gov\n"
    images = target / "img_align_celeba"
    assert sorted(p.name for p in images.iterdir()) == sorted(SYNTHETIC_IMAGES)
    assert (images / "000005.jpg").read_bytes() == (source / "img_align_celeba" / "000005.jpg").read_bytes()
    for name, mode in SYNTHETIC_IMAGES.items():
        if mode != "corrupt":
            with Image.open(images / name) as image:
                assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (10, 12))
    # the library sees the same rows, images and unreadable file as in the source folder
    before, after = read_celeba_index(synthetic_celeba), read_celeba_index(dest)
    assert after.present.tolist() == before.present.tolist()
    assert after.files.tolist() == before.files.tolist()
    for split, readable in (("train", 4), ("val", 2)):
        ours, theirs = (CelebA(folder, split, "Smiling", image_size=8, cache=False)
                        for folder in (dest, synthetic_celeba))
        assert (ours.files, ours.unreadable) == (theirs.files, theirs.unreadable) and len(ours) == readable
        assert (ours.y.tolist(), ours.s.tolist()) == (theirs.y.tolist(), theirs.s.tolist())
        assert ours[0][0].shape == (3, 8, 8)
    assert CelebA(dest, "train", image_size=8, cache=False).unreadable == ["000005.jpg"]


def test_unpack_refuses_a_damaged_blob(synthetic_celeba, tmp_path):
    packed = tmp_path / "packed"
    pack.pack(synthetic_celeba, packed, quality=25, also=[], workers=1)
    blob = packed / "celeba" / "images.webp.bin"
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="images.webp.bin: its sha256 differs"):
        unpack.unpack(packed, tmp_path / "dest", workers=1, quality=95)
    manifest = json.loads((packed / "manifest.json").read_text())
    blob.write_bytes(bytes(data[:-1]))
    with pytest.raises(ValueError, match=f"{manifest['blob_bytes'] - 1:,} bytes"):
        unpack.unpack(packed, tmp_path / "dest", workers=1, quality=95)


def test_pack_names_the_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        pack.pack(tmp_path, tmp_path / "packed", quality=25, also=[], workers=1)


def test_the_working_tree_counts_what_would_travel(tmp_path):
    import subprocess

    run = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    run("init", "-q")
    (tmp_path / "tracked.txt").write_bytes(b"x" * 100)
    (tmp_path / ".gitignore").write_text("ignored/\n")
    run("add", "tracked.txt", ".gitignore")
    (tmp_path / "untracked.txt").write_bytes(b"y" * 30)
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "big.bin").write_bytes(b"z" * 5000)
    assert pack.working_tree_bytes(tmp_path) == 100 + 30 + len("ignored/\n")
    assert pack.working_tree_bytes(tmp_path / "ignored" / "nowhere") is None  # not a git checkout


def _vision_args(**changes) -> argparse.Namespace:
    values = {"batch_size": 128, "device": "cpu", "paper_game": False, "follower_optimizer": None,
              "budget": None, "confidence": None}
    return argparse.Namespace(**{**values, **changes})


def test_vision_configs_keep_the_library_defaults_unless_an_option_says_otherwise():
    vision = _module("benchmark_vision", BENCHMARKS / "vision.py")
    config = vision.config_of(_vision_args(), "Smiling", "bilevel", seed=1, epochs=10)
    assert (config.follower_optimizer, config.leader_penalty) == ("sgd", True)  # TrainConfig()'s
    assert (config.eta, config.fairness_lr, config.lr, config.batch_size) == (100.0, 1e-5, 1e-3, 128)
    assert (config.epochs, config.seed, config.fairness_budget) == (10, 1, None)
    assert vision.label_of("bilevel", _vision_args()) == "FairBiNN (bilevel)"
    paper = _vision_args(paper_game=True, follower_optimizer="adam", budget=0.1)
    config = vision.config_of(paper, "Attractive", "bilevel")
    assert (config.follower_optimizer, config.leader_penalty, config.epochs) == ("adam", False, 30)
    assert (config.fairness_budget, config.budget_metric, config.budget_confidence) == (0.1, "dp", 0.95)
    assert vision.label_of("bilevel", paper) == "FairBiNN (paper game, adam follower)"
    assert vision.label_of("erm", paper) == "ERM"
    certified = vision.config_of(_vision_args(budget=0.05, confidence=0.9), "Smiling", "lagrangian")
    assert (certified.strategy, certified.budget_confidence) == ("lagrangian", 0.9)
