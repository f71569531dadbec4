"""Per-image report files: JSON, CSV, GeoJSON, overlay PNG and HTML.

Every file is rendered in memory first and then written atomically, so a failure leaves the
previous complete set of files (or none) in place, never half a file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from crackrender.errors import InputError
from crackrender.io import atomic_write_bytes, encode_image
from crackrender.quantify.result import CrackResult, QuantResult
from crackrender.quantify.units import class_labels

# Above this many pixels the overlay PNG and the HTML page (which embeds it) are not written: a
# picture of a gigapixel orthomosaic at full size helps nobody; view the GeoJSON over the raster.
REPORT_PICTURE_MAX_PIXELS = 50_000_000
# RGB colours: width classes narrow to wide run green -> red; special cases apart.
_RAMP = [(46, 204, 113), (241, 196, 15), (230, 126, 34), (231, 76, 60)]
NO_CLASS_COLOUR = (0, 190, 255)  # no GSD: widths in pixels, no classes
UNRESOLVED_COLOUR = (190, 90, 220)  # narrower than the image resolves (violet: grey vanishes on concrete)


def class_colours(bins: tuple[float, ...]) -> dict[str, tuple[int, int, int]]:
    """Colour of each width-class label (plus ``"unresolved"``).

    Examples:
        >>> class_colours((0.1, 0.2, 0.3))["<0.1"]
        (46, 204, 113)
    """
    labels = class_labels(tuple(bins))
    xs = np.linspace(0, len(_RAMP) - 1, len(labels))  # spread the classes over the ramp
    ramp = [tuple(int(round(np.interp(x, range(len(_RAMP)), [c[i] for c in _RAMP]))) for i in range(3)) for x in xs]
    out = dict(zip(labels, ramp))
    out["unresolved"] = UNRESOLVED_COLOUR
    return out


def crack_colour(crack: CrackResult, bins: tuple[float, ...]) -> tuple[int, int, int]:
    if crack.width_class is None:
        return UNRESOLVED_COLOUR if crack.below_resolution else NO_CLASS_COLOUR
    return class_colours(bins)[crack.width_class]


def render_overlay(result: QuantResult, mask: np.ndarray, image: np.ndarray | None = None) -> np.ndarray:
    """RGB overlay: each crack's pixels tinted by its width class, its skeleton drawn, its id written.

    Without an image the mask itself is the background (crack light grey on dark grey).
    """
    h, w = mask.shape
    if image is None:
        base = np.where(mask[..., None], np.uint8(110), np.uint8(30)).repeat(3, axis=2)
    else:
        base = np.ascontiguousarray(image[..., :3]).copy()
    out = base.astype(np.float32)
    labels = _crack_labels(result, mask)
    for c in result.cracks:
        sel = labels == c.id
        out[sel] = 0.45 * out[sel] + 0.55 * np.array(crack_colour(c, result.width_bins_mm), np.float32)
    out = out.clip(0, 255).astype(np.uint8)
    line_t = max(1, round(min(h, w) / 500))
    font = max(0.5, min(h, w) / 700)
    for c in result.cracks:
        colour = crack_colour(c, result.width_bins_mm)
        if not c.below_resolution:  # a darker centre line on wide cracks; thin ones are all line
            colour = tuple(int(v * 0.6) for v in colour)
        for b in c.branches:
            pts = np.round(np.array(b.polyline)).astype(np.int32)[:, None, :]
            cv2.polylines(out, [pts], False, colour, line_t, cv2.LINE_AA)
    taken: list = []
    for c in result.cracks:  # ids last, so no crack is drawn over a label
        _label(out, str(c.id), c, font, taken)
    return out


def _crack_labels(result: QuantResult, mask: np.ndarray) -> np.ndarray:
    """Crack id per pixel (0 elsewhere): a crack is the component with its exact bbox and area."""
    lab, _ = ndi.label(mask, structure=np.ones((3, 3)))
    ids = {(c.bbox, c.area_px): c.id for c in result.cracks}
    lut = np.zeros(lab.max() + 1, np.int32)
    for k, sl in enumerate(ndi.find_objects(lab), 1):
        bbox = (sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1)
        lut[k] = ids.get((bbox, int((lab[sl] == k).sum())), 0)
    return lut[lab]


def _label(img: np.ndarray, text: str, crack: CrackResult, font: float, taken: list) -> None:
    """Write ``text`` beside the crack's longest branch, at the first spot not over another label."""
    thick = max(1, int(round(font * 2)))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
    pts = np.array(crack.branches[0].polyline)
    along = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
    box = None
    for f in (0.5, 0.3, 0.7, 0.15, 0.85, 0.0, 1.0):
        px, py = (np.interp(f * along[-1], along, pts[:, i]) for i in range(2))
        for dx, dy in ((4, -4), (-tw - 4, -4), (4, th + 4), (-tw - 4, th + 4)):
            x = int(np.clip(px + dx, 2, img.shape[1] - tw - 2))
            y = int(np.clip(py + dy, th + 2, img.shape[0] - 4))
            cand = (x - 2, y - th - 2, x + tw + 2, y + 4)
            if not any(a[0] < cand[2] and cand[0] < a[2] and a[1] < cand[3] and cand[1] < a[3] for a in taken):
                box = (x, y, cand)
                break
        if box:
            break
    if box is None:  # crowded: accept the overlap
        x = int(np.clip(pts[0, 0] + 4, 2, img.shape[1] - tw - 2))
        y = int(np.clip(pts[0, 1] - 4, th + 2, img.shape[0] - 4))
        box = (x, y, (x - 2, y - th - 2, x + tw + 2, y + 4))
    x, y, rect = box
    taken.append(rect)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), thick, cv2.LINE_AA)


