"""Point sampling for the point-rendering head: coordinates, feature sampling, and the samplers.

Coordinates, everywhere in crackrender, are (x, y) normalised to [0, 1] at pixel centres: pixel
(row i, col j) of an H x W map is ``((j + 0.5) / W, (i + 0.5) / H)``. With
``F.grid_sample(..., align_corners=False)`` and ``grid = 2 * coords - 1`` such a point reads the
pixel's value exactly, at any resolution the map is sampled from.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "pixel_centers",
    "point_sample",
    "boundary_band",
    "stratum_quotas",
    "sample_training_points",
    "uncertain_pixels",
    "INTERIOR",
    "BAND",
    "BACKGROUND",
]

# stratum ids returned by sample_training_points
INTERIOR, BAND, BACKGROUND = 0, 1, 2


def positive_int(value, name: str) -> int:
    """``value`` as an int, or a ValueError naming ``name`` unless it is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


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
    return torch.stack(((cols.float() + 0.5) / width, (rows.float() + 0.5) / height), dim=1)


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
    # grid_sample reads a channels-last map several times faster on CPU (docs/design.md, "Measured costs")
    features = features.contiguous(memory_format=torch.channels_last)
    dtype = features.dtype
    # at least float32: in fp16/bf16 a point on an 8K image would land up to 16-30 px off
    work = torch.promote_types(dtype, torch.float32)
    grid = (2 * coords.to(work) - 1).unsqueeze(2)
    with torch.autocast(features.device.type, enabled=False):
        out = F.grid_sample(features.to(work), grid, mode=mode, padding_mode="border", align_corners=False)
    return out.squeeze(3).transpose(1, 2).to(dtype)


