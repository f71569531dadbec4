"""Road distractors: paint lines and arrows, tyre marks, oil spots, patch edges, kerbs, manholes.

Each family: ``f(image, rng, density=1.0) -> (image, touched)``; ``image`` is float32 RGB
(H, W, 3) in 0-255, changed in place; ``touched`` is the bool mask of the pixels it changed.
Sizes follow the image's short side S (a road photo's lane line is a few % of S wide).
"""
from __future__ import annotations

import cv2
import numpy as np

from crackrender.data.distractors import draw as d

_WHITE, _YELLOW = (236.0, 236.0, 228.0), (232.0, 184.0, 40.0)


def _paint(image: np.ndarray, cv: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Composite drawn paint: rough chipped edges, patchy granular wear, a dark line along its edges."""
    s = d.short_side(image)
    shape = d.coverage(cv)
    a = d.rough(shape, rng, rng.uniform(0.5, 1.8), rng.uniform(0.5, 1.1))
    wear = rng.uniform(0.0, 0.8) ** 1.5  # most paint is fairly fresh, some badly worn
    where = 0.5 + 0.5 * d.noise(a.shape, rng, s * rng.uniform(0.05, 0.15))  # worn in patches (tyre tracks)
    grain = d.noise(a.shape, rng, rng.uniform(1.5, 3.5))  # paint survives on aggregate tops
    # Chips break off along the edges, where the paint is thin and tyres hit it.
    near_edge = d.blur(shape, rng.uniform(3, 8)) < 0.85
    chips = (d.noise(a.shape, rng, rng.uniform(4, 12)) > rng.uniform(0.8, 0.95)) & near_edge
    keep = np.clip(2.5 * (1 - wear * (0.3 + where)) + 1.3 * wear * grain, 0, 1)
    a *= keep * ~chips
    # Dirt and the raised paint's cast shadow make a thin dark band along one side or both.
    k = rng.uniform(1.5, 4.5)
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * np.pi)
        moved = cv2.warpAffine(shape, np.float32([[1, 0, k * np.cos(ang)], [0, 1, k * np.sin(ang)]]), shape.shape[::-1])
    else:
        moved = cv2.dilate(shape, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(k) + 1,) * 2))
    band = d.blur(np.clip(moved - shape, 0, 1), 0.8)
    d.shade(image, band, rng.uniform(0.15, 0.45))
    colour = np.asarray(_YELLOW if rng.random() < 0.3 else _WHITE) * rng.uniform(0.88, 1.04)
    d.cover(image, a, colour, texture=rng.uniform(0.2, 0.45))
    return d.touched(a) | d.touched(band)


@d.family
def paint_lines(image, rng, density=1.0):
    """Lane lines (solid, dashed, double) and zebra bars, roughly parallel as on a road."""
    s, cv = d.short_side(image), d.canvas(image)
    theta = rng.uniform(0, np.pi)
    for _ in range(d.count(rng, 1.4, density)):
        w = float(np.clip(rng.uniform(0.02, 0.06) * s, 4, 160))
        p0, p1, n = d.line_across(image, rng, theta + rng.normal(0, 0.03))
        kind = rng.choice(["solid", "dashed", "double", "zebra"], p=[0.35, 0.35, 0.15, 0.15])
        if kind == "solid":
            d.stripe(cv, p0, p1, w)
        elif kind == "double":
            for side in (-1, 1):
                d.stripe(cv, p0 + side * n * w, p1 + side * n * w, w)
        elif kind == "dashed":
            dash, length = w * rng.uniform(8, 25), np.hypot(*(p1 - p0))
            gap, u = dash * rng.uniform(0.6, 2.0), (p1 - p0) / length
            for t in np.arange(rng.uniform(-dash - gap, 0), length, dash + gap):
                d.stripe(cv, p0 + u * t, p0 + u * (t + dash), w)
        else:
            bar, centre, u = 2.5 * w, (p0 + p1) / 2, (p1 - p0) / np.hypot(*(p1 - p0))
            half = rng.uniform(0.25, 0.5) * s
            for j in range(int(rng.integers(3, 7))):
                c = centre + n * 2 * bar * (j - 2)
                d.stripe(cv, c - u * half, c + u * half, bar)
    return image, (_paint(image, cv, rng) if cv.any() else np.zeros(cv.shape, bool))


@d.family
def paint_arrows(image, rng, density=1.0):
    """Direction arrows: a shaft and a triangular head, some with a turning branch."""
    s, cv = d.short_side(image), d.canvas(image)
    h, w = image.shape[:2]
    for _ in range(d.count(rng, 1.0, density)):
        length = rng.uniform(0.3, 0.8) * s
        ws, wh = length * rng.uniform(0.06, 0.1), length * rng.uniform(0.22, 0.32)
        ls, lh = length * 0.65, length * 0.35
        arrow = np.array([(0, -ws / 2), (ls, -ws / 2), (ls, -wh / 2), (ls + lh, 0), (ls, wh / 2), (ls, ws / 2), (0, ws / 2)])
        ang, centre = rng.uniform(0, 2 * np.pi), np.array([rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h])
        rot = lambda a: np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # noqa: E731
        for turn in [0.0] + ([rng.choice([-1, 1]) * np.pi / 4] if rng.random() < 0.35 else []):
            # a turning branch: smaller, leaving the shaft 40% along it
            shift = np.array([ls * 0.4, 0]) if turn else np.zeros(2)
            d.fill(cv, arrow * (0.7 if turn else 1.0) @ rot(ang + turn) + centre + shift @ rot(ang))
    return image, _paint(image, cv, rng)


@d.family
def tyre_marks(image, rng, density=1.0):
    """Pairs of dark, soft, streaky tyre tracks along gentle curves, fading at their ends."""
    s, cv = d.short_side(image), d.canvas(image)
    for _ in range(d.count(rng, 0.6, density)):
        tw = float(np.clip(rng.uniform(0.015, 0.045) * s, 3, 120))
        p0, p1, n = d.line_across(image, rng)
        bend, t = rng.normal(0, 0.15), np.linspace(-0.5, 0.5, 41)[:, None]
        centre = p0 + (p1 - p0) * (t + 0.5) + n * bend * s * 4 * t ** 2
        start, stop = rng.uniform(0.0, 0.4), rng.uniform(0.6, 1.0)
        fade = np.clip(np.minimum(t[:, 0] + 0.5 - start, stop - t[:, 0] - 0.5) * 8, 0, 1)
        for side in (-0.5, 0.5) if rng.random() < 0.7 else (0.0,):
            track = centre + n * side * tw * rng.uniform(5, 8)
            for i in range(40):
                if fade[i] > 0:
                    d.polyline(cv, track[i:i + 2], tw, int(255 * fade[i]))
    streak = np.clip(0.8 + 0.3 * d.noise(cv.shape, rng, rng.uniform(10, 30)), 0, 1)  # rubber laid unevenly
    a = d.blur(d.coverage(cv), rng.uniform(1.5, 4)) * streak
    d.shade(image, a, rng.uniform(0.15, 0.45))
    return image, d.touched(a)


@d.family
def oil_spots(image, rng, density=1.0):
    """Clusters of dark brownish blobs with irregular soft edges and a faint halo."""
    s, cv = d.short_side(image), d.canvas(image)
    h, w = image.shape[:2]
    for _ in range(d.count(rng, 1.5, density)):
        c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        for _ in range(int(rng.integers(1, 7))):
            r = np.exp(rng.uniform(np.log(4), np.log(0.07 * s + 5)))
            p = c + rng.normal(0, 0.05 * s, 2)
            axes = (int(r * 16), int(r * rng.uniform(0.5, 1.0) * 16))
            cv2.ellipse(cv, (int(p[0] * 16), int(p[1] * 16)), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA, 4)
    a = d.rough(d.coverage(cv), rng, rng.uniform(1, 4), rng.uniform(0.8, 3))
    a = np.maximum(a, 0.35 * d.blur(a, 0.01 * s + 2))
    d.shade(image, a, rng.uniform(0.3, 0.6), tint=(0.95, 1.0, 1.1))
    return image, d.touched(a)


@d.family
def patch_edges(image, rng, density=1.0):
    """Repair patches and trench reinstatements: a straight-edged region of another tone and grain,
    outlined by a sealed (dark bitumen band) or a sawn joint."""
    s, h, w = d.short_side(image), *image.shape[:2]
    touched = np.zeros((h, w), bool)
    for _ in range(d.count(rng, 1.0, density)):
        cv = d.canvas(image)
        if rng.random() < 0.7:
            sx, sy = s * rng.uniform(0.2, 0.8, 2)
        else:  # a trench: long and narrow
            sx, sy = s * rng.uniform(1, 2), s * rng.uniform(0.08, 0.2)
        ang, c = rng.uniform(0, np.pi), np.array([rng.uniform(0, w), rng.uniform(0, h)])
        rot = np.array([[np.cos(ang), np.sin(ang)], [-np.sin(ang), np.cos(ang)]])
        d.fill(cv, np.array([(-sx, -sy), (sx, -sy), (sx, sy), (-sx, sy)]) / 2 @ rot + c)
        inside = d.rough(d.coverage(cv), rng, 0.8, 0.6)
        factor = 1 + inside * (rng.uniform(-0.25, 0.2) + 0.06 * d.noise(inside.shape, rng, rng.uniform(2, 6)))
        d.tone(image, factor)
        bw = rng.uniform(6, 22) if rng.random() < 0.6 else rng.uniform(2, 4)
        edge = cv2.morphologyEx(cv, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(bw) | 1,) * 2))
        band = d.rough(d.coverage(edge), rng, min(3.0, bw / 3), 0.8)
        band *= np.clip(0.8 + 0.4 * d.noise(band.shape, rng, 0.05 * s), 0.3, 1)  # uneven sealant
        d.shade(image, band, rng.uniform(0.35, 0.65))
        touched |= d.touched(inside) | d.touched(band)
    return image, touched


@d.family
def kerbs(image, rng, density=1.0):
    """A kerb along a straight line: lighter stones with joints, a dark gutter line and a shaded face."""
    s, h, w = d.short_side(image), *image.shape[:2]
    touched = np.zeros((h, w), bool)
    for _ in range(d.count(rng, 0.6, density)):
        p0, p1, n = d.line_across(image, rng)
        kw, face = rng.uniform(0.08, 0.2) * s, rng.uniform(0.0, 0.04) * s
        u = (p1 - p0) / np.hypot(*(p1 - p0))
        stone, face_cv, lines = d.canvas(image), d.canvas(image), d.canvas(image)
        d.stripe(stone, p0 + n * (face + kw / 2), p1 + n * (face + kw / 2), kw)
        if face > 1:
            d.stripe(face_cv, p0 + n * face / 2, p1 + n * face / 2, face)
        d.stripe(lines, p0, p1, rng.uniform(3, 8))
        step, reach = rng.uniform(0.25, 0.6) * s, np.hypot(h, w)
        for t in np.arange(rng.uniform(0, step), 2 * reach, step):
            q = p0 + u * t + n * face
            d.stripe(lines, q, q + n * kw, rng.uniform(2, 5))
        a = d.rough(d.coverage(stone), rng, 0.8, 0.6)
        d.tone(image, 1 + a * (rng.uniform(0.08, 0.35) + 0.05 * d.noise(a.shape, rng, 3)))
        f = d.blur(d.coverage(face_cv), 1.0)
        d.shade(image, f, rng.uniform(0.2, 0.5))
        g = d.rough(d.coverage(lines), rng, 1.0, 0.7)
        d.shade(image, g, rng.uniform(0.4, 0.7))
        touched |= d.touched(a) | d.touched(f) | d.touched(g)
    return image, touched


@d.family
def manholes(image, rng, density=1.0):
    """Round or square iron covers: a dark patterned lid, a frame, the gap between, a repair collar."""
    s, h, w = d.short_side(image), *image.shape[:2]
    touched = np.zeros((h, w), bool)
    for _ in range(d.count(rng, 0.7, density)):
        r, c = rng.uniform(0.06, 0.18) * s, (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        square = rng.random() < 0.4

        def disc(radius):
            cv = d.canvas(image)
            if square:
                r_ = int(radius)
                cv2.rectangle(cv, (c[0] - r_, c[1] - r_), (c[0] + r_, c[1] + r_), 255, -1)
            else:
                cv2.circle(cv, c, int(radius), 255, -1, cv2.LINE_AA)
            return d.coverage(cv)

        collar, frame, lid = disc(r * rng.uniform(1.2, 1.5)), disc(r), disc(r * rng.uniform(0.86, 0.93))
        collar = d.rough(collar, rng, 2.0, 1.0)
        d.tone(image, 1 + collar * rng.uniform(-0.2, 0.15))
        metal = rng.uniform(70, 120)
        frame = d.blur(frame, 0.7)
        d.cover(image, frame, (metal * 1.1, metal * 1.08, metal * 1.05), texture=0.15)
        yy, xx = np.ogrid[:h, :w]
        if rng.random() < 0.5:  # concentric ribs
            pattern = np.sin(np.hypot(xx - c[0], yy - c[1]) * (2 * np.pi / rng.uniform(8, 16))) > 0.3
        else:  # chequer of raised squares
            p = rng.uniform(6, 14)
            pattern = ((xx - c[0]) // p + (yy - c[1]) // p) % 2 == 0
        lid_top = np.where(pattern, metal * 1.15, metal * 0.8).astype(np.float32)[..., None]
        d.cover(image, d.blur(lid, 0.7), lid_top, texture=0.1)
        gap = d.blur(np.clip(disc(r * 0.95) - lid, 0, 1), 0.6)  # the dark slot between lid and frame
        d.shade(image, gap, 0.7)
        touched |= d.touched(collar) | d.touched(frame)
    return image, touched
