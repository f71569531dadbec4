"""The guided image filter of He, Sun and Tang (ECCV 2010 / TPAMI 2013), in pure torch.

CBPRN's edge-guided branch starts with a fixed-parameter guided filter on the input image: an
edge-preserving smoother that flattens texture and noise while keeping crack edges sharp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crackrender.checks import in_range, non_negative_int

__all__ = ["box_filter", "guided_filter", "self_guided_filter", "GuidedFilter"]


def _check_image(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got shape {tuple(x.shape)}")


def box_filter(x: Tensor, radius: int) -> Tensor:
    """Mean of each (2r+1) x (2r+1) window of a (B, C, H, W) tensor, same shape out.

    Normalised at the borders: a window that overhangs the image averages only the pixels inside
    it (He et al.'s ``N`` divisor), so a constant image stays constant up to its edges.
    ``radius=0`` returns ``x`` itself.

    Examples:
        >>> x = torch.ones(1, 1, 5, 7)
        >>> torch.allclose(box_filter(x, 2), x)
        True
    """
    _check_image(x, "x")
    non_negative_int(radius, "radius")
    if radius == 0:
        return x
    # separable window sums of shifted slices, then the count of pixels inside: 4r additions a
    # pixel against avg_pool2d's (2r+1)^2, about 1.3x faster at radius 2 on a 3 MP image
    h, w = x.shape[-2:]
    total = _window_sum(_window_sum(x, radius, -1), radius, -2)
    return total.div_(_inside_count(h, radius, x).unsqueeze(-1) * _inside_count(w, radius, x))


def _window_sum(x: Tensor, radius: int, dim: int) -> Tensor:
    """Sum over ``x[i - radius : i + radius + 1]`` along ``dim`` (-1 or -2), zeros outside."""
    n = x.shape[dim]
    padded = F.pad(x, (radius, radius) if dim == -1 else (0, 0, radius, radius))
    total = padded.narrow(dim, 0, n).clone()
    for shift in range(1, 2 * radius + 1):
        total += padded.narrow(dim, shift, n)
    return total


def _inside_count(n: int, radius: int, like: Tensor) -> Tensor:
    """How many of the window's 2r+1 positions along a side of length ``n`` fall inside it."""
    i = torch.arange(n, device=like.device)
    return ((i + radius).clamp(max=n - 1) - (i - radius).clamp(min=0) + 1).to(like.dtype)


def guided_filter(guide: Tensor, src: Tensor, radius: int = 2, eps: float = 1e-2) -> Tensor:
    """Guided filter of ``src`` (B, C, H, W) by ``guide`` (B, 1, H, W) or (B, C, H, W).

    A one-channel guide steers every channel of ``src``; a C-channel guide steers each channel of
    ``src`` by its own channel. Per window: ``a = cov(I, p) / (var(I) + eps)``,
    ``b = mean(p) - a * mean(I)``; output ``q = mean(a) * I + mean(b)``. ``eps`` is in squared
    intensity units (1e-2 suits images in [0, 1]): edges with a local variance well above ``eps``
    are kept, flatter variation is smoothed.

    Computed in float32 (float64 stays float64), also under autocast, and returned in
    ``src.dtype``: the variance is a difference of two close numbers, which bf16/fp16 destroy.

    Examples:
        >>> img = torch.rand(2, 3, 37, 53)
        >>> guided_filter(img.mean(1, keepdim=True), img, radius=2, eps=1e-2).shape
        torch.Size([2, 3, 37, 53])
    """
    _check_image(guide, "guide")
    _check_image(src, "src")
    non_negative_int(radius, "radius")
    in_range(eps, "eps", 0, open_low=True)
    if not (guide.is_floating_point() and src.is_floating_point()):
        raise ValueError(f"guide and src must be floating point, got {guide.dtype} and {src.dtype}")
    b, c, h, w = src.shape
    if guide.shape[0] != b or guide.shape[2:] != src.shape[2:] or guide.shape[1] not in (1, c):
        raise ValueError(f"guide must be (B, 1, H, W) or (B, C, H, W) matching src {tuple(src.shape)}, "
                         f"got {tuple(guide.shape)}")
    if guide.device != src.device:
        raise ValueError(f"guide is on {guide.device} but src is on {src.device}")

    dtype = torch.promote_types(torch.promote_types(guide.dtype, src.dtype), torch.float32)
    with torch.autocast(device_type=src.device.type, enabled=False):
        i, p = guide.to(dtype), src.to(dtype)
        mean_i, mean_p = box_filter(i, radius), box_filter(p, radius)
        # clamp: rounding can make E[I^2] - E[I]^2 slightly negative on flat regions
        var_i = (box_filter(i * i, radius) - mean_i * mean_i).clamp_min(0)
        cov_ip = box_filter(i * p, radius) - mean_i * mean_p
        a = cov_ip / (var_i + eps)
        b_ = mean_p - a * mean_i
        q = box_filter(a, radius) * i + box_filter(b_, radius)
    return q.to(src.dtype)


def self_guided_filter(x: Tensor, radius: int = 2, eps: float = 1e-2) -> Tensor:
    """``guided_filter(x, x, radius, eps)`` (bit for bit on a contiguous ``x``) in four box filters
    instead of six.

    With guide = src, mean(p) is mean(I) and cov(I, p) is var(I) before its clamp, so two box
    filters repeat. The work runs in contiguous NCHW: ``avg_pool2d`` on a 3-channel channels-last
    image is about 2x slower (docs/design.md, "Measured costs"). The output is contiguous NCHW.

    Examples:
        >>> img = torch.rand(1, 3, 37, 53)
        >>> torch.equal(self_guided_filter(img), guided_filter(img, img))
        True
    """
    _check_image(x, "x")
    non_negative_int(radius, "radius")
    in_range(eps, "eps", 0, open_low=True)
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")
    dtype = torch.promote_types(x.dtype, torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        i = x.to(dtype).contiguous()
        mean_i = box_filter(i, radius)
        cov_ii = box_filter(i * i, radius) - mean_i * mean_i
        a = cov_ii / (cov_ii.clamp_min(0) + eps)
        b_ = mean_i - a * mean_i
        q = box_filter(a, radius) * i + box_filter(b_, radius)
    return q.to(x.dtype)


class GuidedFilter(nn.Module):
    """Self-guided filter of each channel (guide = src = input): fixed edge-preserving smoothing.

    Has no parameters and no buffers, so it never trains and adds nothing to a checkpoint.

    Examples:
        >>> m = GuidedFilter(radius=2, eps=1e-2)
        >>> m(torch.rand(1, 3, 37, 53)).shape
        torch.Size([1, 3, 37, 53])
        >>> len(list(m.parameters()))
        0
    """

    def __init__(self, radius: int = 2, eps: float = 1e-2):
        super().__init__()
        self.radius = non_negative_int(radius, "radius")
        self.eps = in_range(eps, "eps", 0, open_low=True)

    def forward(self, x: Tensor) -> Tensor:
        return self_guided_filter(x, self.radius, self.eps)

    def extra_repr(self) -> str:
        return f"radius={self.radius}, eps={self.eps}"
