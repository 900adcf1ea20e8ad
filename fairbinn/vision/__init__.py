"""Vision benchmarks: CelebA attributes vs Male, with ResNet-18 (torchvision) or any timm backbone."""

from .backbones import BLOCK_FAIRNESS, ConvResidualStack, create_vision_model, list_vision_fairness
from .cache import ImageStore, default_cache_dir, read_image
from .celeba import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CelebA,
    CelebAIndex,
    CelebALoader,
    CelebASplits,
    default_transform,
    load_celeba,
    read_celeba_index,
)
from .experiment import PAPER_CELEBA_COMMON, PAPER_CELEBA_SETTINGS, paper_config, run_vision

__all__ = [
    "CelebA",
    "CelebAIndex",
    "CelebALoader",
    "CelebASplits",
    "read_celeba_index",
    "load_celeba",
    "default_transform",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageStore",
    "default_cache_dir",
    "read_image",
    "create_vision_model",
    "list_vision_fairness",
    "ConvResidualStack",
    "BLOCK_FAIRNESS",
    "PAPER_CELEBA_SETTINGS",
    "PAPER_CELEBA_COMMON",
    "paper_config",
    "run_vision",
]
