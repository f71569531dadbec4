"""``quantify_mask``: crack instances, branches, lengths, widths and classes from a binary mask."""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage as ndi

from crackrender.errors import InputError
from crackrender.io import binarize_mask
from crackrender.quantify.measure import (BranchGeometry, measure_branch, orientation_deg, pooled_width_stats,
                                          width_stats)
from crackrender.quantify.result import BranchResult, CrackResult, QuantResult
from crackrender.quantify.skeleton import prune_spurs, skeleton_graph
from crackrender.quantify.units import (DEFAULT_WIDTH_BINS_MM, Camera, check_bins, classify_width,
                                        orientation_class, resolve_gsd)

_PROFILE_SAMPLES = 200
# A mask is measured whole: its distance transform (float64), labels (int32), skeleton and the
# float mask the widths are sampled on. Peak memory measured 25.5 bytes per pixel above the mask
# itself from 4 to 128 Mpx at 4-5% crack pixels (benchmarks/quantify_memory.py; docs/quantify.md,
# "Size limit"); with the mask and its decoding, rounded up:
QUANTIFY_BYTES_PER_PIXEL = 30
# Larger masks are refused, not swapped to death: 400 Mpx needs about 12 GB (a 20000 x 20000
# orthomosaic). Cut a larger mask into parts and measure those.
MAX_QUANTIFY_PIXELS = 400_000_000


def check_quantify_size(height: int, width: int, name: str = "mask") -> None:
    """InputError if a ``height`` x ``width`` mask exceeds :data:`MAX_QUANTIFY_PIXELS`, saying why.

    Examples:
        >>> check_quantify_size(20000, 20000)
        >>> check_quantify_size(40000, 30000, "ortho.tif")
        Traceback (most recent call last):
        ...
        crackrender.errors.InputError: ortho.tif: 30000x40000 is 1200 Mpx; quantify measures a mask whole, about 30 bytes per pixel (34 GiB here), and stops at 400 Mpx: cut the mask into parts (e.g. gdal_retile.py) and quantify those
    """
    if height * width > MAX_QUANTIFY_PIXELS:
        raise InputError(
            f"{name}: {width}x{height} is {height * width / 1e6:.0f} Mpx; quantify measures a mask whole, about "
            f"{QUANTIFY_BYTES_PER_PIXEL} bytes per pixel ({height * width * QUANTIFY_BYTES_PER_PIXEL / 2**30:.0f} GiB "
            f"here), and stops at {MAX_QUANTIFY_PIXELS / 1e6:.0f} Mpx: cut the mask into parts (e.g. gdal_retile.py) "
            "and quantify those")


def _check_mask(mask) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"mask must be a non-empty 2-D array, got shape {arr.shape}")
    check_quantify_size(*arr.shape)
    return binarize_mask(arr, "mask")


