"""PointRend's own point selection (Kirillov et al. 2020), for the baselines of the paper's
Tables 1 and 3: uncertainty-driven training points and subdivision inference.

Binary segmentation has one logit per pixel, so the uncertainty is ``-|logit|`` (most uncertain at
p = 0.5). PointRend's multi-class rule (the gap between the top-2 class logits) does not apply:
with a single channel there is no second logit. Coordinates follow :mod:`crackrender.ops.points`:
normalised (x, y) in [0, 1], pixel (i, j) of an H x W map at ``((j + 0.5) / W, (i + 0.5) / H)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from crackrender.checks import in_range, positive_int
from crackrender.ops.points import PointFn, call_point_fn, check_size, pixel_centers, point_sample

__all__ = ["SUBDIVISION_POINTS", "uncertainty", "uncertain_training_points", "subdivision_inference"]

# points re-predicted per x2 step: the N of the PointRend paper's semantic segmentation (section 5,
# "the number of points in the stride 16 map of a 1024x2048 image"), which it prints as 8096;
# detectron2's Cityscapes config uses that count exactly, 8192. Model files record the 8096.
SUBDIVISION_POINTS = 8096


def _check_logits(logits: Tensor, name: str = "coarse_logits") -> None:
    if not isinstance(logits, Tensor) or logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"{name} must be (B, 1, h, w) crack logits, got {tuple(getattr(logits, 'shape', ()))}")
    if logits.shape[-2] * logits.shape[-1] == 0:
        raise ValueError(f"{name} has no pixels: {tuple(logits.shape)}")


def uncertainty(logits: Tensor) -> Tensor:
    """``-|logits|``: highest (0) where the crack probability is 0.5.

    Examples:
        >>> uncertainty(torch.tensor([-3.0, 0.5, 2.0]))
        tensor([-3.0000, -0.5000, -2.0000])
    """
    return -logits.abs()


def uncertain_training_points(coarse_logits: Tensor, num_points: int, oversample: float = 3.0,
                              importance: float = 0.75, generator: torch.Generator | None = None) -> Tensor:
    """PointRend's training points: (B, num_points, 2) normalised (x, y), on the logits' device.

    Draws ``oversample * num_points`` uniform random points, keeps the ``importance * num_points``
    most uncertain of them (coarse logits read bilinearly at each point), then appends
    ``num_points`` minus that many fresh uniform points: the uncertain points come first. Points
    are continuous, not pixel centres; the selection carries no gradient. All randomness comes
    from ``generator``, whose device may differ from the logits'.

    Examples:
        >>> logits = torch.linspace(-4, 4, 16).view(1, 1, 1, 16).expand(1, 1, 8, 16)
        >>> uncertain_training_points(logits, 10, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([1, 10, 2])
    """
    _check_logits(coarse_logits)
    num_points = positive_int(num_points, "num_points")
    in_range(oversample, "oversample", 1)
    in_range(importance, "importance", 0, 1)
    b, device = coarse_logits.shape[0], coarse_logits.device
    rand_device = generator.device if generator is not None else device
    num_sampled = max(num_points, int(num_points * oversample))
    num_uncertain = int(importance * num_points)
    candidates = torch.rand(b, num_sampled, 2, generator=generator, device=rand_device).to(device)
    with torch.no_grad():
        score = uncertainty(point_sample(coarse_logits.detach().float(), candidates)[..., 0])
    top = score.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, top[..., None].expand(-1, -1, 2))
    fresh = torch.rand(b, num_points - num_uncertain, 2, generator=generator, device=rand_device).to(device)
    return torch.cat([chosen, fresh], dim=1)


def _next_size(size: tuple[int, int], out_size: tuple[int, int]) -> tuple[int, int]:
    # x2 per step, clamped so the last step lands exactly on out_size (a map larger than the
    # output in one dimension goes straight to it)
    return tuple(min(2 * s, o) if s < o else o for s, o in zip(size, out_size))


def subdivision_inference(coarse_logits: Tensor, point_fn: PointFn, out_size: tuple[int, int],
                          num_points: int = SUBDIVISION_POINTS) -> tuple[Tensor, list[int]]:
    """PointRend's subdivision: upsample the coarse logits x2 (bilinear) step by step up to
    ``out_size``; after each step, re-predict the ``num_points`` most uncertain pixels with
    ``point_fn``, which maps (B, P, 2) pixel-centre coordinates to (B, P) logits.

    Returns the (B, 1, H, W) float32 logits and the number of points re-predicted per image (the
    sum over steps; 0 when the coarse map already has the output size).

    Examples:
        >>> coarse = torch.randn(1, 1, 4, 6)
        >>> logits, counts = subdivision_inference(coarse, lambda c: torch.zeros(c.shape[:2]), (13, 24), 5)
        >>> tuple(logits.shape), counts
        ((1, 1, 13, 24), [10])
    """
    _check_logits(coarse_logits)
    out_size = check_size(out_size)
    num_points = positive_int(num_points, "num_points")
    b = coarse_logits.shape[0]
    logits = coarse_logits.float()
    refined = 0
    while tuple(logits.shape[-2:]) != out_size:
        h, w = _next_size(tuple(logits.shape[-2:]), out_size)
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        p = min(num_points, h * w)
        flat = logits.reshape(b, h * w)
        index = uncertainty(flat).topk(p, dim=1).indices
        coords = pixel_centers(index.reshape(-1), h, w).view(b, p, 2).to(logits.device)
        logits = flat.scatter(1, index, call_point_fn(point_fn, coords)).view(b, 1, h, w)
        refined += p
    return logits, [refined] * b
