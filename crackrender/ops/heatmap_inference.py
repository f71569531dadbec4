"""The paper's heatmap-guided inference: the heatmap is upsampled (bilinear) to the full image and
only the pixels whose probability lies in [alpha, beta] are re-predicted by the point head; the
rest keep the heatmap's answer. Shaped like PointRend's
:func:`~crackrender.ops.subdivision.subdivision_inference`, so a model can use either.
"""

from __future__ import annotations

import torch
from torch import Tensor

from crackrender.checks import in_range, positive_int
from crackrender.errors import InputError
from crackrender.ops.points import PointFn, call_point_fn, check_size, pixel_centers, upsample_logits

__all__ = ["ALPHA", "BETA", "POINT_CHUNK", "band_training_points", "check_band", "heatmap_guided_inference",
           "uncertain_pixels"]

# the paper's band of uncertain probabilities
ALPHA, BETA = 0.3, 0.7
# points per point-head call: bounds inference memory at any image size
POINT_CHUNK = 65536


def check_band(alpha: float, beta: float) -> tuple[float, float]:
    """(alpha, beta) as floats if ``0 <= alpha < beta <= 1``, else an InputError.

    Examples:
        >>> check_band(0.3, 0.7)
        (0.3, 0.7)
    """
    try:
        band = in_range(alpha, "alpha", 0, 1), in_range(beta, "beta", 0, 1)
    except InputError:
        band = None
    if band is None or not band[0] < band[1]:
        raise InputError(f"need 0 <= alpha < beta <= 1, got alpha={alpha!r}, beta={beta!r}")
    return band


def uncertain_pixels(prob: Tensor, alpha: float = ALPHA, beta: float = BETA) -> Tensor:
    """Flat indices (int64, ascending) of the pixels of an (H, W) probability map with
    ``alpha <= p <= beta``: the only pixels the point head re-predicts.

    Examples:
        >>> uncertain_pixels(torch.tensor([[0.1, 0.3], [0.5, 0.9]]))
        tensor([1, 2])
    """
    if not isinstance(prob, Tensor) or prob.ndim != 2:
        raise ValueError(f"prob must be an (H, W) tensor, got {tuple(getattr(prob, 'shape', ()))}")
    alpha, beta = check_band(alpha, beta)
    keep = (prob >= alpha) & (prob <= beta)
    return torch.nonzero(keep.reshape(-1)).squeeze(1)


def heatmap_guided_inference(coarse_logits: Tensor, point_fn: PointFn, out_size: tuple[int, int],
                             alpha: float = ALPHA, beta: float = BETA,
                             chunk: int = POINT_CHUNK) -> tuple[Tensor, list[int]]:
    """Full-resolution logits from (B, 1, h, w) ``coarse_logits``: upsampled (bilinear) to
    ``out_size``, then every pixel with probability in [alpha, beta] re-predicted by ``point_fn``,
    which maps (B, P, 2) pixel-centre coordinates to (B, P) logits, at most ``chunk`` points per
    image per call. Images with fewer uncertain pixels than the others in a call are padded with
    pixel 0, whose answer is dropped.

    Returns the (B, 1, H, W) float32 logits and the number of pixels re-predicted per image.

    Examples:
        >>> coarse = torch.tensor([[[[-4.0, 0.0], [0.5, 4.0]]]])
        >>> logits, counts = heatmap_guided_inference(coarse, lambda c: torch.full(c.shape[:2], 9.0), (4, 4))
        >>> counts, logits[0, 0, 0].tolist()  # 9.0: re-predicted (the upsampled logit was 0)
        ([5], [-4.0, -3.0, -1.0, 9.0])
    """
    if not isinstance(coarse_logits, Tensor) or coarse_logits.ndim != 4 or coarse_logits.shape[1] != 1:
        raise ValueError(f"coarse_logits must be (B, 1, h, w), got {tuple(getattr(coarse_logits, 'shape', ()))}")
    h, w = check_size(out_size)
    alpha, beta = check_band(alpha, beta)
    chunk = positive_int(chunk, "chunk")
    logits = upsample_logits(coarse_logits, (h, w))
    b = logits.shape[0]
    flat = logits.view(b, h * w)
    selected = [uncertain_pixels(torch.sigmoid(flat[i]).view(h, w), alpha, beta) for i in range(b)]
    for start in range(0, max((s.numel() for s in selected), default=0), chunk):
        parts = [s[start:start + chunk] for s in selected]
        p = max(part.numel() for part in parts)
        index = torch.stack([torch.cat([part, part.new_zeros(p - part.numel())]) for part in parts])
        values = call_point_fn(point_fn, pixel_centers(index.view(-1), h, w).view(b, p, 2))  # float32: see point_sample
        for i, part in enumerate(parts):
            flat[i, part] = values[i, :part.numel()]
    return logits, [int(s.numel()) for s in selected]


def band_training_points(coarse_logits: Tensor, num_points: int, alpha: float = ALPHA, beta: float = BETA,
                         generator: torch.Generator | None = None) -> list[Tensor | None]:
    """Training points drawn from the heatmap's own [alpha, beta] band: per image, ``num_points``
    flat pixel indices (drawn uniformly with replacement) of the pixels of the full-size
    ``coarse_logits`` whose probability lies in the band, or None where the band is empty.

    The point head is only ever asked about these pixels at inference; the paper's label strata
    alone are a different population (measured: the head then calls 96% of CRACK500's band crack
    where 47% is). ``coarse_logits`` is (B, 1, H, W) already at full size; no gradient flows.

    Examples:
        >>> logits = torch.tensor([[[[-5.0, 0.1, 5.0, 0.0]]]])
        >>> [i.tolist() for i in band_training_points(logits, 4, generator=torch.Generator().manual_seed(0))]
        [[1, 3, 3, 1]]
    """
    if not isinstance(coarse_logits, Tensor) or coarse_logits.ndim != 4 or coarse_logits.shape[1] != 1:
        raise ValueError(f"coarse_logits must be (B, 1, H, W), got {tuple(getattr(coarse_logits, 'shape', ()))}")
    num_points = positive_int(num_points, "num_points")
    alpha, beta = check_band(alpha, beta)
    rand_device = generator.device if generator is not None else coarse_logits.device
    out = []
    with torch.no_grad():
        prob = torch.sigmoid(coarse_logits.detach().float())
        for p in prob[:, 0]:
            pool = uncertain_pixels(p, alpha, beta)
            if pool.numel() == 0:
                out.append(None)
                continue
            pick = torch.randint(pool.numel(), (num_points,), generator=generator, device=rand_device)
            out.append(pool[pick.to(pool.device)])
    return out
