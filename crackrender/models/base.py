"""What every segmentation model in the registry provides, so training and inference need not
know which architecture they drive."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from crackrender.checks import positive_int
from crackrender.errors import InputError
from crackrender.models.settings import option_parameters, record_settings
from crackrender.ops.points import PointFn, pixel_centers, point_sample, upsample_logits

# ImageNet statistics: torchvision's backbones expect them, pretrained or not.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Prediction:
    """Full-resolution output of ``predict``: mask (B,H,W) bool, prob (B,H,W) float32 and the
    number of pixels the point head re-predicted, per image."""

    mask: torch.Tensor
    prob: torch.Tensor
    refined_points: list[int]

    @classmethod
    def from_logits(cls, logits: torch.Tensor, refined_points: list[int]) -> "Prediction":
        """From (B, 1, H, W) logits: probability by sigmoid (float32), mask at 0.5.

        Examples:
            >>> Prediction.from_logits(torch.tensor([[[[-1.0, 2.0]]]]), [0]).mask.tolist()
            [[[False, True]]]
        """
        prob = torch.sigmoid(logits[:, 0].float())
        return cls(prob > 0.5, prob, refined_points)


def coarse_only(coarse_logits: torch.Tensor, point_fn: PointFn,
                out_size: tuple[int, int]) -> tuple[torch.Tensor, list[int]]:
    """The inference rule of ``refine=False``: the coarse logits upsampled (bilinear), no point
    re-predicted; shaped like the rules in crackrender.ops, so ``predict`` calls any of them alike.

    Examples:
        >>> logits, counts = coarse_only(torch.zeros(2, 1, 3, 4), None, (9, 10))
        >>> tuple(logits.shape), counts
        ((2, 1, 9, 10), [0, 0])
    """
    return upsample_logits(coarse_logits, out_size), [0] * coarse_logits.shape[0]


def check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise InputError(f"expected images of shape (B, 3, H, W) with values in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise InputError(f"expected float images in [0, 1], got dtype {images.dtype}")


def pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) on the bottom/right to a multiple of ``multiple``; return it and (H, W).

    Reflect padding, so no artificial edge appears at the border (a crack detector reads a
    zero-padded border as a dark line); replicate when the pad is not smaller than the image, which
    reflect cannot do. Crop back with ``x[..., :H, :W]``.

    Examples:
        >>> padded, size = pad_to_multiple(torch.rand(1, 3, 67, 93), 32)
        >>> tuple(padded.shape), size
        ((1, 3, 96, 96), (67, 93))
    """
    positive_int(multiple, "multiple")
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got {tuple(getattr(images, 'shape', ()))}")
    h, w = images.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return images, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(images, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to_image(x: torch.Tensor, size: tuple[int, int], padded: tuple[int, int]) -> torch.Tensor:
    """The part of a map computed on a bottom/right-padded input that covers the image.

    ``x`` covers ``padded`` (Hp, Wp) input pixels, the image its top-left ``size`` (h, w). The
    result has ``ceil`` of the image's share of ``x``'s cells, resampled (bilinear, at cell centres)
    so that it spans exactly the image: a stride-4 map of a 67-row image has 17 rows covering 67.
    """
    (h, w), (hp, wp) = size, padded
    if (h, w) == (hp, wp):
        return x
    b, c, mh, mw = x.shape
    oh, ow = -(-mh * h // hp), -(-mw * w // wp)
    if mh * h % hp == 0 and mw * w % wp == 0:
        return x[..., :oh, :ow]  # the image ends on a cell border: an exact crop
    coords = pixel_centers(torch.arange(oh * ow, device=x.device), oh, ow)
    coords = coords * torch.tensor([w / wp, h / hp], device=x.device)
    return point_sample(x, coords[None].expand(b, -1, -1)).transpose(1, 2).reshape(b, c, oh, ow)


class Stopwatch:
    """Wall time per named stage; synchronises CUDA so GPU stages are not under-counted."""

    def __init__(self, record: dict | None):
        self.record = record

    @contextmanager
    def __call__(self, name: str, device: torch.device):
        if self.record is None:
            yield
            return
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.record[name] = self.record.get(name, 0.0) + time.perf_counter() - start


class SegmentationModel(nn.Module):
    """Base class: records the keyword arguments a subclass was built with (``config``, see
    crackrender.models.settings) so a checkpoint can rebuild the same architecture, and normalises
    [0, 1] images the way torchvision expects."""

    name: str = ""
    # a frozen dataclass whose fields a subclass's __init__ takes as **options (EncoderOptions)
    option_group: type | None = None
    config: dict

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            # **options stand for the settings of the model this one extends, else the option group's
            parent = getattr(super(cls, cls).__init__, "__signature__", None)
            inherited = list(parent.parameters.values())[1:] if parent else option_parameters(cls.option_group)
            cls.__init__ = record_settings(cls.__init__, inherited)

    def __init__(self):
        super().__init__()
        # not persistent: constants, not learned state, so they stay out of checkpoints
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)

    def training_outputs(self, images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """Everything the losses need for one batch (see crackrender.train.losses)."""
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, images: torch.Tensor, **kwargs) -> Prediction:
        raise NotImplementedError
