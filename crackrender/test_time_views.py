"""Test-time views: a model's crack probability averaged over flipped and rescaled copies of each input.

A crack has no preferred side or direction, and the same crack comes at many widths in pixels,
so a model's answers on a mirrored, transposed or rescaled photo are equally good guesses; their
mean is a steadier one. Each view is one more model pass, so views are opt-in
(``crackrender segment --flips 2 --scales 0.75,1,1.25``). Measured gains and costs: MODEL.md,
"Test-time views". Written here rather than taken from a TTA library (ttach): the views are
``torch.flip``/``transpose``/``interpolate`` calls, and those libraries wrap ``model(x)``, not the
``predict`` call through which CBPRN re-renders its uncertain points at each view's own size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crackrender.errors import InputError
from crackrender.models.base import Prediction


# each flip maps the (..., H, W) image to what the model sees; its inverse maps the answer back.
# The first four keep the image's shape; the last four transpose it (the dihedral group of 8).
_FLIPS = {
    "identity": (lambda t: t, lambda t: t),
    "mirror": (lambda t: t.flip(-1), lambda t: t.flip(-1)),
    "upside_down": (lambda t: t.flip(-2), lambda t: t.flip(-2)),
    "rotate_180": (lambda t: t.flip(-2, -1), lambda t: t.flip(-2, -1)),
    "transpose": (lambda t: t.transpose(-2, -1), lambda t: t.transpose(-2, -1)),
    "rotate_90": (lambda t: t.transpose(-2, -1).flip(-1), lambda t: t.flip(-1).transpose(-2, -1)),
    "rotate_270": (lambda t: t.transpose(-2, -1).flip(-2), lambda t: t.flip(-2).transpose(-2, -1)),
    "anti_transpose": (lambda t: t.transpose(-2, -1).flip(-2, -1), lambda t: t.flip(-2, -1).transpose(-2, -1)),
}
FLIP_COUNTS = (1, 2, 4, 8)
SCALE_RANGE = (0.25, 2.0)  # a view at scale s holds s^2 times a tile's pixels: 2 bounds it at 4x


def check_flips(flips) -> int:
    """``flips`` as an int, one of :data:`FLIP_COUNTS`, else a one-line :class:`InputError`."""
    if isinstance(flips, bool) or not isinstance(flips, int) or flips not in FLIP_COUNTS:
        raise InputError(f"flips must be one of {', '.join(map(str, FLIP_COUNTS))} views, got {flips!r}")
    return flips


def check_scales(scales) -> tuple[float, ...]:
    """``scales`` (numbers, or one comma-separated string) as a tuple of distinct floats in
    :data:`SCALE_RANGE`, in the order given, else a one-line :class:`InputError`.

    Examples:
        >>> check_scales("0.75,1,1.25")
        (0.75, 1.0, 1.25)
    """
    items = scales.split(",") if isinstance(scales, str) else scales
    try:
        values = tuple(float(s) for s in items)
    except (TypeError, ValueError):
        raise InputError(f"scales must be numbers such as 0.75,1,1.25, got {scales!r}") from None
    lo, hi = SCALE_RANGE
    if not values or len(set(values)) != len(values) or not all(lo <= v <= hi for v in values):
        raise InputError(f"scales must be distinct numbers in [{lo}, {hi}], such as 0.75,1,1.25, got {scales!r}")
    return values


def flip_names(flips: int) -> tuple[str, ...]:
    """The flips averaged for ``flips``: 1 the image itself, 2 adds its mirror, 4 every flip, 8 the
    transposed four as well.

    Examples:
        >>> flip_names(2)
        ('identity', 'mirror')
    """
    return tuple(_FLIPS)[:check_flips(flips)]


def apply_flip(name: str, images: torch.Tensor) -> torch.Tensor:
    """``images`` (B, C, H, W) as flip ``name`` shows them, in the input's memory format."""
    return _FLIPS[name][0](images).contiguous(memory_format=_memory_format(images))


def undo_flip(name: str, maps: torch.Tensor) -> torch.Tensor:
    """``maps`` (..., H', W') predicted on flip ``name``, back in the original image's frame."""
    return _FLIPS[name][1](maps)


def rescale(images: torch.Tensor, scale: float) -> torch.Tensor:
    """``images`` (B, C, H, W) resized by ``scale`` (sides rounded, at least 1 px): bilinear,
    antialiased when shrinking so thin cracks fade rather than alias."""
    if scale == 1.0:
        return images
    h, w = images.shape[-2:]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
    return out.contiguous(memory_format=_memory_format(images))


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H', W') maps resized (bilinear) to ``size``; unchanged when already that size."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def views_label(flips: int, scales: tuple[float, ...]) -> str:
    """The key a calibrated threshold for these views is stored under in a model file's info.

    Examples:
        >>> views_label(2, (0.75, 1.0, 1.25))
        'flips=2 scales=0.75,1,1.25'
    """
    return f"flips={flips} scales=" + ",".join(f"{s:g}" for s in scales)


def _memory_format(t: torch.Tensor):
    channels_last = t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


class ViewAveraged:
    """``model`` whose ``predict`` averages the crack probability over every pair of a scale in
    ``scales`` and a flip of :func:`flip_names` (``flips``), each answer mapped back to the input's
    frame and size; the mask is that mean > 0.5, as the models decide, and the refined points are
    summed over the views. Other attributes (``config``, ``alpha``, ...) are the model's."""

    def __init__(self, model, flips: int = 1, scales=(1.0,)):
        self.model, self.flips, self.scales = model, check_flips(flips), check_scales(scales)

    @property
    def views(self) -> int:
        return self.flips * len(self.scales)

    def __getattr__(self, name):
        # only called for attributes not set in __init__: the sidecar reads the model's config, alpha, beta
        return getattr(self.__dict__["model"], name)

    def predict(self, images: torch.Tensor, **kwargs) -> Prediction:
        size = tuple(images.shape[-2:])
        total = None
        refined = [0] * images.shape[0]
        for scale in self.scales:
            scaled = rescale(images, scale)
            for name in flip_names(self.flips):
                pred = self.model.predict(apply_flip(name, scaled), **kwargs)
                prob = resize_maps(undo_flip(name, pred.prob.float()), size)
                total = prob.clone() if total is None else total.add_(prob)
                refined = [a + int(b) for a, b in zip(refined, pred.refined_points)]
        prob = total.div_(self.views)
        return Prediction(prob > 0.5, prob, refined)


def is_plain(flips: int, scales: tuple[float, ...]) -> bool:
    """True when the views are the image itself only: no wrapper, no change in the output."""
    return flips == 1 and tuple(scales) == (1.0,)
