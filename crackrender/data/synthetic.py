"""Procedural crack images with exact ground-truth masks, for tests and demos.

The background is built at reduced resolution (value noise, aggregate speckles,
an illumination gradient, stains) and upscaled once, so even 8192x6144 scenes
take a few seconds and well under 1 GB.  Cracks are rasterised exactly (pixel
centre within half the local width of the centre line) into a label image; the
mask is ``label > 0`` and only those pixels are darkened, so ``mask`` is the
precise set of changed pixels and ground-truth widths match the mask.

Distractors (:mod:`crackrender.data.distractors`: paint, joints, shadows, stains...) are drawn
into the surface before the cracks, from a random stream of their own, so a scene with
distractors has exactly the cracks and crack mask of the same seed without them; they are
background in the mask and kept as ``distractor_mask``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import cv2
import numpy as np

from crackrender.data.crack_geometry import draw_crack
from crackrender.data.distractors import FAMILIES, apply_distractors, choose_families, parse_families
from crackrender.io import atomic_write_bytes, atomic_write_json

__all__ = ["CrackSpec", "SyntheticSample", "render_crack_scene", "crack_free_scene", "write_synthetic_dataset",
           "write_false_alarm_set"]

# surface -> (base grey, low-frequency amplitude, grain std, aggregate contrast, RGB tint)
_SURFACES = {
    "concrete": (165.0, 14.0, 5.0, 22.0, (1.02, 1.0, 0.96)),
    "asphalt": (105.0, 8.0, 7.0, 38.0, (0.97, 0.99, 1.03)),
}
_MIN_SIZE, _MAX_SIZE = 16, 16384
_MIN_W, _MAX_W = 0.5, 64.0
# Darkening depth at the crack edge and the extra depth at the centre line (soft shading inside the mask only).
_EDGE_DEPTH, _CORE_DEPTH = 0.40, 0.28
_DEFAULT_SPLITS = MappingProxyType({"train": 0.8, "val": 0.2})
FALSE_ALARM_SET_VERSION = 2  # bump whenever the false-alarm scenes change, so cached sets are rewritten


def _check_width(w: float) -> None:
    if not (_MIN_W <= float(w) <= _MAX_W):
        raise ValueError(f"crack width must be in [{_MIN_W}, {_MAX_W}] px, got {w}")


@dataclass(frozen=True)
class CrackSpec:
    """One crack; all lengths in pixels (``width`` is the maximum width)."""

    width: float
    length: float
    curvature: float = 0.3
    branches: int = 0
    taper: bool = True

    def __post_init__(self) -> None:
        _check_width(self.width)
        if not self.length > 0 or self.curvature < 0 or self.branches < 0:
            raise ValueError(f"invalid CrackSpec: need length > 0, curvature >= 0, branches >= 0, got {self}")


@dataclass
class SyntheticSample:
    """A rendered scene: RGB uint8 ``image``, bool crack ``mask``, ground-truth crack geometry and
    the bool ``distractor_mask`` of the (non-crack) pixels that distractors changed."""

    image: np.ndarray
    mask: np.ndarray
    cracks: list[dict]
    distractor_mask: np.ndarray | None = None
    distractors: tuple[str, ...] = ()


def _background(w: int, h: int, surface: str, rng: np.random.Generator) -> np.ndarray:
    """Grey uint8 background; everything is synthesised at <= half resolution (speed/memory)."""
    base, amp, grain, agg, _ = _SURFACES[surface]
    lw, lh = max(8, w // 16), max(8, h // 16)
    low = np.zeros((lh, lw), np.float32)
    for octave in range(5):  # multi-octave value noise, coarse to fine
        cells = 2 ** (octave + 1)
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32) - 0.5
        low += cv2.resize(grid, (lw, lh), interpolation=cv2.INTER_CUBIC) * (amp * 0.6 ** octave)
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)  # gentle illumination gradient
    low += (np.cos(ang) * (xx / lw - 0.5) + np.sin(ang) * (yy / lh - 0.5)) * rng.uniform(8, 25)
    for _ in range(rng.integers(0, 3)):  # optional damp stains: soft dark ellipses
        cx, cy = rng.uniform(0, lw), rng.uniform(0, lh)
        sx, sy = rng.uniform(0.05, 0.25, 2) * max(lw, lh)
        low -= rng.uniform(6, 16) * np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))
    hw, hh = max(8, w // 2), max(8, h // 2)
    mid = cv2.resize(low, (hw, hh), interpolation=cv2.INTER_LINEAR)
    mid += rng.standard_normal((hh, hw), dtype=np.float32) * grain + base
    # Aggregate speckles at quarter resolution -> blobs a few px wide after upscaling.
    u = rng.random((max(4, hh // 2), max(4, hw // 2)), dtype=np.float32)
    spots = np.where(u > 0.975, agg, 0.0).astype(np.float32) - np.where(u < 0.012, 0.8 * agg, 0.0).astype(np.float32)
    mid += cv2.resize(spots, (hw, hh), interpolation=cv2.INTER_CUBIC)
    mid8 = np.clip(mid + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(mid8, (w, h), interpolation=cv2.INTER_LINEAR)


def render_crack_scene(width: int, height: int, cracks: Sequence[CrackSpec] | None = None, *, seed: int = 0,
                       surface: str = "concrete", n_cracks: int | None = None,
                       width_range: tuple[float, float] = (1.0, 8.0), distractors: str | Sequence[str] | None = None,
                       distractor_density: float = 1.0) -> SyntheticSample:
    """Render a concrete/asphalt scene with cracks; identical output for identical arguments.

    ``cracks=None`` draws ``n_cracks`` random specs (default 1-3, more for larger images)
    with widths from ``width_range`` and lengths of 30-90% of the image diagonal.
    Crack polylines are in (x, y) pixel coordinates and may extend past the border.
    ``distractors`` ("all", "a,b" or names) are all drawn, in layer order (paint under joints,
    shadows over all), at ``distractor_density``; cracks are drawn over them and stay cracks.

    Examples:
        >>> s = render_crack_scene(256, 192, [CrackSpec(width=4, length=150)], seed=1)
        >>> s.image.shape, s.mask.shape, bool(s.mask.any())
        ((192, 256, 3), (192, 256), True)
    """
    if surface not in _SURFACES:
        raise ValueError(f"unknown surface {surface!r}; expected one of {sorted(_SURFACES)}")
    if not (_MIN_SIZE <= int(width) <= _MAX_SIZE and _MIN_SIZE <= int(height) <= _MAX_SIZE):
        raise ValueError(f"image size must be in [{_MIN_SIZE}, {_MAX_SIZE}] px per side, got {width}x{height}")
    w, h = int(width), int(height)
    families = parse_families(distractors)
    rng = np.random.default_rng(seed)
    grey = _background(w, h, surface, rng)
    if cracks is None:
        lo, hi = map(float, width_range)
        _check_width(lo)
        _check_width(hi)
        if lo > hi:
            raise ValueError(f"width_range must be (low, high) with low <= high, got {width_range}")
        diag = float(np.hypot(w, h))
        if n_cracks is None:
            n_cracks = int(rng.integers(1, 2 + (diag >= 512) + (diag >= 2048)))
        if n_cracks < 0:
            raise ValueError(f"n_cracks must be >= 0, got {n_cracks}")
        cracks = [CrackSpec(width=float(rng.uniform(lo, hi)), length=float(rng.uniform(0.3, 0.9) * diag),
                            curvature=float(rng.uniform(0.1, 0.6)), branches=int(rng.integers(0, 3)))
                  for _ in range(n_cracks)]
    label = np.zeros((h, w), np.uint8)
    touched: list[np.ndarray] = []
    geometry = [draw_crack(spec, w, h, label, touched, rng) for spec in cracks]
    if touched:
        # Darken exactly the mask: depth grows towards the centre line, per-scene strength, per-pixel jitter.
        idx = np.unique(np.concatenate(touched))
        flat_grey, flat_label = grey.reshape(-1), label.reshape(-1)
        depth = _EDGE_DEPTH + _CORE_DEPTH / 254 * (flat_label[idx] - 1.0)
        depth *= rng.uniform(0.85, 1.05) * rng.uniform(0.9, 1.0, len(idx))
        factor = 1 - np.minimum(depth, 0.8)
        if not families:  # exactly the pre-distractor arithmetic: darken the grey, then tint
            flat_grey[idx] = np.clip(flat_grey[idx] * factor, 0, 255).astype(np.uint8)
    tint = _SURFACES[surface][4]
    lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * np.float32(tint), 0, 255).astype(np.uint8)
    image = cv2.merge([cv2.LUT(grey, np.ascontiguousarray(lut[:, c])) for c in range(3)])  # per-channel tint
    mask = label > 0
    if not families:
        return SyntheticSample(image=image, mask=mask, cracks=geometry, distractor_mask=np.zeros_like(mask))
    # Distractors first, from their own stream (the cracks stay those of this seed), then the cracks on top.
    drng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    colour, dmask = apply_distractors(image.astype(np.float32), drng, families, distractor_density)
    if touched:
        flat = colour.reshape(-1, 3)
        flat[idx] *= factor[:, None].astype(np.float32)
    image = (colour + 0.5).astype(np.uint8)
    return SyntheticSample(image=image, mask=mask, cracks=geometry, distractor_mask=dmask & ~mask, distractors=families)


def crack_free_scene(width: int, height: int, *, seed: int = 0, surface: str = "concrete") -> SyntheticSample:
    """A background-only scene with an empty mask.

    Examples:
        >>> bool(crack_free_scene(64, 64, seed=3).mask.any())
        False
    """
    return render_crack_scene(width, height, [], seed=seed, surface=surface)


def _write_scene(root: Path, stem: str, s: SyntheticSample, distractors: bool) -> None:
    """``images/<stem>.jpg``, ``masks/<stem>.png`` (0/255) and, with distractors, ``distractors/<stem>.png``."""
    files = {root / "images" / f"{stem}.jpg": s.image[:, :, ::-1], root / "masks" / f"{stem}.png": s.mask}
    if distractors:
        files[root / "distractors" / f"{stem}.png"] = s.distractor_mask
    for path, arr in files.items():
        arr = arr.astype(np.uint8) * 255 if arr.dtype == bool else arr  # cv2 wants BGR (reversed above)
        ok, buf = cv2.imencode(path.suffix, arr, [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else [])
        if not ok:
            raise RuntimeError(f"failed to encode sample {stem}")
        atomic_write_bytes(path, buf.tobytes())


def write_synthetic_dataset(root: str | os.PathLike, n: int, *, size: tuple[int, int] = (256, 256), seed: int = 0,
                            splits: Mapping[str, float] = _DEFAULT_SPLITS,
                            distractors: str | Sequence[str] | None = None, negatives: float = 0.0,
                            distractor_density: float = 1.0, **scene_kwargs) -> Path:
    """Write ``n`` scenes as ``images/<stem>.jpg``, ``masks/<stem>.png`` (0/255) and ``<split>.txt``.

    ``size`` is (width, height); ``scene_kwargs`` go to :func:`render_crack_scene`.
    Stems are ``syn_00000``...; splits are a random partition with the given fractions.
    ``distractors`` ("all", "none" or names): each scene draws one to three of those families and
    the set gains ``distractors/<stem>.png``; ``negatives``: the share of scenes without cracks
    (hard negatives when distractors are on). Without either, the output is as it always was.

    Examples:
        >>> import tempfile
        >>> root = write_synthetic_dataset(tempfile.mkdtemp(), 5, size=(64, 64))
        >>> sorted(p.name for p in root.glob("*.txt"))
        ['train.txt', 'val.txt']
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not splits or any(f <= 0 for f in splits.values()):
        raise ValueError(f"splits must map split names to positive fractions, got {dict(splits)}")
    if not 0.0 <= negatives <= 1.0:
        raise ValueError(f"negatives must be a share in [0, 1], got {negatives}")
    allowed = parse_families(distractors)
    root = Path(root)
    for folder in ("images", "masks") + (("distractors",) if allowed else ()):
        (root / folder).mkdir(parents=True, exist_ok=True)
    stems = [f"syn_{i:05d}" for i in range(n)]
    crack_free = set(np.random.default_rng([seed, 3]).permutation(n)[:round(negatives * n)].tolist())
    for i, stem in enumerate(stems):
        sub_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        kwargs = {**scene_kwargs, "cracks": []} if i in crack_free else scene_kwargs
        families = choose_families(np.random.default_rng([seed, i, 2]), allowed)
        s = render_crack_scene(size[0], size[1], seed=sub_seed, distractors=families,
                               distractor_density=distractor_density, **kwargs)
        _write_scene(root, stem, s, bool(allowed))
    # Cumulative rounding so the splits are disjoint and cover every stem.
    frac = np.array(list(splits.values()), float)
    bounds = np.round(np.cumsum(frac) / frac.sum() * n).astype(int)
    order = np.random.default_rng(seed).permutation(n)
    start = 0
    for name, end in zip(splits, bounds):
        chosen = sorted(stems[j] for j in order[start:end])
        atomic_write_bytes(root / f"{name}.txt", "".join(f"{s}\n" for s in chosen).encode())
        start = end
    return root


