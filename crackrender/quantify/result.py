"""Result dataclasses of crack quantification and their JSON form.

Values are kept in pixels (``*_px``); :meth:`QuantResult.to_dict` adds millimetre values
(``*_mm``, ``area_mm2``) when a ground sampling distance is known, so both stay visible.
Coordinates are image pixels: x to the right, y down. Angles are degrees in [0, 180),
counter-clockwise as seen on screen, from the image x axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crackrender.quantify.units import MIN_RESOLVABLE_PX, ORIENTATION_TOLERANCE_DEG, class_labels

_PX_FIELDS = ("length", "max_width", "mean_width", "p90_width")


@dataclass
class BranchResult:
    """One branch: a piece of skeleton between two free ends or junctions."""

    id: int
    crack_id: int
    length_px: float
    max_width_px: float
    mean_width_px: float
    p90_width_px: float
    orientation_deg: float
    orientation_class: str
    free_ends: int
    polyline: list[tuple[float, float]]  # (x, y), simplified to 0.25 px
    width_profile: list[tuple[float, float]]  # (arc length px, width px), at most 200 samples


@dataclass
class CrackResult:
    """One crack instance (a connected component of the mask) and its branches."""

    id: int
    length_px: float
    max_width_px: float
    mean_width_px: float
    p90_width_px: float
    area_px: int
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1, inclusive
    orientation_deg: float
    orientation_class: str
    width_class: str | None
    below_resolution: bool
    branches: list[BranchResult] = field(default_factory=list)


def _with_mm(d: dict, gsd: float | None) -> dict:
    """Round pixel values and add their millimetre twins."""
    for name in _PX_FIELDS:
        d[f"{name}_px"] = round(d[f"{name}_px"], 3)
        if gsd is not None:
            d[f"{name}_mm"] = round(d[f"{name}_px"] * gsd, 4)
    if "area_px" in d and gsd is not None:
        d["area_mm2"] = round(d["area_px"] * gsd * gsd, 4)
    d["orientation_deg"] = round(d["orientation_deg"], 2)
    return d


@dataclass
class QuantResult:
    """Everything measured on one mask. ``to_dict()`` gives its JSON form.

    Examples:
        >>> r = QuantResult(height=10, width=10, gsd_mm=None)
        >>> r.to_dict()["summary"]["count"], r.units
        (0, 'px')
    """

    height: int
    width: int
    gsd_mm: float | None
    member_axis_deg: float = 0.0
    width_bins_mm: tuple[float, ...] = (0.1, 0.2, 0.3)
    min_length_px: float = 10.0
    cracks: list[CrackResult] = field(default_factory=list)
    dropped_short: int = 0  # components shorter than min_length_px, left out
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # the mask measured; not in JSON
    georef: dict | None = None  # a georeferenced mask's CRS and transform (crackrender.geotiff.Georef.to_dict())

    @property
    def units(self) -> str:
        return "px" if self.gsd_mm is None else "mm"

    @property
    def scale(self) -> float:
        """Length of one pixel in the result's units."""
        return 1.0 if self.gsd_mm is None else self.gsd_mm

    def summary(self) -> dict:
        """Count, totals and class counts, in the result's units."""
        s = self.scale
        labels = class_labels(tuple(self.width_bins_mm)) + ["unresolved"] if self.gsd_mm else []
        counts = {lab: sum(c.width_class == lab for c in self.cracks) for lab in labels}
        orient = {k: sum(c.orientation_class == k for c in self.cracks)
                  for k in ("longitudinal", "transverse", "diagonal")}
        return {
            "count": len(self.cracks),
            "branches": sum(len(c.branches) for c in self.cracks),
            "total_length": round(sum(c.length_px for c in self.cracks) * s, 4),
            "max_width": round(max((c.max_width_px for c in self.cracks), default=0.0) * s, 4),
            "total_area": round(sum(c.area_px for c in self.cracks) * s * s, 4),
            "below_resolution": sum(c.below_resolution for c in self.cracks),
            "width_classes": counts if self.gsd_mm else None,
            "orientation_classes": orient,
            "units": self.units,
            "dropped_short": self.dropped_short,
        }

    def resolution(self) -> dict:
        """What the image can resolve: one pixel, and the narrowest width measured as such."""
        g = self.gsd_mm
        return {
            "gsd_mm_per_px": g,
            "width_uncertainty_px": 1.0,
            "width_uncertainty_mm": g,
            "min_resolvable_width_px": MIN_RESOLVABLE_PX,
            "min_resolvable_width_mm": None if g is None else round(MIN_RESOLVABLE_PX * g, 6),
        }

    def to_dict(self) -> dict:
        cracks = []
        for c in self.cracks:
            d = _with_mm({k: v for k, v in vars(c).items() if k != "branches"}, self.gsd_mm)
            d["bbox"] = list(c.bbox)
            d["width_resolution_px"] = 1.0  # one pixel: what any width here is known to
            if self.gsd_mm is not None:
                d["width_resolution_mm"] = self.gsd_mm
            d["branches"] = [_with_mm(dict(vars(b)), self.gsd_mm) for b in c.branches]
            cracks.append(d)
        return {
            "image_size": {"height": self.height, "width": self.width},
            "units": self.units,
            "coordinates": "image pixels, x right, y down; angles in degrees counter-clockwise on screen from +x",
            "member_axis_deg": self.member_axis_deg,
            "orientation_rule": (f"longitudinal within {ORIENTATION_TOLERANCE_DEG:g} deg of the member axis, "
                                 f"transverse within {ORIENTATION_TOLERANCE_DEG:g} deg of its perpendicular, "
                                 "else diagonal"),
            "width_bins_mm": list(self.width_bins_mm) if self.gsd_mm else None,
            "width_class_rule": ("by maximum width; a threshold belongs to the class above it" if self.gsd_mm
                                 else "not applicable without a ground sampling distance"),
            "min_length_px": self.min_length_px,
            "resolution": self.resolution(),
            "georeference": self.georef,
            "summary": self.summary(),
            "cracks": cracks,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "QuantResult":
        """The result back from its JSON form (pixel values as rounded there; no mask).

        Examples:
            >>> r = QuantResult(height=10, width=20, gsd_mm=0.5)
            >>> QuantResult.from_dict(r.to_dict()) == r
            True
        """
        def pick(kind, d: dict, **extra):
            names = {f for f in kind.__dataclass_fields__}
            return kind(**{**{k: v for k, v in d.items() if k in names}, **extra})

        cracks = []
        for c in data["cracks"]:
            branches = [pick(BranchResult, b, polyline=[tuple(p) for p in b["polyline"]],
                             width_profile=[tuple(p) for p in b["width_profile"]]) for b in c["branches"]]
            cracks.append(pick(CrackResult, c, bbox=tuple(c["bbox"]), branches=branches))
        bins = data.get("width_bins_mm")
        return cls(height=data["image_size"]["height"], width=data["image_size"]["width"],
                   gsd_mm=data["resolution"]["gsd_mm_per_px"], member_axis_deg=data["member_axis_deg"],
                   width_bins_mm=cls.width_bins_mm if bins is None else tuple(bins),
                   min_length_px=data["min_length_px"], cracks=cracks,
                   dropped_short=data["summary"]["dropped_short"], georef=data.get("georeference"))
