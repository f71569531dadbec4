"""Crack masks of exact geometry, for calibrating and testing the measurements.

A pixel is crack when its centre lies inside the analytic shape, so the mask's area equals the
shape's area on average and the true length and width are known exactly. Each function returns
``(mask, truth)`` with ``truth = {"length", "width", "mean_width", "branches"}`` in pixels.
"""

from __future__ import annotations

import numpy as np


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    return xx.astype(float), yy.astype(float)


def _bar(xx, yy, x0, y0, angle_deg, length, w0, w1=None) -> np.ndarray:
    """Pixels of a bar from (x0, y0) along ``angle_deg`` (counter-clockwise on screen), width
    ``w0`` at its start tapering linearly to ``w1`` at its end; flat ends."""
    t = np.radians(angle_deg)
    ux, uy = np.cos(t), -np.sin(t)
    a = (xx - x0) * ux + (yy - y0) * uy
    n = -(xx - x0) * uy + (yy - y0) * ux
    w1 = w0 if w1 is None else w1
    half = 0.5 * (w0 + (w1 - w0) * np.clip(a / length, 0, 1))
    return (a >= 0) & (a <= length) & (np.abs(n) <= half)


def straight(width: float, length: float = 300, angle_deg: float = 0.0, margin: int = 20):
    """A straight crack with flat ends, centred in its image.

    Examples:
        >>> m, truth = straight(5, 100)
        >>> int(m.sum()), truth["length"]
        (500, 100)
    """
    t = np.radians(angle_deg)
    ext_x = abs(length * np.cos(t)) + abs(width * np.sin(t))
    ext_y = abs(length * np.sin(t)) + abs(width * np.cos(t))
    h, w = int(ext_y) + 2 * margin, int(ext_x) + 2 * margin
    xx, yy = _grid(h, w)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    x0, y0 = cx - length / 2 * np.cos(t), cy + length / 2 * np.sin(t)
    truth = dict(length=length, width=width, mean_width=width, branches=1)
    return _bar(xx, yy, x0, y0, angle_deg, length, width), truth


def tapered(width: float, length: float = 300, angle_deg: float = 20.0, tip_width: float | None = None,
            margin: int = 20):
    """A straight crack narrowing linearly from ``width`` to ``tip_width`` (default width/3, >= 1)."""
    tip = max(1.0, width / 3) if tip_width is None else tip_width
    m, _ = straight(width, length, angle_deg, margin)
    h, w = m.shape
    t = np.radians(angle_deg)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    x0, y0 = cx - length / 2 * np.cos(t), cy + length / 2 * np.sin(t)
    xx, yy = _grid(h, w)
    return _bar(xx, yy, x0, y0, angle_deg, length, width, tip), dict(
        length=length, width=width, mean_width=(width + tip) / 2, branches=1)


def arc(width: float, radius: float = 150, sweep_deg: float = 120, margin: int = 20):
    """A crack along a circular arc with radial ends; its length is measured on the centre line."""
    size = int(2 * (radius + width)) + 2 * margin
    xx, yy = _grid(size, size)
    c = (size - 1) / 2
    r = np.hypot(xx - c, yy - c)
    ang = np.degrees(np.arctan2(-(yy - c), xx - c)) % 360
    start = 90 - sweep_deg / 2
    m = (np.abs(r - radius) <= width / 2) & ((ang - start) % 360 <= sweep_deg)
    return m, dict(length=radius * np.radians(sweep_deg), width=width, mean_width=width, branches=1)


def branching(width: float, arm: float = 150, fork_deg: float = 35, margin: int = 20):
    """A Y: one arm to the left of a junction, two arms forking to the right at +-``fork_deg``.

    The true length is the sum of the three arms measured from the junction point.
    """
    size = int(2 * arm + width) + 2 * margin
    xx, yy = _grid(size, size)
    c = (size - 1) / 2
    m = np.hypot(xx - c, yy - c) <= width / 2  # fills the notches where the arms meet
    for a in (180.0, fork_deg, -fork_deg):
        m |= _bar(xx, yy, c, c, a, arm, width)
    return m, dict(length=3 * arm, width=width, mean_width=width, branches=3)
