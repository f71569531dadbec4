"""What every segmentation model in the registry provides, so training and inference need not
know which architecture they drive."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

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


def check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected images of shape (B, 3, H, W) with values in [0, 1], got {shape}")
    if not images.is_floating_point():
        raise ValueError(f"expected float images in [0, 1], got dtype {images.dtype}")


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
    """Base class: keeps the keyword arguments it was built with (``config``) so a checkpoint can
    rebuild the same architecture, and normalises [0, 1] images the way torchvision expects."""

    name: str = ""

    def __init__(self, config: dict):
        super().__init__()
        self.config = {"name": self.name, **config}
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
