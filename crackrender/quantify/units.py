"""Ground sampling distance, width classes and orientation classes.

Width classes need a physical unit: thresholds such as ACI 224R's 0.10-0.41 mm or Eurocode 2's
0.2-0.4 mm mean nothing in pixels, so without a GSD every width class is ``None`` ("n/a").

A width is only known to about one pixel (one GSD). A crack whose widest part is narrower than
``MIN_RESOLVABLE_PX`` pixels is flagged ``below_resolution``: its width is reported as an upper
bound (``< 2 px``, ``< 2 * gsd`` mm), and it gets a width class only where that bound lies inside
the lowest class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from crackrender.errors import InputError

MIN_RESOLVABLE_PX = 2.0
DEFAULT_WIDTH_BINS_MM = (0.1, 0.2, 0.3)
# Orientation classes: within this many degrees of the member axis is longitudinal, within it of
# the perpendicular is transverse, anything between is diagonal.
ORIENTATION_TOLERANCE_DEG = 30.0


def _positive(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
    return v


@dataclass(frozen=True)
class Camera:
    """Pinhole camera facing the surface: focal length (mm), pixel pitch (um), distance (mm)."""

    focal_mm: float
    pixel_um: float
    distance_mm: float

    def gsd_mm(self) -> float:
        """Millimetres of surface per pixel: pitch * distance / focal.

        Examples:
            >>> Camera(focal_mm=50, pixel_um=4.0, distance_mm=2000).gsd_mm()
            0.16
        """
        f = _positive("focal length (mm)", self.focal_mm)
        p = _positive("pixel pitch (um)", self.pixel_um)
        d = _positive("distance to the surface (mm)", self.distance_mm)
        return round(p * 1e-3 * d / f, 12)


def resolve_gsd(gsd: float | None = None, camera: Camera | None = None) -> float | None:
    """The GSD in mm per pixel from either ``gsd`` or ``camera`` (not both); ``None`` for pixels.

    Examples:
        >>> resolve_gsd(0.05), resolve_gsd(None), resolve_gsd(camera=Camera(35, 3.5, 1000))
        (0.05, None, 0.1)
    """
    if gsd is not None and camera is not None:
        raise InputError("give either a GSD or camera data (focal length, pixel pitch, distance), not both")
    if camera is not None:
        return camera.gsd_mm()
    return None if gsd is None else _positive("GSD (mm per pixel)", gsd)


def check_bins(bins) -> tuple[float, ...]:
    """Validate width-class thresholds (mm): positive and strictly increasing."""
    try:
        out = tuple(float(b) for b in bins)
    except (TypeError, ValueError):
        raise InputError(f"width class thresholds must be numbers, got {bins!r}") from None
    if not out or any(not math.isfinite(b) or b <= 0 for b in out) or any(b >= c for b, c in zip(out, out[1:])):
        raise InputError(f"width class thresholds must be positive and increasing (mm), got {list(bins)}")
    return out


def class_labels(bins: tuple[float, ...]) -> list[str]:
    """Labels of the classes the thresholds make, narrowest first.

    Examples:
        >>> class_labels((0.1, 0.2, 0.3))
        ['<0.1', '0.1-0.2', '0.2-0.3', '>=0.3']
    """
    fmt = "{:g}".format
    return ([f"<{fmt(bins[0])}"] + [f"{fmt(a)}-{fmt(b)}" for a, b in zip(bins, bins[1:])]
            + [f">={fmt(bins[-1])}"])


def width_class(width_mm: float, bins: tuple[float, ...]) -> str:
    """The class label of a width in mm (a threshold belongs to the class above it).

    Examples:
        >>> width_class(0.05, (0.1, 0.2, 0.3)), width_class(0.2, (0.1, 0.2, 0.3))
        ('<0.1', '0.2-0.3')
    """
    return class_labels(bins)[sum(width_mm >= b for b in bins)]


def classify_width(max_width_px: float, gsd: float | None, bins: tuple[float, ...]) -> tuple[str | None, bool]:
    """``(class label or None, below_resolution)`` for a crack's maximum width in pixels.

    Examples:
        >>> classify_width(6.0, 0.05, (0.1, 0.2, 0.3))  # 0.30 mm
        ('>=0.3', False)
        >>> classify_width(1.5, 0.04, (0.1, 0.2, 0.3))  # < 2 px = < 0.08 mm: still certain
        ('<0.1', True)
        >>> classify_width(1.5, 0.1, (0.1, 0.2, 0.3))  # < 0.2 mm: could be either class
        ('unresolved', True)
    """
    below = max_width_px < MIN_RESOLVABLE_PX
    if gsd is None:
        return None, below
    if below:
        bound = MIN_RESOLVABLE_PX * gsd
        return (class_labels(bins)[0] if bound <= bins[0] else "unresolved"), True
    return width_class(max_width_px * gsd, bins), False


def orientation_class(angle_deg: float, axis_deg: float = 0.0, tol: float = ORIENTATION_TOLERANCE_DEG) -> str:
    """Longitudinal, transverse or diagonal relative to the member axis (both in degrees).

    Examples:
        >>> orientation_class(10), orientation_class(100), orientation_class(45), orientation_class(80, axis_deg=90)
        ('longitudinal', 'transverse', 'diagonal', 'longitudinal')
    """
    rel = (angle_deg - axis_deg) % 180.0
    off_axis = min(rel, 180.0 - rel)  # 0..90 degrees away from the axis
    if off_axis <= tol:
        return "longitudinal"
    if off_axis >= 90.0 - tol:
        return "transverse"
    return "diagonal"