def write_false_alarm_set(root: str | os.PathLike, n: int = 60, *, size: tuple[int, int] = (1920, 1080),
                          seed: int = 0) -> Path:
    """The false-alarm benchmark: ``n`` scenes full of distractors, every other one with cracks.

    Writes ``images/``, ``masks/`` (crack), ``distractors/`` (distractor pixels, 0/255) and
    ``test.txt`` (every stem), then ``falsealarm.json`` (the parameters and each scene's families)
    last, marking a complete set. Surfaces alternate in pairs, so both surfaces appear with and
    without cracks; every block of five scenes shares out all fifteen families, three to a scene.

    Examples:
        >>> import tempfile
        >>> root = write_false_alarm_set(tempfile.mkdtemp(), 2, size=(96, 64))
        >>> (root / "test.txt").read_text().split()
        ['fa_00000', 'fa_00001']
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    root, names = Path(root), list(FAMILIES)
    per = len(names) // 5
    stems = [f"fa_{i:05d}" for i in range(n)]
    scenes = {}
    for i, stem in enumerate(stems):
        block = np.random.default_rng([seed, i // 5, 4]).permutation(names)
        families = tuple(str(f) for f in block[(i % 5) * per:(i % 5 + 1) * per])
        sub_seed = int(np.random.SeedSequence([seed, i, 5]).generate_state(1)[0])
        s = render_crack_scene(size[0], size[1], None if i % 2 == 0 else [], seed=sub_seed,
                               surface=("concrete", "asphalt")[(i // 2) % 2], distractors=families)
        _write_scene(root, stem, s, True)
        scenes[stem] = {"surface": ("concrete", "asphalt")[(i // 2) % 2], "cracks": bool(s.mask.any()),
                        "families": list(families)}
    atomic_write_bytes(root / "test.txt", "".join(f"{s}\n" for s in stems).encode())
    params = {"n": n, "size": list(size), "seed": seed, "version": FALSE_ALARM_SET_VERSION, "scenes": scenes}
    atomic_write_json(root / "falsealarm.json", params)
    return root
