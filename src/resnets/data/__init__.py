"""Data: loaders (digits, CIFAR archives, image folders, tar shards), decoded cache, splits, batches."""

from .augment import center_crop, cifar_train, resized_crop_train, ten_crop
from .images import decode_image
from .imageset import ImageSet
from .load import data_fingerprints, load_dataset, parse_spec
from .pipeline import AugmentSpec, BatchStream, channel_stats, seed_for, stratified_split

__all__ = [
    "AugmentSpec",
    "BatchStream",
    "ImageSet",
    "center_crop",
    "channel_stats",
    "cifar_train",
    "data_fingerprints",
    "decode_image",
    "load_dataset",
    "parse_spec",
    "resized_crop_train",
    "seed_for",
    "stratified_split",
    "ten_crop",
]
