"""Paired image/mask transforms built on torchvision.transforms.v2.

v2 applies geometric transforms identically to an ``Image`` and a ``Mask`` in one call and
photometric ones to the image alone, so labels stay exact. Two of v2's defaults would move labels
against their images, so resizing and crop padding are our own here (see :func:`resize_pair` and
:class:`ReflectPadToSize`).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode


def resize_pair(t: torch.Tensor, hw: list[int]) -> torch.Tensor:
    """Resize an ``Image`` (antialiased bilinear) or a ``Mask`` (nearest at pixel centres).

    v2 resizes masks with the legacy NEAREST, which samples at pixel corners while the image's
    resize samples at pixel centres: a step edge lands about half a pixel off on average, a large
    share of a 3 px crack. NEAREST_EXACT samples at centres, like the image.

    Examples:
        >>> edge = torch.zeros(1, 4, 10, dtype=torch.uint8); edge[..., :3] = 1
        >>> resize_pair(tv_tensors.Mask(edge), [4, 7])[0, 0].tolist()
        [1, 1, 0, 0, 0, 0, 0]
    """
    if isinstance(t, tv_tensors.Mask):
        out = v2.functional.resize_image(t.as_subclass(torch.Tensor), hw, interpolation=InterpolationMode.NEAREST_EXACT)
        return tv_tensors.wrap(out, like=t)
    return v2.functional.resize(t, hw, antialias=True)


class Resize(torch.nn.Module):
    """A fixed resize of image and mask alike (:func:`resize_pair`)."""

    def __init__(self, hw: tuple[int, int]):
        super().__init__()
        self.hw = list(hw)

    def forward(self, *inputs):
        out = tuple(resize_pair(t, self.hw) for t in inputs)
        return out if len(out) > 1 else out[0]


class ReflectPadToSize(torch.nn.Module):
    """Pad image and mask alike by reflection to at least ``size`` x ``size`` (centred).

    v2's ``RandomCrop(pad_if_needed=True)`` pads with black: a false dark edge, i.e. a crack-like
    line labelled background. Reflection repeats as often as needed, so a crop larger than twice
    the image still works (numpy's reflect mode)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, *inputs):
        h, w = inputs[0].shape[-2:]
        ph, pw = max(0, self.size - h), max(0, self.size - w)
        if ph == 0 and pw == 0:
            return inputs if len(inputs) > 1 else inputs[0]
        rows = torch.from_numpy(np.pad(np.arange(h), (ph // 2, ph - ph // 2), mode="reflect" if h > 1 else "edge"))
        cols = torch.from_numpy(np.pad(np.arange(w), (pw // 2, pw - pw // 2), mode="reflect" if w > 1 else "edge"))
        out = tuple(tv_tensors.wrap(t[..., rows, :][..., cols], like=t) for t in inputs)
        return out if len(out) > 1 else out[0]


def to_tv_tensors(image: np.ndarray, mask: np.ndarray | None = None):
    """(H, W, 3) uint8 and (H, W) bool arrays -> v2 ``Image`` (uint8) and ``Mask`` (uint8 0/1)."""
    img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
    if mask is None:
        return img, None
    return img, tv_tensors.Mask(torch.from_numpy(mask.astype(np.uint8))[None])


class RandomZoom(torch.nn.Module):
    """Resize by a random factor in ``scale`` (:func:`resize_pair`)."""

    def __init__(self, scale: tuple[float, float]):
        super().__init__()
        self.scale = scale

    def forward(self, *inputs):
        f = float(torch.empty(()).uniform_(*self.scale))
        h, w = inputs[0].shape[-2:]
        hw = [max(1, round(h * f)), max(1, round(w * f))]
        out = tuple(resize_pair(t, hw) for t in inputs)
        return out if len(out) > 1 else out[0]


class RandomRot90(torch.nn.Module):
    """Rotate by a random multiple of 90 degrees: exact on pixels, unlike arbitrary-angle rotation."""

    def forward(self, *inputs):
        k = int(torch.randint(0, 4, ()).item())
        out = tuple(tv_tensors.wrap(torch.rot90(t, k, dims=(-2, -1)), like=t) for t in inputs)
        return out if len(out) > 1 else out[0]


def train_transforms(
    size: int = 256,
    mode: str = "crop",
    scale: tuple[float, float] = (0.5, 1.5),
    jitter: float = 0.3,
    paste: float = 0.0,
    paste_families: str = "all",
    paste_most: int = 2,
) -> v2.Compose:
    """Training augmentation producing ``size`` x ``size`` samples.

    ``mode="crop"`` keeps the native pixel scale up to a random zoom in ``scale`` and crops (thin
    cracks survive); ``mode="resize"`` resizes the whole image, as the paper does (256x256).
    ``paste``: the probability of drawing synthetic distractors (paint, joints, shadows...) into a
    sample's background (:class:`crackrender.data.paste.PasteDistractors`), before colour jitter;
    ``paste_families`` the families it draws from, one to ``paste_most`` of them a sample.

    Examples:
        >>> t = train_transforms(128)
        >>> img, mask = t(*to_tv_tensors(np.zeros((200, 300, 3), np.uint8), np.zeros((200, 300), bool)))
        >>> tuple(img.shape), tuple(mask.shape)
        ((3, 128, 128), (1, 128, 128))
    """
    if mode == "crop":
        geometry = [
            RandomZoom(scale) if scale != (1.0, 1.0) else v2.Identity(),
            ReflectPadToSize(size),
            v2.RandomCrop(size),
        ]
    elif mode == "resize":
        geometry = [Resize((size, size))]
    else:
        raise ValueError(f"mode must be 'crop' or 'resize', got {mode!r}")
    if paste > 0:
        from crackrender.data.paste import PasteDistractors

        geometry.append(PasteDistractors(p=paste, families=paste_families, most=paste_most))
    return v2.Compose(
        geometry
        + [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            RandomRot90(),
            v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter / 2, hue=0.02),
            v2.RandomGrayscale(p=0.1),
        ]
    )


def eval_transforms(size: int | tuple[int, int] | None = None) -> v2.Compose | None:
    """Evaluation: native size (``None``) or a fixed resize such as the paper's 256x256."""
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return v2.Compose([Resize(hw)])
