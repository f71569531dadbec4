"""Structural distractors: sawn/sealed joints and grids, expansion joints, formwork marks,
masonry and tile joints, scratches. Same contract as :mod:`~crackrender.data.distractors.markings`.

These are the straight, regular, thin dark lines a crack model most easily mistakes for cracks.
"""
from __future__ import annotations

import cv2
import numpy as np

from crackrender.data.distractors import draw as d


def _axis_angle(rng: np.random.Generator) -> float:
    """Built things are mostly photographed square to their lines; sometimes at any angle."""
    if rng.random() < 0.6:
        return float(rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.015))
    return float(rng.uniform(0, np.pi))


def _grid_offsets(image, spacing: float, rng) -> np.ndarray:
    """Signed offsets from the image centre of regularly spaced lines covering the image."""
    reach = np.hypot(*image.shape[:2]) / 2
    ks = np.arange(-int(reach / spacing) - 1, int(reach / spacing) + 2)
    return (ks + rng.uniform(0, 1)) * spacing + rng.normal(0, 0.01 * spacing, len(ks))


@d.family
def sawn_joints(image, rng, density=1.0):
    """Straight sawn grooves 3-12 px wide, often in a regular grid; sealed (dark compound, sometimes
    smeared over the surface) or open (a shadowed groove with a darker bottom)."""
    s, h, w = d.short_side(image), *image.shape[:2]
    groove, core = d.canvas(image), d.canvas(image)
    jw, theta = rng.uniform(3, 12), _axis_angle(rng)
    centre = np.array([w / 2, h / 2])
    for ang in (theta, theta + np.pi / 2) if rng.random() < 0.6 else (theta,):
        spacing = rng.uniform(0.3, 0.8) * s / max(density, 0.1) ** 0.5
        offsets = _grid_offsets(image, spacing, rng) if rng.random() < 0.7 else \
            rng.uniform(-0.5, 0.5, d.count(rng, 1.2, density)) * s
        for off in offsets:
            p0, p1, n = d.line_across(image, rng, ang, through=centre)
            d.stripe(groove, p0 + n * off, p1 + n * off, jw)
            d.stripe(core, p0 + n * off, p1 + n * off, max(1.0, jw * 0.4))
    a = d.rough(d.coverage(groove), rng, rng.uniform(0.3, 1.0), rng.uniform(0.5, 0.8))
    band = np.zeros_like(a)
    if rng.random() < 0.6:  # sealed
        if rng.random() < 0.4:  # sealant overband: a wider, fainter, ragged dark band
            wide = cv2.dilate(groove, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(jw * rng.uniform(1, 3)) | 1,) * 2))
            band = d.rough(d.coverage(wide), rng, 2.5, 1.2)
            d.shade(image, band, rng.uniform(0.15, 0.4))
        grey = rng.uniform(22, 60) * (1 + 0.25 * d.noise(a.shape, rng, rng.uniform(5, 30)))[..., None]
        gaps = d.noise(a.shape, rng, 0.2 * s) > rng.uniform(0.5, 1.0)  # stretches where the sealant is gone
        d.cover(image, a * ~gaps, grey * np.float32([1, 1, 1.05]), texture=0.15)
        d.shade(image, a * gaps, rng.uniform(0.35, 0.6))
    else:
        d.shade(image, a, rng.uniform(0.35, 0.6))
        d.shade(image, d.blur(d.coverage(core), 0.8), rng.uniform(0.2, 0.45))
    return image, d.touched(a) | d.touched(band)


@d.family
def expansion_joints(image, rng, density=1.0):
    """Wide bridge/slab joints across the image: steel edge strips around a dark gap or rubber seal,
    or a smooth bituminous plug band."""
    touched = np.zeros(image.shape[:2], bool)
    theta = _axis_angle(rng)
    for _ in range(d.count(rng, 1.0, density)):
        p0, p1, n = d.line_across(image, rng, theta + rng.normal(0, 0.01))
        if rng.random() < 0.7:
            gap, steel = rng.uniform(6, 30), rng.uniform(3, 10)
            for side in (-1, 1):
                cv = d.canvas(image)
                off = n * side * (gap + steel) / 2
                d.stripe(cv, p0 + off, p1 + off, steel)
                a = d.blur(d.coverage(cv), 0.6)
                m = rng.uniform(120, 200)
                d.cover(image, a, (m, m * 1.01, m * 1.04), texture=0.1)
                touched |= d.touched(a)
            cv = d.canvas(image)
            d.stripe(cv, p0, p1, gap)
            a = d.blur(d.coverage(cv), 0.6)
            g = rng.uniform(15, 55) * (1 + 0.3 * d.noise(a.shape, rng, rng.uniform(3, 12)))[..., None]
            d.cover(image, a, np.repeat(g, 3, axis=2), texture=0.2)  # rubber, grit and debris
        else:
            cv = d.canvas(image)
            d.stripe(cv, p0, p1, rng.uniform(0.04, 0.12) * d.short_side(image))
            a = d.rough(d.coverage(cv), rng, 1.5, 0.8)
            g = rng.uniform(35, 70)
            d.cover(image, a, (g, g, g * 1.05), texture=0.35)
        touched |= d.touched(a)
    return image, touched


