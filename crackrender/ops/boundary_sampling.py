"""The paper's boundary-guided training sampling: CBPRN's training points, drawn from the label in
three strata (crack interior, the label's boundary band, background), and the uniform sampling
of Table 1's ablation. Coordinates follow :mod:`crackrender.ops.points`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from crackrender.checks import in_range, non_negative_int
from crackrender.errors import InputError
from crackrender.ops.points import pixel_centers

__all__ = [
    "BACKGROUND",
    "BAND",
    "BAND_K",
    "INTERIOR",
    "POINT_RATIO",
    "STRATA_RATIOS",
    "label_boundary_band",
    "sample_training_points",
    "stratum_quotas",
    "uniform_training_points",
]

# stratum ids returned by sample_training_points
INTERIOR, BAND, BACKGROUND = 0, 1, 2
# the paper's settings: H*W/20 points per image, 0.3 : 0.4 : 0.3 over the strata, a band of 2k+1 = 5 px
POINT_RATIO = 1 / 20
STRATA_RATIOS = (0.3, 0.4, 0.3)
BAND_K = 2


def _as_bool_mask(mask: Tensor, name: str = "mask") -> Tensor:
    if not isinstance(mask, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    # masks that went through interpolation are not exactly 0/1: binarise at 0.5
    return mask if mask.dtype == torch.bool else mask > 0.5


def _check_masks(masks: Tensor) -> Tensor:
    m = _as_bool_mask(masks)
    if m.ndim != 4 or m.shape[1] != 1:
        raise ValueError(f"mask must be (B, 1, H, W), got {tuple(m.shape)}")
    if m.shape[2] * m.shape[3] == 0:
        raise ValueError(f"mask has no pixels: {tuple(m.shape)}")
    return m


def label_boundary_band(mask: Tensor, k: int = BAND_K) -> Tensor:
    """The label's boundary band of width 2k+1 (CBPRN's coefficient k), as bool of ``mask``'s shape.

    ``mask`` is (H, W) or (B, 1, H, W), bool or 0/1 (binarised at 0.5). The edge is the crack
    pixels with a background pixel among their 8 neighbours; the image border is not an edge
    (outside the image counts as crack for this test). The edge is dilated by a (2k+1) x (2k+1)
    square, so the band reaches k pixels into the background and k pixels beyond the edge into
    the crack. ``k=0`` returns the edge itself. (Not the Boundary IoU band of the metrics, which
    is measured on a prediction with a distance transform.)

    Examples:
        >>> m = torch.zeros(1, 1, 5, 9, dtype=torch.bool)
        >>> m[..., 4] = True  # a one-pixel vertical line
        >>> label_boundary_band(m, k=1)[0, 0, 0].int().tolist()
        [0, 0, 0, 1, 1, 1, 0, 0, 0]
    """
    k = non_negative_int(k, "k")
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
    band = edge if k == 0 else F.max_pool2d(edge, kernel_size=2 * k + 1, stride=1, padding=k)
    return (band > 0.5).view(m.shape)


def stratum_quotas(sizes: Sequence[int], n: int, ratios: Sequence[float] = STRATA_RATIOS) -> list[int]:
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
    for s in sizes:
        non_negative_int(s, "every stratum size")
    check_ratios(ratios, len(ratios))
    n = non_negative_int(n, "n")
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


def check_ratios(ratios: Sequence[float], count: int = 3, name: str = "ratios") -> list[float]:
    """``count`` finite non-negative shares, not all zero (the strata's 0.3 : 0.4 : 0.3), as floats.

    Examples:
        >>> check_ratios((3, 4, 3))
        [3.0, 4.0, 3.0]
    """
    if isinstance(ratios, (str, bytes)) or not isinstance(ratios, Sequence) or len(ratios) != count:
        raise InputError(f"{name} must hold {count} values (interior, band, background), got {ratios!r}")
    values = [in_range(r, f"every value of {name}", 0) for r in ratios]
    if sum(values) <= 0:
        raise InputError(f"{name} must not be all zero, got {list(ratios)}")
    return values


def sample_training_points(
    mask: Tensor,
    num_points: int | None = None,
    ratios: Sequence[float] = STRATA_RATIOS,
    k: int = BAND_K,
    point_ratio: float = POINT_RATIO,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """CBPRN's training points, drawn from the label in three strata.

    ``mask`` (B, 1, H, W), bool or 0/1 (binarised at 0.5). Per image, ``num_points`` (default
    ``round(H * W * point_ratio)``, the paper's H*W/20) points are split by :func:`stratum_quotas`
    over crack interior (``mask & ~band``), boundary band (:func:`label_boundary_band` with ``k``)
    and background (``~mask & ~band``) in ``ratios`` (the paper's 0.3 : 0.4 : 0.3). An empty
    stratum (no crack, or all crack) passes its quota to the others.

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
    m = _check_masks(mask)
    b, _, h, w = m.shape
    num_points = _num_points(h, w, point_ratio) if num_points is None else non_negative_int(num_points, "num_points")
    check_ratios(ratios)

    device = m.device
    rand_device = generator.device if generator is not None else device
    band = label_boundary_band(m, k).view(b, -1)
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


def _num_points(h: int, w: int, point_ratio: float) -> int:
    return int(round(h * w * in_range(point_ratio, "point_ratio", 0, open_low=True)))


def uniform_training_points(masks: Tensor, point_ratio: float = POINT_RATIO,
                            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """N = round(H*W*point_ratio) pixel centres per image drawn uniformly (with replacement), and
    the mask's value there: Table 1's "uniform sampling" ablation (no strata).

    Examples:
        >>> m = torch.zeros(2, 1, 40, 60, dtype=torch.bool)
        >>> coords, labels = uniform_training_points(m, generator=torch.Generator().manual_seed(0))
        >>> tuple(coords.shape), tuple(labels.shape), bool(labels.any())
        ((2, 120, 2), (2, 120), False)
    """
    m = _check_masks(masks)
    b, _, h, w = m.shape
    n = _num_points(h, w, point_ratio)
    rand_device = generator.device if generator is not None else m.device
    index = torch.randint(h * w, (b, n), generator=generator, device=rand_device).to(m.device)
    coords = pixel_centers(index.reshape(-1), h, w).view(b, n, 2)
    labels = torch.gather(m.reshape(b, -1).float(), 1, index)
    return coords, labels
