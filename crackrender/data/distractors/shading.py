"""Light and stain distractors: hard shadow edges, thin shadows, stains and water marks.
Same contract as :mod:`~crackrender.data.distractors.markings`.

Shadows are skylight-lit, so they are slightly blue: red drops more than blue.
"""
from __future__ import annotations

import cv2
import numpy as np

from crackrender.data.crack_geometry import rotate, walk
from crackrender.data.distractors import draw as d

_SKY = (1.0, 0.96, 0.86)  # per-channel share of the shadow depth (R, G, B)


@d.family
def shadow_edges(image, rng, density=1.0):
    """Large shadows with straight edges, hard or soft: a parapet or building (a half plane),
    a pole (a long band), a vehicle (a big quadrilateral)."""
    s, h, w = d.short_side(image), *image.shape[:2]
    cv = d.canvas(image)
    for _ in range(d.count(rng, 1.0, density)):
        kind = rng.choice(["parapet", "pole", "vehicle"])
        p0, p1, n = d.line_across(image, rng)
        if kind == "parapet":
            d.fill(cv, [p0, p1, p1 + n * 3 * s, p0 + n * 3 * s])
        elif kind == "pole":
            end = p0 + (p1 - p0) * rng.uniform(0.4, 1.0)
            d.stripe(cv, p0, end, rng.uniform(0.02, 0.08) * s)
        else:
            # A vehicle's shadow: a long box with rounded corners and a gap under the body.
            c = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            half = np.array([rng.uniform(0.4, 0.8), rng.uniform(0.15, 0.3)]) * s
            t = np.linspace(0, 2 * np.pi, 72, endpoint=False)[:, None]
            box = np.sign(np.c_[np.cos(t), np.sin(t)]) * np.abs(np.c_[np.cos(t), np.sin(t)]) ** 0.25 * half
            d.fill(cv, rotate(box, rng.uniform(0, np.pi)) + c)
    a = d.blur(d.coverage(cv), np.exp(rng.uniform(np.log(0.5), np.log(8))))  # penumbra: crisp to soft
    d.shade(image, a, rng.uniform(0.3, 0.6), tint=_SKY)
    return image, d.touched(a)