def _as_bool_mask(mask: Tensor, name: str = "mask") -> Tensor:
    if not isinstance(mask, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    # masks that went through interpolation are not exactly 0/1: binarise at 0.5
    return mask if mask.dtype == torch.bool else mask > 0.5


def boundary_band(mask: Tensor, k: int = 2) -> Tensor:
    """The label's boundary band of width 2k+1 (CBPRN's coefficient k), as bool of ``mask``'s shape.

    ``mask`` is (H, W) or (B, 1, H, W), bool or 0/1 (binarised at 0.5). The edge is the crack
    pixels with a background pixel among their 8 neighbours; the image border is not an edge
    (outside the image counts as crack for this test). The edge is dilated by a (2k+1) x (2k+1)
    square, so the band reaches k pixels into the background and k pixels beyond the edge into
    the crack. ``k=0`` returns the edge itself.

    Examples:
        >>> m = torch.zeros(1, 1, 5, 9, dtype=torch.bool)
        >>> m[..., 4] = True  # a one-pixel vertical line
        >>> boundary_band(m, k=1)[0, 0, 0].int().tolist()
        [0, 0, 0, 1, 1, 1, 0, 0, 0]
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k!r}")
    m = _as_bool_mask(mask)
    if m.ndim == 2:
        x = m[None, None]
    elif m.ndim == 4 and m.shape[1] == 1:
        x = m
    else:
        raise ValueError(f"mask must be (H, W) or (B, 1, H, W), got {tuple(m.shape)}")
    if x.numel() == 0:
        return torch.zeros_like(m)
    x = x.float()
    # erosion = complement of the dilated background; max_pool pads with -inf, i.e. no background
    # outside the image, so the border never makes an edge
    near_background = F.max_pool2d(1 - x, kernel_size=3, stride=1, padding=1)
    edge = x * near_background
    band = edge if k == 0 else F.max_pool2d(edge, kernel_size=2 * int(k) + 1, stride=1, padding=int(k))
    return (band > 0.5).view(m.shape)


def stratum_quotas(sizes: Sequence[int], n: int, ratios: Sequence[float] = (0.3, 0.4, 0.3)) -> list[int]:
    """Split ``n`` points over strata of the given pixel ``sizes`` in proportion to ``ratios``.

    Largest-remainder rounding: each stratum gets ``floor(n * share)`` and the leftover points go
    to the largest fractional parts (ties to the lower index), so the quotas sum to exactly ``n``.
    An empty stratum's share is reallocated to the non-empty ones in proportion to their ratios
    (a crack-free image gives everything to the background). If every non-empty stratum has ratio
    0, the points follow the strata's sizes instead (uniform over the image).

    Examples:
        >>> stratum_quotas([100, 50, 900], 10)
        [3, 4, 3]
        >>> stratum_quotas([0, 0, 900], 10)
        [0, 0, 10]
        >>> stratum_quotas([100, 0, 900], 10)
        [5, 0, 5]
    """
    sizes, ratios = list(sizes), list(ratios)
    if len(sizes) != len(ratios) or not sizes:
        raise ValueError(f"sizes and ratios must have the same non-zero length, got {len(sizes)} and {len(ratios)}")
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in sizes):
        raise ValueError(f"sizes must be non-negative ints, got {sizes}")
    if any(not isinstance(r, numbers.Real) or not math.isfinite(r) or r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be finite, non-negative and not all zero, got {ratios}")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if n == 0:
        return [0] * len(sizes)
    if sum(sizes) == 0:
        raise ValueError(f"cannot place {n} points: every stratum is empty")
    weights = [float(r) if s > 0 else 0.0 for r, s in zip(ratios, sizes)]
    if sum(weights) == 0:
        weights = [float(s) for s in sizes]
    total = sum(weights)
    exact = [n * w / total for w in weights]
    quotas = [math.floor(e) for e in exact]
    leftover = n - sum(quotas)
    by_remainder = sorted((i for i in range(len(sizes)) if weights[i] > 0), key=lambda i: (quotas[i] - exact[i], i))
    for i in by_remainder[:leftover]:
        quotas[i] += 1
    return quotas


def sample_training_points(
    mask: Tensor,
    num_points: int | None = None,
    ratios: Sequence[float] = (0.3, 0.4, 0.3),
    k: int = 2,
    point_ratio: float = 1 / 20,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """CBPRN's training points, drawn from the label in three strata.

    ``mask`` (B, 1, H, W), bool or 0/1 (binarised at 0.5). Per image, ``num_points`` (default
    ``round(H * W * point_ratio)``, the paper's H*W/20) points are split by :func:`stratum_quotas`
    over crack interior (``mask & ~band``), boundary band (:func:`boundary_band` with ``k``) and
    background (``~mask & ~band``) in ``ratios`` (the paper's 0.3 : 0.4 : 0.3). An empty stratum
    (no crack, or all crack) passes its quota to the others.

    Within a stratum, pixels are drawn uniformly *with replacement*: a thin crack's interior is
    often smaller than its quota, so a pixel may appear more than once. Points are pixel centres,
    so each label is the mask's value at that pixel, not an interpolation. All randomness comes
    from ``generator`` (same seed, same points); its device may differ from the mask's.

    Returns, on the mask's device: ``coords`` (B, P, 2) float32 normalised (x, y), ``labels``
    (B, P) float32 0/1, ``strata`` (B, P) int64 (0 interior, 1 band, 2 background), with the
    points of each image grouped by stratum in that order.

    Examples:
        >>> m = torch.zeros(2, 1, 40, 60, dtype=torch.bool)
        >>> m[0, 0, 14:26, 5:55] = True
        >>> coords, labels, strata = sample_training_points(m, generator=torch.Generator().manual_seed(0))
        >>> coords.shape, labels.shape, strata.shape
        (torch.Size([2, 120, 2]), torch.Size([2, 120]), torch.Size([2, 120]))
        >>> [int((strata[0] == s).sum()) for s in (0, 1, 2)], bool(labels[1].any())
        ([36, 48, 36], False)
    """
    m = _as_bool_mask(mask)
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"mask must be (B, 1, H, W), got {tuple(m.shape)}")
    b, _, h, w = m.shape
    if h * w == 0:
        raise ValueError(f"mask has no pixels: {tuple(m.shape)}")
    if num_points is None:
        if not isinstance(point_ratio, numbers.Real) or not point_ratio > 0:
            raise ValueError(f"point_ratio must be positive, got {point_ratio!r}")
        num_points = int(round(h * w * point_ratio))
    elif isinstance(num_points, bool) or not isinstance(num_points, numbers.Integral) or num_points < 0:
        raise ValueError(f"num_points must be a non-negative int, got {num_points!r}")
    num_points = int(num_points)
    if len(ratios) != 3:
        raise ValueError(f"ratios must hold 3 values (interior, band, background), got {ratios}")

    device = m.device
    rand_device = generator.device if generator is not None else device
    band = boundary_band(m, k).view(b, -1)
    flat = m.view(b, -1)
    indices, strata = [], []
    for img in range(b):
        members = [flat[img] & ~band[img], band[img], ~flat[img] & ~band[img]]
        pools = [torch.nonzero(s).squeeze(1) for s in members]
        quotas = stratum_quotas([p.numel() for p in pools], num_points, ratios)
        for sid, (pool, q) in enumerate(zip(pools, quotas)):
            if q == 0:
                continue
            pick = torch.randint(pool.numel(), (q,), generator=generator, device=rand_device).to(device)
            indices.append(pool[pick])
            strata.append(torch.full((q,), sid, dtype=torch.long, device=device))
    if num_points == 0:
        index = torch.zeros(b, 0, dtype=torch.long, device=device)
        strata_t = torch.zeros(b, 0, dtype=torch.long, device=device)
    else:
        index = torch.cat(indices).view(b, num_points)
        strata_t = torch.cat(strata).view(b, num_points)
    coords = pixel_centers(index.reshape(-1), h, w).view(b, num_points, 2)
    labels = torch.gather(flat, 1, index).float()
    return coords, labels, strata_t


def uncertain_pixels(prob: Tensor, alpha: float = 0.3, beta: float = 0.7) -> Tensor:
    """Flat indices (int64, ascending) of the pixels of an (H, W) probability map with
    ``alpha <= p <= beta``: CBPRN's inference rule, the only pixels the point head re-predicts.

    Examples:
        >>> uncertain_pixels(torch.tensor([[0.1, 0.3], [0.5, 0.9]]))
        tensor([1, 2])
    """
    if not isinstance(prob, Tensor) or prob.ndim != 2:
        raise ValueError(f"prob must be an (H, W) tensor, got {tuple(getattr(prob, 'shape', ()))}")
    if not (isinstance(alpha, numbers.Real) and isinstance(beta, numbers.Real) and 0 <= alpha < beta <= 1):
        raise ValueError(f"need 0 <= alpha < beta <= 1, got alpha={alpha!r}, beta={beta!r}")
    keep = (prob >= alpha) & (prob <= beta)
    return torch.nonzero(keep.reshape(-1)).squeeze(1)
