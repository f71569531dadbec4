"""Datasets over the layout ``ROOT/images/<stem>.<ext>``, ``ROOT/masks/<stem>.png``, ``ROOT/<split>.txt``.

Samples are dicts: ``image`` float32 (3, H, W) in [0, 1], ``mask`` float32 (1, H, W) in {0, 1}
(absent for unlabelled folders), ``stem`` and ``path``. Normalisation belongs to the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, WeightedRandomSampler

from crackrender.data.transforms import to_tv_tensors
from crackrender.errors import InputError
from crackrender.io import IMAGE_EXTENSIONS, expand_inputs, list_images, read_image, read_mask

MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")


def read_split(root: Path, split: str) -> list[str]:
    """Stems listed in ``root/<split>.txt`` (blank lines and ``#`` comments ignored)."""
    path = root / f"{split}.txt"
    if not path.is_file():
        available = sorted(p.stem for p in root.glob("*.txt"))
        raise InputError(f"{root}: no split file {split}.txt (found: {', '.join(available) or 'none'})")
    stems = [ln.strip() for ln in path.read_text().splitlines()]
    return [s for s in stems if s and not s.startswith("#")]


def find_file(folder: Path, stem: str, extensions: Sequence[str]) -> Path | None:
    for ext in extensions:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def split_images(roots: Sequence[str | os.PathLike], split: str) -> list[Path]:
    """The image files that ``<root>/<split>.txt`` lists, for each dataset root in turn."""
    paths = []
    for root in map(Path, roots):
        if not (root / "images").is_dir():
            raise InputError(f"{root}: not a dataset folder (no images/ inside)")
        for stem in read_split(root, split):
            path = find_file(root / "images", stem, IMAGE_EXTENSIONS)
            if path is None:
                raise InputError(f"{root}: {split}.txt lists {stem!r} but images/ has no such image")
            paths.append(path)
    if not paths:
        raise InputError(f"{split}.txt lists no images in {', '.join(map(str, roots))}")
    return paths


def to_sample(image: np.ndarray, mask: np.ndarray | None, transform: Callable | None) -> dict:
    img, msk = to_tv_tensors(image, mask)
    if transform is not None:
        img, msk = transform(img, msk) if msk is not None else (transform(img), None)
    sample = {"image": img.as_subclass(torch.Tensor).float().div_(255.0)}
    if msk is not None:
        sample["mask"] = msk.as_subclass(torch.Tensor).float()
    return sample


class CrackDataset(Dataset):
    """Image/mask pairs of one dataset root and split.

    Args:
        root: folder with ``images/``, ``masks/`` and split lists.
        split: a split name (reads ``<split>.txt``), a list of stems, or ``None`` for every
            image that has a mask.
        transform: a paired v2 transform (see :mod:`crackrender.data.transforms`).

    Examples:
        >>> ds = CrackDataset("../shared/data/cfd", "val")  # doctest: +SKIP
        >>> s = ds[0]; s["image"].shape, s["mask"].shape  # doctest: +SKIP
        (torch.Size([3, 320, 480]), torch.Size([1, 320, 480]))
    """

    def __init__(self, root: str | os.PathLike, split: str | Sequence[str] | None = "train",
                 transform: Callable | None = None):
        self.root = Path(root)
        self.images_dir, self.masks_dir = self.root / "images", self.root / "masks"
        for folder in (self.images_dir, self.masks_dir):
            if not folder.is_dir():
                raise InputError(f"{self.root}: missing folder {folder.name}/ (expected images/ and masks/)")
        if split is None:
            stems = [p.stem for p in list_images(self.images_dir)]
            stems = [s for s in stems if find_file(self.masks_dir, s, MASK_EXTENSIONS)]
        elif isinstance(split, str):
            stems = read_split(self.root, split)
        else:
            stems = list(split)
        self.split = split if isinstance(split, str) else None
        self.pairs: list[tuple[str, Path, Path]] = []
        for stem in stems:
            image = find_file(self.images_dir, stem, IMAGE_EXTENSIONS)
            mask = find_file(self.masks_dir, stem, MASK_EXTENSIONS)
            if image is None or mask is None:
                missing = "image" if image is None else "mask"
                raise InputError(f"{self.root}: no {missing} file for stem {stem!r}")
            self.pairs.append((stem, image, mask))
        if not self.pairs:
            raise InputError(f"{self.root}: no image/mask pairs for split {split!r}")
        self.transform = transform

    @property
    def name(self) -> str:
        return self.root.name

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw (H, W, 3) uint8 image and (H, W) bool mask, validated, without transforms."""
        stem, image_path, mask_path = self.pairs[index]
        image, mask = read_image(image_path), read_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise InputError(
                f"{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} does not match image "
                f"{image_path.name} size {image.shape[1]}x{image.shape[0]}"
            )
        return image, mask

    def __getitem__(self, index: int) -> dict:
        stem, image_path, _ = self.pairs[index]
        sample = to_sample(*self.load(index), self.transform)
        sample.update(stem=stem, path=str(image_path))
        return sample


class ImageFolderDataset(Dataset):
    """Images without masks, for inference: a folder, a file, or a list of either."""

    def __init__(self, inputs: str | os.PathLike | Sequence[str | os.PathLike], transform: Callable | None = None):
        self.paths = expand_inputs(inputs, what="images")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        sample = to_sample(read_image(path), None, self.transform)
        sample.update(stem=path.stem, path=str(path))
        return sample


class CompositeDataset(ConcatDataset):
    """Several datasets trained together (the paper mixes CFD, CRACK500 and DeepCrack537).

    Drawn uniformly, the public mix is 84% CRACK500 and 4% CFD; :meth:`balanced_sampler` draws
    each member dataset equally often instead.
    """

    def __init__(self, datasets: Sequence[Dataset]):
        if not datasets:
            raise InputError("a composite dataset needs at least one dataset")
        super().__init__(list(datasets))

    def sample_weights(self, shares: Sequence[float] | None = None) -> torch.Tensor:
        """Per-sample weights giving member dataset i the total weight ``shares[i]`` (default:
        every dataset the same), however many images it has."""
        shares = [1.0] * len(self.datasets) if shares is None else list(shares)
        if len(shares) != len(self.datasets) or any(not s >= 0 for s in shares) or sum(shares) <= 0:
            raise InputError(f"need one non-negative share per dataset ({len(self.datasets)}), not all 0, got {shares}")
        return torch.cat([torch.full((len(d),), s / len(d), dtype=torch.double) for d, s in zip(self.datasets, shares)])

    def balanced_sampler(self, num_samples: int | None = None, generator: torch.Generator | None = None,
                         shares: Sequence[float] | None = None):
        return WeightedRandomSampler(self.sample_weights(shares), num_samples or len(self), replacement=True,
                                     generator=generator)
