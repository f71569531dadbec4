"""Crack datasets over the ``images/ masks/ split.txt`` layout, transforms and synthetic cracks."""

from crackrender.data.datasets import CompositeDataset, CrackDataset, ImageFolderDataset
from crackrender.data.transforms import eval_transforms, train_transforms

__all__ = ["CompositeDataset", "CrackDataset", "ImageFolderDataset", "eval_transforms", "train_transforms"]
