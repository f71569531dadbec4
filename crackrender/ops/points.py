"""Point coordinates and reading maps at points: what every sampler and inference rule shares.

Coordinates, everywhere in crackrender, are (x, y) normalised to [0, 1] at pixel centres: pixel
(row i, col j) of an H x W map is ``((j + 0.5) / W, (i + 0.5) / H)``. With
``F.grid_sample(..., align_corners=False)`` and ``grid = 2 * coords - 1`` such a point reads the
pixel's value exactly, at any resolution the map is sampled from.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from crackrender.checks import positive_int

__all__ = ["PointFn", "call_point_fn", "check_size", "pixel_centers", "point_sample", "upsample_logits"]

# what an inference rule asks of the model: (B, P, 2) coordinates -> (B, P) point-head logits
PointFn = Callable[[Tensor], Tensor]


def pixel_centers(index: Tensor, height: int, width: int) -> Tensor:
    """Normalised (x, y) centres, (P, 2) float32, of flat pixel indices ``i * width + j``.

    Examples:
        >>> pixel_centers(torch.tensor([0, 5]), 2, 4)
        tensor([[0.1250, 0.2500],
                [0.3750, 0.7500]])
    """
    positive_int(height, "height")
    positive_int(width, "width")
    if not isinstance(index, Tensor) or index.ndim != 1 or index.is_floating_point() or index.dtype == torch.bool:
        raise ValueError(f"index must be a 1-D integer tensor of flat pixel indices, got "
                         f"{getattr(index, 'dtype', type(index).__name__)} {tuple(getattr(index, 'shape', ()))}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= height * width):
        raise ValueError(f"index out of range for a {height}x{width} map: "
                         f"[{int(index.min())}, {int(index.max())}]")
    index = index.long()
    rows, cols = index // width, index % width
    # divided in float64, then rounded: CUDA divides by a scalar as a multiplication by its
    # reciprocal (pytorch/pytorch#84194), one float32 step away from the CPU's quotient at times
    # (the H200 run of 2026-11-29 failed test_sampler_on_cuda_with_cpu_generator so); in float64
    # both round to the same float32, so the same pixels give the same points on every device
    centres = torch.stack(((cols.double() + 0.5) / width, (rows.double() + 0.5) / height), dim=1)
    return centres.float()


def point_sample(features: Tensor, coords: Tensor, mode: str = "bilinear") -> Tensor:
    """Sample (B, C, H, W) ``features`` at (B, P, 2) normalised (x, y) ``coords`` -> (B, P, C).

    Points-major output, so an ``nn.Linear`` MLP consumes it directly. Points outside [0, 1] read
    the nearest border value. Differentiable with respect to ``features`` (and ``coords``).

    Examples:
        >>> f = torch.arange(6.0).view(1, 1, 2, 3)
        >>> point_sample(f, pixel_centers(torch.tensor([4]), 2, 3)[None])
        tensor([[[4.]]])
    """
    if not isinstance(features, Tensor) or features.ndim != 4:
        raise ValueError(f"features must be (B, C, H, W), got {tuple(getattr(features, 'shape', ()))}")
    if not isinstance(coords, Tensor) or coords.ndim != 3 or coords.shape[-1] != 2:
        raise ValueError(f"coords must be (B, P, 2), got {tuple(getattr(coords, 'shape', ()))}")
    if coords.shape[0] != features.shape[0]:
        raise ValueError(f"batch sizes differ: features {features.shape[0]}, coords {coords.shape[0]}")
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    # grid_sample reads a channels-last map several times faster on CPU (DESIGN.md section 6)
    features = features.contiguous(memory_format=torch.channels_last)
    dtype = features.dtype
    # at least float32: in fp16/bf16 a point on an 8K image would land up to 16-30 px off
    work = torch.promote_types(dtype, torch.float32)
    grid = (2 * coords.to(work) - 1).unsqueeze(2)
    with torch.autocast(features.device.type, enabled=False):
        out = F.grid_sample(features.to(work), grid, mode=mode, padding_mode="border", align_corners=False)
    return out.squeeze(3).transpose(1, 2).to(dtype)


def call_point_fn(point_fn: PointFn, coords: Tensor) -> Tensor:
    """``point_fn(coords)`` as float32, or a ValueError unless it gave one logit per point.

    Examples:
        >>> call_point_fn(lambda c: c.sum(-1), torch.ones(1, 3, 2))
        tensor([[2., 2., 2.]])
    """
    values = point_fn(coords)
    if not isinstance(values, Tensor) or tuple(values.shape) != tuple(coords.shape[:2]):
        raise ValueError(f"point_fn must return {tuple(coords.shape[:2])} logits, "
                         f"got {tuple(getattr(values, 'shape', ()))}")
    return values.float()


def check_size(size) -> tuple[int, int]:
    """An output size (H, W) as two positive ints.

    Examples:
        >>> check_size(torch.Size([45, 61]))
        (45, 61)
    """
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"out_size must be (H, W), got {size!r}")
    return positive_int(size[0], "out_size[0]"), positive_int(size[1], "out_size[1]")


def upsample_logits(coarse_logits: Tensor, out_size: tuple[int, int]) -> Tensor:
    """(B, 1, h, w) logits resized to ``out_size`` (bilinear, pixel centres), float32: a coarse
    prediction read at every output pixel.

    Examples:
        >>> upsample_logits(torch.zeros(2, 1, 3, 4), (7, 9)).shape
        torch.Size([2, 1, 7, 9])
    """
    return F.interpolate(coarse_logits.float(), size=check_size(out_size), mode="bilinear", align_corners=False)