def _branch(cv, start, heading, length, width, depth, rng) -> None:
    """A tapering, wandering branch shadow with side branches (recursive, a few levels)."""
    pts, _ = walk(length, rng.uniform(0.15, 0.35), width, rng)
    pts = rotate(pts, heading) + start
    seg = max(1, len(pts) // 8)
    for i in range(0, len(pts) - 1, seg):
        d.polyline(cv, pts[i:i + seg + 1], max(1.0, width * (1 - 0.6 * i / len(pts))))
    if depth == 0 and rng.random() < 0.6:  # leaf clumps at the twig ends
        for q in pts[-1] + rng.normal(0, 2 * width + 6, (int(rng.integers(3, 9)), 2)):
            ax = rng.uniform(3, 3 * width + 6, 2)
            cv2.ellipse(cv, tuple(int(v) for v in q), tuple(int(v) for v in ax), rng.uniform(0, 180), 0, 360, 255, -1,
                        cv2.LINE_AA)
    if depth > 0:
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(len(pts) // 4, len(pts)))
            _branch(cv, pts[i], heading + rng.choice([-1, 1]) * rng.uniform(0.3, 1.0), length * rng.uniform(0.3, 0.6),
                    width * rng.uniform(0.4, 0.7), depth - 1, rng)


@d.family
def thin_shadows(image, rng, density=1.0):
    """Shadows of cables (sagging curves), railings (a rail with regular posts) and tree branches:
    thin, dark, soft-edged lines, the most crack-like of all."""
    s, h, w = d.short_side(image), *image.shape[:2]
    cv = d.canvas(image)
    for _ in range(d.count(rng, 1.5, density)):
        kind = rng.choice(["cable", "railing", "branches"])
        p0, p1, n = d.line_across(image, rng)
        if kind == "cable":
            t = np.linspace(0, 1, 64)[:, None]
            d.polyline(cv, p0 + (p1 - p0) * t + n * rng.uniform(-0.3, 0.3) * s * 4 * t * (1 - t), rng.uniform(2, 8))
        elif kind == "railing":
            rail, post, u = rng.uniform(3, 12), rng.uniform(0.1, 0.3) * s, (p1 - p0) / np.hypot(*(p1 - p0))
            d.stripe(cv, p0, p1, rail)
            step = rng.uniform(0.04, 0.15) * s
            for t in np.arange(rng.uniform(0, step), np.hypot(*(p1 - p0)), step):
                q = p0 + u * t
                d.stripe(cv, q, q + n * post, rng.uniform(2, 7))
            if rng.random() < 0.5:
                d.stripe(cv, p0 + n * post, p1 + n * post, rail * 0.7)
        else:
            start = np.array([rng.choice([0, w]), rng.uniform(0, h)]) if rng.random() < 0.5 else \
                np.array([rng.uniform(0, w), rng.choice([0, h])])
            heading = np.arctan2(h / 2 - start[1], w / 2 - start[0]) + rng.normal(0, 0.4)
            _branch(cv, start, heading, rng.uniform(0.4, 0.9) * s, rng.uniform(6, 18), 3, rng)
    a = d.blur(d.coverage(cv), rng.uniform(1.2, 3.5))  # a shadow's penumbra: never as crisp as a crack
    d.shade(image, a, rng.uniform(0.25, 0.5), tint=_SKY)
    return image, d.touched(a)


@d.family
def stains(image, rng, density=1.0):
    """Damp patches with darker tide lines, white efflorescence, rust, and run marks below a line."""
    s, h, w = d.short_side(image), *image.shape[:2]
    touched = np.zeros((h, w), bool)
    yy, xx = np.ogrid[:h, :w]
    for _ in range(d.count(rng, 1.2, density)):
        kind = rng.choice(["damp", "efflorescence", "rust", "runs"])
        c, r = np.array([rng.uniform(0, w), rng.uniform(0, h)]), rng.uniform(0.1, 0.4, 2) * s
        env = 1 - np.hypot((xx - c[0]) / r[0], (yy - c[1]) / r[1]).astype(np.float32)
        if kind == "runs":  # water run marks: vertical streaks hanging from a ledge, fading downwards
            top, length = c[1] - r[1], rng.uniform(0.2, 0.6) * s
            fall = np.clip(1 - (yy - top) / length, 0, 1) * np.clip((yy - top) / 8 + 0.5, 0, 1)
            side = np.exp(-2 * ((xx - c[0]) / r[0]) ** 2)
            streaks = np.clip(0.5 + d.noise((h, w), rng, (s, rng.uniform(6, 20))), 0, 1)
            a = d.blur((fall * side * streaks).astype(np.float32), rng.uniform(2, 5))
        else:
            blob = (env + 0.35 * d.noise((h, w), rng, s * rng.uniform(0.03, 0.1)) > 0.15).astype(np.float32)
            a = d.blur(blob, rng.uniform(2, 10))
        if kind in ("damp", "runs"):
            tide = np.clip(4 * a * (1 - a), 0, 1) * rng.uniform(0, 1)  # darker rim where the water stopped
            d.shade(image, np.clip(a * rng.uniform(0.4, 1.0) + tide, 0, 1), rng.uniform(0.12, 0.3))
        elif kind == "efflorescence":
            d.cover(image, a * rng.uniform(0.25, 0.6), (232, 232, 226), texture=0.5)
        else:  # rust: patchy orange-brown
            a *= np.clip(0.5 + 0.7 * d.noise((h, w), rng, 0.02 * s), 0, 1)
            d.shade(image, a, rng.uniform(0.08, 0.2), tint=(0.5, 0.9, 1.5))
        touched |= d.touched(a)
    return image, touched