def _distance(m: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance to the nearest background pixel (OpenCV: 20x faster than scipy).

    Beyond the image border nothing is known, so a crack that leaves the image keeps its width
    there; only a mask with no background at all is given one (a zero border) to measure against.
    """
    u8 = m.astype(np.uint8)
    if m.all():
        return cv2.distanceTransform(np.pad(u8, 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1].astype(np.float64)
    return cv2.distanceTransform(u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)


def _weights(arc: np.ndarray) -> np.ndarray:
    return np.gradient(arc) if len(arc) > 1 else np.ones(len(arc))


def _branch_result(geo: BranchGeometry, crack_id: int, closed: bool, axis: float) -> BranchResult:
    mx, mean, p90 = width_stats(geo.widths, _weights(geo.arc))
    poly = cv2.approxPolyDP(geo.xy.astype(np.float32)[:, None, :], 0.25, closed)[:, 0, :]
    if len(poly) < 2:
        poly = geo.xy[[0, -1]]
    step = max(1, math.ceil(len(geo.widths) / _PROFILE_SAMPLES))
    profile = [(round(float(a), 2), round(float(w), 2)) for a, w in zip(geo.arc[::step], geo.widths[::step])]
    return BranchResult(
        id=0, crack_id=crack_id, length_px=geo.length, max_width_px=mx, mean_width_px=mean, p90_width_px=p90,
        orientation_deg=geo.orientation_deg, orientation_class=orientation_class(geo.orientation_deg, axis),
        free_ends=geo.free_ends, polyline=[(round(float(x), 2), round(float(y), 2)) for x, y in poly],
        width_profile=profile)


def quantify_mask(mask, *, gsd: float | None = None, camera: Camera | None = None, member_axis_deg: float = 0.0,
                  width_bins_mm=DEFAULT_WIDTH_BINS_MM, min_length_px: float = 10.0,
                  spur_factor: float = 2.0, georef: dict | None = None) -> QuantResult:
    """Measure every crack in a binary mask.

    Each 8-connected component is a crack; its skeleton is split at junctions into branches.
    Lengths follow the smoothed skeleton plus the end caps; widths are edge-to-edge distances
    along the local normal (see :mod:`crackrender.quantify.measure`). Components shorter than
    ``min_length_px`` are left out (counted in ``dropped_short``): they are specks, not cracks.

    Args:
        mask: (H, W) bool, or 0/1 / 0/255 integers.
        gsd: millimetres per pixel; or ``camera`` to compute it. ``None`` reports pixels.
        member_axis_deg: direction of the structural member's axis, degrees counter-clockwise
            from the image x axis; orientation classes are relative to it.
        width_bins_mm: width-class thresholds in mm (used only with a GSD).
        min_length_px: shortest crack kept, in pixels.
        spur_factor: end branches shorter than this times the half-width at their junction (or
            than ``min_length_px``) are skeleton spurs, not branches.
        georef: where the mask lies (``Georef.to_dict()`` of :mod:`crackrender.geotiff`: CRS and
            transform); the GeoJSON report is then in that CRS. Measurements stay in px and mm.

    Masks above :data:`MAX_QUANTIFY_PIXELS` are refused (:func:`check_quantify_size`).

    Examples:
        >>> m = np.zeros((60, 200), bool); m[28:34, 20:180] = True  # 160 x 6 px
        >>> r = quantify_mask(m, gsd=0.05)
        >>> c = r.cracks[0]
        >>> round(c.length_px), round(c.max_width_px, 1), c.width_class, c.orientation_class
        (160, 6.0, '>=0.3', 'longitudinal')
    """
    m = _check_mask(mask)
    g = resolve_gsd(gsd, camera)
    bins = check_bins(width_bins_mm)
    try:
        axis = float(member_axis_deg)
    except (TypeError, ValueError):
        raise InputError(f"member axis must be an angle in degrees, got {member_axis_deg!r}") from None
    if not math.isfinite(axis):
        raise InputError(f"member axis must be a finite angle in degrees, got {member_axis_deg!r}")
    if not (isinstance(min_length_px, (int, float)) and min_length_px >= 0):
        raise InputError(f"minimum crack length must be >= 0 px, got {min_length_px!r}")
    result = QuantResult(height=m.shape[0], width=m.shape[1], gsd_mm=g, member_axis_deg=axis,
                         width_bins_mm=bins, min_length_px=float(min_length_px), mask=m, georef=georef)
    if not m.any():
        return result

    dist = _distance(m)
    labels, n = ndi.label(m, structure=np.ones((3, 3)))
    _, graph = skeleton_graph(m)
    graph = prune_spurs(graph, dist, spur_factor, min_length_px)
    deg = graph.degree()
    maskf = m.astype(np.float32)

    def node_dt(k: int) -> float:
        r, c = np.clip(np.round(graph.nodes[k]).astype(int), 0, np.array(m.shape) - 1)
        return float(dist[r, c])

    per_crack: dict[int, list[tuple[BranchGeometry, bool]]] = {}
    for b in graph.branches:
        ij = np.clip(np.round(b.path).astype(int), 0, np.array(m.shape) - 1)
        comp = int(labels[ij[:, 0], ij[:, 1]].max())
        free = (not b.closed and deg[b.start] == 1, not b.closed and deg[b.end] == 1)
        if b.start == b.end and len(b.path) == 1:
            free = (True, True)
        jdt = tuple(node_dt(k) if not b.closed and deg[k] >= 3 else 0.0 for k in (b.start, b.end))
        per_crack.setdefault(comp, []).append((measure_branch(b.path, b.closed, free, maskf, dist, jdt), b.closed))

    objects = ndi.find_objects(labels)
    cracks = []
    for comp, geos in per_crack.items():
        length = sum(geo.length for geo, _ in geos)
        if length < min_length_px:
            result.dropped_short += 1
            continue
        branches = sorted((_branch_result(geo, 0, closed, axis) for geo, closed in geos), key=lambda b: -b.length_px)
        mx, mean, p90 = pooled_width_stats([geo.widths for geo, _ in geos], [_weights(geo.arc) for geo, _ in geos])
        ang = orientation_deg(np.vstack([geo.xy for geo, _ in geos]))
        wclass, below = classify_width(mx, g, bins)
        sl = objects[comp - 1]
        cracks.append(CrackResult(
            id=0, length_px=length, max_width_px=mx, mean_width_px=mean, p90_width_px=p90,
            area_px=int((labels[sl] == comp).sum()),
            bbox=(sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1),
            orientation_deg=ang, orientation_class=orientation_class(ang, axis),
            width_class=wclass, below_resolution=below, branches=branches))
    result.dropped_short += n - len(per_crack)  # components without skeleton (should not happen)
    cracks.sort(key=lambda c: (-c.length_px, c.bbox))
    next_branch = 1
    for i, c in enumerate(cracks, 1):
        c.id = i
        for b in c.branches:
            b.id, b.crack_id, next_branch = next_branch, i, next_branch + 1
    result.cracks = cracks
    return result
