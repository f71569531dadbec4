"""Crack centre lines and their exact rasterisation (the geometry behind :mod:`crackrender.data.synthetic`).

A crack is a smoothed random walk; a pixel is a crack pixel iff its centre lies within half the
local width of the centre line, so mask area / length equals the width.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = ["walk", "rotate", "rasterise_polyline", "draw_crack"]


def walk(length: float, curvature: float, width: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Centre line from origin: random walk whose direction changes are smoothed noise.

    Returns the (N, 2) points and the per-point heading deviation (radians).
    """
    n = max(2, int(np.ceil(length / 3.0)))
    ds = length / n
    heading = np.zeros(n)
    if curvature > 0 and n > 4:
        # Long-wavelength wander, medium bends and step-scale jags (real cracks are jagged);
        # each normalised to unit std so ``curvature`` is roughly the heading deviation in radians.
        for scale, weight in ((max(2.0, n / 6), 1.0), (max(1.0, (3 * width + 8) / ds), 0.5), (0.7, 0.35)):
            s = gaussian_filter1d(rng.standard_normal(n), scale, mode="reflect")
            heading += weight * s / (s.std() + 1e-9)
        heading *= curvature
    steps = np.stack([np.cos(heading), np.sin(heading)], 1) * ds
    pts = np.vstack([[0.0, 0.0], np.cumsum(steps, 0)])
    return pts, np.append(heading, heading[-1])


def rotate(pts: np.ndarray, ang: float) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    return pts @ np.array([[c, s], [-s, c]])


def rasterise_polyline(label: np.ndarray, pts: np.ndarray, widths: np.ndarray, touched: list) -> None:
    """Rasterise a variable-width polyline exactly: a pixel is a crack pixel iff its centre
    lies within half the local width of the centre line (so area / length == width).

    ``label`` gets 1..255 = soft shading from edge to centre line (max over segments).
    Vectorised over chunks of segments, each with a small window around it; flat indices of
    drawn pixels are appended to ``touched`` (avoids scanning the whole image later).
    """
    h, w = label.shape
    p0, p1, r0, r1 = pts[:-1], pts[1:], widths[:-1] / 2, widths[1:] / 2
    rmax = np.maximum(r0, r1)[:, None]
    lo = np.floor(np.minimum(p0, p1) - rmax).astype(np.int64)
    hi = np.ceil(np.maximum(p0, p1) + rmax).astype(np.int64)
    keep = np.flatnonzero((hi[:, 0] >= 0) & (lo[:, 0] < w) & (hi[:, 1] >= 0) & (lo[:, 1] < h))
    if not len(keep):
        return
    k = int((hi - lo)[keep].max()) + 1
    off = np.arange(k)
    flat = label.reshape(-1)
    for c in range(0, len(keep), max(1, 1_000_000 // (k * k))):
        i = keep[c:c + max(1, 1_000_000 // (k * k))]
        x = (lo[i, 0, None, None] + off[None, None, :]).astype(np.float64)  # (n, 1, k)
        y = (lo[i, 1, None, None] + off[None, :, None]).astype(np.float64)  # (n, k, 1)
        ax, ay = p0[i, 0, None, None], p0[i, 1, None, None]
        dx, dy = (p1[i, 0] - p0[i, 0])[:, None, None], (p1[i, 1] - p0[i, 1])[:, None, None]
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0, 1)
        dist = np.hypot(x - ax - t * dx, y - ay - t * dy)
        r = r0[i, None, None] + (r1 - r0)[i, None, None] * t
        inside = (dist <= r) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        n_, yy, xx = np.nonzero(inside)
        shade = 1 + np.round(254 * (1 - dist[n_, yy, xx] / np.maximum(r[n_, yy, xx], 1e-6)))
        idx = (lo[i[n_], 1] + yy) * w + lo[i[n_], 0] + xx
        np.maximum.at(flat, idx, shade.astype(np.uint8))
        touched.append(idx)


def draw_crack(spec, w: int, h: int, label: np.ndarray, touched: list, rng: np.random.Generator) -> dict:
    """Generate, place and draw one crack with its branches; returns its ground-truth geometry."""
    pts, dev = walk(spec.length, spec.curvature, spec.width, rng)
    theta = rng.uniform(0, 2 * np.pi)
    pts = rotate(pts, theta)
    t = np.linspace(0, 1, len(pts))
    widths = np.full(len(pts), float(spec.width))
    if spec.taper:  # thin ends, slightly irregular width along the crack
        wobble = gaussian_filter1d(rng.standard_normal(len(pts)), 5, mode="reflect")
        wobble = 1 + 0.1 * wobble / (wobble.std() + 1e-9)
        widths = spec.width * (0.25 + 0.75 * np.sin(np.pi * t) ** 0.6) * np.clip(wobble, 0.75, 1.15)
        widths = np.maximum(widths, min(1.0, spec.width))  # below 1 px a crack breaks into dots
    # Place so the crack fits inside the image when it can; otherwise it spans across.
    pad = spec.width
    for k, size in ((0, w), (1, h)):
        lo, hi = pad - pts[:, k].min(), size - pad - pts[:, k].max()
        pts[:, k] += rng.uniform(min(lo, hi), max(lo, hi))
    rasterise_polyline(label, pts, widths, touched)
    branches = []
    for _ in range(spec.branches):
        i = int(rng.integers(int(0.2 * len(pts)), max(int(0.2 * len(pts)) + 1, int(0.8 * len(pts)))))
        bw = max(min(1.0, spec.width), widths[i] * rng.uniform(0.4, 0.7))
        bpts, _ = walk(spec.length * rng.uniform(0.2, 0.5), spec.curvature, bw, rng)
        leave = np.deg2rad(rng.uniform(20, 70)) * rng.choice([-1, 1])
        bpts = rotate(bpts, theta + dev[i] + leave) + pts[i]
        bwid = np.maximum(bw * np.linspace(1.0, 0.3, len(bpts)), min(1.0, bw))
        rasterise_polyline(label, bpts, bwid, touched)
        branches.append({"width": bw, "length": float(np.linalg.norm(np.diff(bpts, axis=0), axis=1).sum()),
                         "polyline": bpts, "widths": bwid})
    return {"width": float(spec.width), "length": float(spec.length), "curvature": float(spec.curvature),
            "polyline": pts, "widths": widths, "branches": branches}