def cracks_csv(result: QuantResult) -> str:
    """One row per crack; millimetre columns appear when a GSD is known."""
    rows = []
    for c in result.to_dict()["cracks"]:
        row = {k: v for k, v in c.items() if k not in ("branches", "bbox")}
        row.update(zip(("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"), c["bbox"]))
        row["branches"] = len(c["branches"])
        rows.append(row)
    return _csv(rows, _crack_columns(result))


def branches_csv(result: QuantResult) -> str:
    """One row per branch (polyline and profile left to the JSON and GeoJSON files)."""
    rows = [{k: v for k, v in b.items() if k not in ("polyline", "width_profile")}
            for c in result.to_dict()["cracks"] for b in c["branches"]]
    cols = ["id", "crack_id"] + _measure_columns(result) + ["orientation_deg", "orientation_class", "free_ends"]
    return _csv(rows, cols)


def _measure_columns(result: QuantResult) -> list[str]:
    cols = [f"{n}_px" for n in ("length", "max_width", "mean_width", "p90_width")]
    if result.gsd_mm is not None:
        cols += [f"{n}_mm" for n in ("length", "max_width", "mean_width", "p90_width")]
    return cols


def _crack_columns(result: QuantResult) -> list[str]:
    cols = ["id"] + _measure_columns(result) + ["area_px"] + (["area_mm2"] if result.gsd_mm is not None else [])
    cols += ["width_resolution_px"] + (["width_resolution_mm"] if result.gsd_mm is not None else [])
    return cols + ["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "orientation_deg", "orientation_class",
                   "width_class", "below_resolution", "branches"]


def _csv(rows: list[dict], cols: list[str]) -> str:
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    return buf.getvalue()


