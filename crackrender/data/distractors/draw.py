"""Drawing primitives shared by the distractor families: noise, shapes, rough edges, compositing.

Shapes are drawn as float32 coverage maps in [0, 1] the image's size (cv2 anti-aliased drawing at
1/16 px precision), roughened and softened, then composited into the float RGB image. Every
random choice comes from the caller's ``rng``, so a family is deterministic by seed.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

_SHIFT = 4  # cv2 fractional bits: points at 1/16 px
_ONE = 1 << _SHIFT
TOUCH_LEVEL = 0.04  # coverage above this counts as touched (~3-5 grey levels of change at full strength)


def family(fn):
    """Mark a distractor family: ``density <= 0`` draws nothing and touches nothing."""
    @functools.wraps(fn)
    def wrapper(image: np.ndarray, rng: np.random.Generator, density: float = 1.0):
        if density <= 0:
            return image, np.zeros(image.shape[:2], bool)
        return fn(image, rng, density)
    return wrapper


def short_side(image: np.ndarray) -> int:
    return int(min(image.shape[:2]))


def count(rng: np.random.Generator, mean: float, density: float, at_least: int = 1) -> int:
    """How many elements to draw: Poisson around ``mean * density``, at least ``at_least`` when density > 0."""
    if density <= 0:
        return 0
    return max(at_least, int(rng.poisson(mean * density)))


def noise(shape: tuple[int, int], rng: np.random.Generator, cell: float | tuple[float, float]) -> np.ndarray:
    """Smooth value noise in about [-1, 1] with features ``cell`` px across ((y, x) for anisotropic)."""
    h, w = shape
    cy, cx = (cell, cell) if np.isscalar(cell) else cell
    grid = rng.random((int(h / max(cy, 1)) + 3, int(w / max(cx, 1)) + 3), dtype=np.float32) * 2 - 1
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), float(sigma)) if sigma > 0.05 else a


def canvas(image: np.ndarray) -> np.ndarray:
    """An empty uint8 coverage canvas for cv2 drawing (255 = full coverage)."""
    return np.zeros(image.shape[:2], np.uint8)


def fixed(pts) -> np.ndarray:
    """Float (x, y) points as cv2's fixed-point int32 polygon."""
    return np.round(np.asarray(pts, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def fill(cv: np.ndarray, pts, value: int = 255) -> None:
    cv2.fillPoly(cv, [fixed(pts)], int(value), cv2.LINE_AA, _SHIFT)


def stripe(cv: np.ndarray, p0, p1, width: float, value: int = 255) -> None:
    """A filled rectangle of ``width`` px along the segment p0-p1 (square ends, sub-pixel exact)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-9) * width / 2
    fill(cv, [p0 + n, p1 + n, p1 - n, p0 - n], value)


def polyline(cv: np.ndarray, pts, thickness: float, value: int = 255) -> None:
    """An open anti-aliased polyline (round joins) of integer ``thickness`` >= 1."""
    cv2.polylines(cv, [fixed(pts)], False, int(value), max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def line_across(image: np.ndarray, rng: np.random.Generator, angle: float | None = None,
                through=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """End points of a straight line crossing the whole image (past both borders), and its unit normal."""
    h, w = image.shape[:2]
    angle = rng.uniform(0, np.pi) if angle is None else angle
    c = np.array([rng.uniform(0, w), rng.uniform(0, h)]) if through is None else np.asarray(through, float)
    d = np.array([np.cos(angle), np.sin(angle)])
    reach = np.hypot(w, h)
    return c - d * reach, c + d * reach, np.array([-d[1], d[0]])


def coverage(cv: np.ndarray) -> np.ndarray:
    return cv.astype(np.float32) * np.float32(1 / 255)


def rough(a: np.ndarray, rng: np.random.Generator, amount: float, soft: float, cell: float | None = None) -> np.ndarray:
    """Wobble the edges of coverage ``a`` by about +-``amount`` px, then soften them by ``soft`` px.

    Blurring turns each edge into a ramp about ``amount`` wide; thresholding the ramp plus
    noise at 0.5 moves the edge along it, irregularly, as paint and spalled arrises are."""
    if amount > 0.2:
        g = blur(a, amount) + 0.38 * noise(a.shape, rng, cell or max(2.0, 2.5 * amount))
        a = (g > 0.5).astype(np.float32)
    return blur(a, soft)


def touched(a: np.ndarray, level: float = TOUCH_LEVEL) -> np.ndarray:
    return a > level


def luminance(image: np.ndarray) -> np.ndarray:
    return image.mean(axis=2)


def shade(image: np.ndarray, a: np.ndarray, depth: float, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Multiply by ``1 - a * depth * tint`` per channel: shadows, damp, grooves (texture shows through)."""
    k = np.float32(depth) * np.asarray(tint, np.float32)
    image *= 1 - np.clip(a[..., None] * k, 0, 0.95)
    return image


def lighten(image: np.ndarray, a: np.ndarray, amount: float) -> np.ndarray:
    """Add ``amount`` grey levels under coverage ``a`` (scratches, efflorescence haze)."""
    image += a[..., None] * np.float32(amount)
    return image


def cover(image: np.ndarray, a: np.ndarray, colour, texture: float = 0.3) -> np.ndarray:
    """Composite an opaque material of ``colour`` over ``a``; ``texture`` keeps that share of the
    surface's relative grain visible through it (paint follows the aggregate below)."""
    lum = luminance(image)
    rel = lum / max(float(lum.mean()), 1.0)
    top = np.asarray(colour, np.float32) * (1 - texture + texture * rel)[..., None]
    a3 = a[..., None]
    image *= 1 - a3
    image += a3 * top
    return image


def tone(image: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Multiply by a per-pixel (H, W) or (H, W, 3) factor: a different material's tone and grain."""
    image *= factor if factor.ndim == 3 else factor[..., None]
    return image