def _rotated_coords(image, theta: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    y, x = np.ogrid[:h, :w]
    x, y = np.float32(x), np.float32(y)
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    return x * c + y * s, y * c - x * s


def _lookup(rng, index: np.ndarray, low: float, high: float) -> np.ndarray:
    """A random value per integer cell index (board, brick, tile, panel)."""
    table = rng.uniform(low, high, 4096).astype(np.float32)
    return table[np.mod(index, 4096)]


@d.family
def formwork_marks(image, rng, density=1.0):
    """Board-marked concrete (boards of slightly different tone and grain, thin dark or light seams)
    or panel formwork (a grid of seams with tie holes)."""
    s = d.short_side(image)
    u, v = _rotated_coords(image, _axis_angle(rng))
    touched = np.zeros(image.shape[:2], bool)
    if rng.random() < 0.5:  # boards
        b = rng.uniform(0.05, 0.14) * s / max(density, 0.1) ** 0.5
        board = np.floor(v / b).astype(np.int64)
        grain = d.noise(image.shape[:2], rng, rng.uniform(1.5, 4)) * np.float32(rng.uniform(0.02, 0.06))
        d.tone(image, _lookup(rng, board, 0.93, 1.07) + grain)  # grain runs along boards only after blur
        seam = (np.abs(v - np.round(v / b) * b) < rng.uniform(0.5, 1.6)).astype(np.float32)
        touched[:] = True
    else:  # panels with tie holes
        pw, ph = rng.uniform(0.3, 0.7, 2) * s / max(density, 0.1) ** 0.5
        panel = np.floor(u / pw).astype(np.int64) * 7919 + np.floor(v / ph).astype(np.int64)
        d.tone(image, _lookup(rng, panel, 0.95, 1.05))
        near = lambda t, p: np.abs(t - np.round(t / p) * p)  # noqa: E731
        seam = ((near(u, pw) < 1.0) | (near(v, ph) < 1.0)).astype(np.float32)
        holes = (np.hypot(near(u - pw / 4, pw / 2), near(v - ph / 4, ph / 2)) < rng.uniform(4, 12)).astype(np.float32)
        hole = d.blur(holes, 0.8)
        d.shade(image, hole, rng.uniform(0.35, 0.7))
        touched[:] = True
    a = d.rough(seam, rng, 0.4, 0.6) * np.float32(rng.uniform(0.5, 1.0))
    if rng.random() < 0.6:
        d.shade(image, a, rng.uniform(0.25, 0.5))
    else:  # grout fins left by board gaps catch the light
        d.lighten(image, a, rng.uniform(15, 35))
    return image, touched


@d.family
def mortar_joints(image, rng, density=1.0):
    """Brick or block masonry in running bond, or tiles, over the image or one side of a straight
    line: units of their own colour and tone, mortar or grout joints 2-10 px wide."""
    s, h, w = d.short_side(image), *image.shape[:2]
    u, v = _rotated_coords(image, _axis_angle(rng))
    region = np.ones((h, w), np.float32)
    if rng.random() < 0.4:
        cv = d.canvas(image)
        p0, p1, n = d.line_across(image, rng)
        d.fill(cv, [p0, p1, p1 + n * 4 * s, p0 + n * 4 * s])
        region = d.blur(d.coverage(cv), 0.7)
    if rng.random() < 0.6:  # masonry
        bh = rng.uniform(0.05, 0.12) * s / max(density, 0.1) ** 0.5
        bl, mw = bh * rng.uniform(2.0, 3.3), rng.uniform(3, 10)
        row = np.floor(v / bh).astype(np.int64)
        uu = u + (row % 2) * np.float32(bl / 2)
        unit = row * 7919 + np.floor(uu / bl).astype(np.int64)
        joint = (np.mod(uu, bl) < mw) | (np.mod(v, bh) < mw)
        clay = rng.random() < 0.5  # muted red-brown clay, or grey concrete blocks
        colour = np.array([1.2, 0.88, 0.74]) * (0.75 if clay else 1.0) if clay else np.ones(3)
        spread, grout = 0.08, rng.uniform(0.6, 1.3) / (0.75 if clay else 1.0)
    else:  # tiles
        t = rng.uniform(0.08, 0.25) * s / max(density, 0.1) ** 0.5
        mw = rng.uniform(2, 6)
        unit = np.floor(u / t).astype(np.int64) * 7919 + np.floor(v / t).astype(np.int64)
        joint = (np.mod(u, t) < mw) | (np.mod(v, t) < mw)
        colour = rng.uniform(0.8, 1.2, 3)
        spread, grout = 0.05, rng.uniform(0.5, 1.2)
    level = rng.uniform(120, 190)
    face = level * _lookup(rng, unit, 1 - spread, 1 + spread)[..., None] * colour.astype(np.float32)
    d.cover(image, region, face, texture=0.45)
    a = d.rough(joint.astype(np.float32), rng, 0.7, 0.6) * region
    d.cover(image, a, (level * grout,) * 3, texture=0.3)
    return image, d.touched(region)


@d.family
def scratches(image, rng, density=1.0):
    """Bunches of thin (1-2 px) near-parallel light or dark scratches and scuffs."""
    s, h, w = d.short_side(image), *image.shape[:2]
    light, dark = d.canvas(image), d.canvas(image)
    for _ in range(d.count(rng, 2.0, density)):
        c, theta = np.array([rng.uniform(0, w), rng.uniform(0, h)]), rng.uniform(0, np.pi)
        cv = light if rng.random() < 0.6 else dark
        for _ in range(int(rng.integers(3, 13))):
            ang, length = theta + rng.normal(0, 0.04), rng.uniform(0.05, 0.3) * s
            q = c + rng.normal(0, 0.03 * s, 2)
            dd = np.array([np.cos(ang), np.sin(ang)]) * length / 2
            d.polyline(cv, [q - dd, q + dd], 1 if rng.random() < 0.7 else 2, int(rng.integers(90, 256)))
    a, b = d.coverage(light), d.coverage(dark)
    d.lighten(image, a, rng.uniform(20, 50))
    d.shade(image, b, rng.uniform(0.2, 0.4))
    return image, d.touched(a) | d.touched(b)