def geojson(result: QuantResult) -> dict:
    """A FeatureCollection of branch LineStrings: in image pixel coordinates (x right, y down), or
    for a georeferenced mask in its CRS (pixel centres through its transform; the CRS named in the
    ``crs`` member that GDAL and QGIS read)."""
    feats = []
    unit = result.units
    to_world = _pixel_to_world(result.georef)
    for c in result.to_dict()["cracks"]:
        for b in c["branches"]:
            coords = [to_world(x, y) for x, y in b["polyline"]]
            props = {"id": b["id"], "crack_id": c["id"], "units": unit,
                     "length": b.get(f"length_{unit}"), "width": b.get(f"max_width_{unit}"),
                     "mean_width": b.get(f"mean_width_{unit}"), "length_px": b["length_px"],
                     "width_px": b["max_width_px"], "width_class": c["width_class"],
                     "below_resolution": c["below_resolution"], "orientation_class": b["orientation_class"]}
            feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": coords},
                          "properties": props})
    out = {"type": "FeatureCollection", "name": "cracks",
           "coordinates": "image pixels (x right, y down), not geographic", "features": feats}
    if result.georef is not None:
        g = result.georef
        out["coordinates"] = "the raster's CRS" if g.get("crs") else "the raster's transform (no CRS recorded)"
        if g.get("crs"):
            name = f"urn:ogc:def:crs:EPSG::{g['epsg']}" if g.get("epsg") else g["crs"]
            out["crs"] = {"type": "name", "properties": {"name": name}}
    return out


def _pixel_to_world(georef: dict | None):
    """(x, y) pixel indices -> coordinates: unchanged without georef, else the pixel centre
    (x + 0.5, y + 0.5) through the affine transform (a, b, c, d, e, f)."""
    if georef is None:
        return lambda x, y: [x, y]
    a, b, c, d, e, f = georef["transform"]
    return lambda x, y: [round(a * (x + 0.5) + b * (y + 0.5) + c, 6), round(d * (x + 0.5) + e * (y + 0.5) + f, 6)]


def write_report(result: QuantResult, out_dir, stem: str, image: np.ndarray | None = None,
                 mask: np.ndarray | None = None, title: str | None = None) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>_cracks.csv``, ``<stem>_branches.csv``, ``<stem>.geojson``,
    ``<stem>_overlay.png`` and ``<stem>_report.html`` into ``out_dir``; returns their paths.
    Masks above :data:`REPORT_PICTURE_MAX_PIXELS` get no overlay and no HTML page (the JSON's
    ``pictures`` says why).

    ``mask`` (default: the mask the result was measured on) tints the crack pixels on the
    overlay; the background is ``image``, or the mask itself when there is no image.

    Examples:
        >>> from crackrender.quantify import quantify_mask
        >>> m = np.zeros((64, 64), bool); m[30:34, 5:60] = True
        >>> paths = write_report(quantify_mask(m), "/tmp/q", "demo", mask=m)  # doctest: +SKIP
    """
    from crackrender.quantify.html import report_html

    if not stem or "/" in stem or "\\" in stem:
        raise InputError(f"invalid report name {stem!r}")
    shape = (result.height, result.width)
    if image is not None and image.shape[:2] != shape:
        raise InputError(f"{stem}: image size {image.shape[1]}x{image.shape[0]} does not match the mask's "
                         f"{shape[1]}x{shape[0]}")
    if mask is None:
        mask = result.mask if result.mask is not None else np.zeros(shape, bool)
    if np.shape(mask) != shape:
        raise InputError(f"{stem}: mask size does not match the result's {shape[1]}x{shape[0]}")
    data = result.to_dict()
    pictures = shape[0] * shape[1] <= REPORT_PICTURE_MAX_PIXELS
    if not pictures:
        data["pictures"] = (f"no overlay or HTML page: {shape[1]}x{shape[0]} exceeds "
                            f"{REPORT_PICTURE_MAX_PIXELS / 1e6:.0f} Mpx; view {stem}.geojson over the image instead")
    files = {
        "json": (f"{stem}.json", (json.dumps(data, indent=1) + "\n").encode()),
        "cracks_csv": (f"{stem}_cracks.csv", cracks_csv(result).encode()),
        "branches_csv": (f"{stem}_branches.csv", branches_csv(result).encode()),
        "geojson": (f"{stem}.geojson", (json.dumps(geojson(result)) + "\n").encode()),
    }
    if pictures:
        overlay_png = encode_image(render_overlay(result, np.asarray(mask, bool), image), ".png")
        files["overlay"] = (f"{stem}_overlay.png", overlay_png)
        files["html"] = (f"{stem}_report.html", report_html(result, overlay_png, title or stem).encode())
    out = Path(out_dir)
    return {key: atomic_write_bytes(out / name, blob) for key, (name, blob) in files.items()}
