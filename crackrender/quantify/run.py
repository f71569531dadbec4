"""``run_quantify``: masks (files or folders) in, one report per mask and a summary out.

All inputs are checked before the first file is written (masks readable and binary, images
found and of the same size, GSD valid), so a bad input costs nothing and leaves earlier
outputs untouched; every file is then written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from crackrender.errors import InputError
from crackrender.geotiff import raster_gsd
from crackrender.io import atomic_write_bytes, expand_inputs, index_by_stem, list_images, read_image, read_mask
from crackrender.quantify.core import quantify_mask
from crackrender.quantify.html import summary_html
from crackrender.quantify.report import REPORT_PICTURE_MAX_PIXELS, write_report
from crackrender.quantify.result import QuantResult
from crackrender.quantify.units import DEFAULT_WIDTH_BINS_MM, Camera, check_bins, resolve_gsd


def _camera(camera) -> Camera | None:
    if camera is None or isinstance(camera, Camera):
        return camera
    if isinstance(camera, Mapping):
        return Camera(**camera)
    if isinstance(camera, Sequence) and len(camera) == 3:
        return Camera(*camera)
    raise InputError(f"camera must be (focal_mm, pixel_um, distance_mm), got {camera!r}")


def collect_masks(mask_paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Mask files from files and folders (a folder's images, sorted); unique stems required.

    Examples:
        >>> collect_masks([])
        Traceback (most recent call last):
        ...
        crackrender.errors.InputError: no masks given
    """
    masks = expand_inputs(mask_paths, what="masks")
    index_by_stem(masks, "masks (reports are named by stem)")
    return masks


def match_images(masks: list[Path], image: str | os.PathLike | None) -> list[Path | None]:
    """The image for each mask: none, the one file given (one mask only), or by stem from a folder."""
    if image is None:
        return [None] * len(masks)
    image = Path(image)
    if image.is_file():
        if len(masks) != 1:
            raise InputError(f"{image}: one image given for {len(masks)} masks; "
                             "give a folder of images matched by name")
        return [image]
    if not image.is_dir():
        raise InputError(f"{image}: file not found")
    by_stem: dict[str, Path] = {}
    for p in list_images(image):
        by_stem.setdefault(p.stem, p)
    missing = [m.stem for m in masks if m.stem not in by_stem]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"{image}: no image named {missing[0]!r}{more} to match the mask")
    return [by_stem[m.stem] for m in masks]


def _image_size(path: Path) -> tuple[int, int]:
    """(height, width) after EXIF rotation, from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None
    return (w, h) if turned else (h, w)


def _load_mask(path: Path):
    """(mask, georef or None): a georeferenced or huge TIFF through rasterio, with its CRS and
    transform (see crackrender.geotiff), anything else through read_mask."""
    from crackrender.geotiff import read_mask_raster, takes_windowed_path

    if takes_windowed_path(path):
        return read_mask_raster(path)
    return read_mask(path), None


def _load_image(path: Path) -> np.ndarray:
    from crackrender.geotiff import RasterReader, takes_windowed_path
    from crackrender.tiling import Window

    if takes_windowed_path(path):
        with RasterReader(path) as src:
            return src(Window(0, 0, src.height, src.width))
    return read_image(path)


def _any_image_size(path: Path) -> tuple[int, int]:
    from crackrender.geotiff import raster_info, takes_windowed_path

    if takes_windowed_path(path):
        info = raster_info(path)
        return info.height, info.width
    return _image_size(path)


def run_quantify(mask_paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                 image: str | os.PathLike | None = None, gsd: float | None = None, camera=None,
                 member_axis_deg: float = 0.0, width_bins_mm=DEFAULT_WIDTH_BINS_MM, min_length_px: float = 10.0,
                 progress: bool = True) -> dict[str, QuantResult]:
    """Measure each mask and write its report into ``out_dir``; with several masks also
    ``summary.json`` and ``summary.html``. Returns the results by mask stem.

    Args:
        mask_paths: mask files and/or folders of masks.
        image: the photo for a single mask, or a folder of photos matched to masks by stem.
        gsd: millimetres per pixel, or ``camera`` = ``Camera(focal_mm, pixel_um, distance_mm)``
            (a 3-tuple or a dict also do) to compute it. Neither: results in pixels. A mask
            GeoTIFF in a projected CRS brings its own (its pixel size; a GSD given that
            disagrees by more than 1% is refused), and its GeoJSON is in its CRS.
        member_axis_deg, width_bins_mm, min_length_px: as in :func:`quantify_mask`.

    Examples:
        >>> run_quantify(["masks/"], "out/", image="images/", gsd=0.1)  # doctest: +SKIP
    """
    g = resolve_gsd(gsd, _camera(camera))
    bins = check_bins(width_bins_mm)
    masks = collect_masks(mask_paths)
    images = match_images(masks, image)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    gsds = []
    for m, im in zip(masks, images):  # check everything before writing anything; masks are
        # decoded again below rather than kept, so memory stays one mask at any folder size
        mask, georef = _load_mask(m)
        gsds.append(raster_gsd(georef, g, str(m)))
        shape = mask.shape
        del mask
        if im is not None and _any_image_size(im) != shape:
            h, w = _any_image_size(im)
            raise InputError(f"{im}: image is {w}x{h} but mask {m.name} is {shape[1]}x{shape[0]}")

    from tqdm import tqdm

    results: dict[str, QuantResult] = {}
    for m, im, mask_gsd in tqdm(list(zip(masks, images, gsds)), desc="quantify", unit="mask", disable=not progress):
        mask, georef = _load_mask(m)
        r = quantify_mask(mask, gsd=mask_gsd, member_axis_deg=member_axis_deg, width_bins_mm=bins,
                          min_length_px=min_length_px, georef=None if georef is None else georef.to_dict())
        pictures = mask.size <= REPORT_PICTURE_MAX_PIXELS  # else no overlay to draw the photo under
        write_report(r, out, m.stem, image=None if im is None or not pictures else _load_image(im))
        results[m.stem] = r
    if len(results) > 1:
        write_summary(results, out, {m.stem: (m, im) for m, im in zip(masks, images)})
    return results


def write_summary(results: dict[str, QuantResult], out_dir: str | os.PathLike,
                  sources: dict[str, tuple[Path, Path | None]] | None = None) -> None:
    """``summary.json`` (per-image summaries and totals) and ``summary.html`` in ``out_dir``."""
    first = next(iter(results.values()))
    same_units = all(r.units == first.units for r in results.values())  # each raster may bring its own GSD
    cracks = [(c, r.scale) for r in results.values() for c in r.cracks]
    images = []
    for stem, r in results.items():
        pictures = r.height * r.width <= REPORT_PICTURE_MAX_PIXELS
        entry = {"stem": stem, "report": f"{stem}_report.html" if pictures else None, **r.summary()}
        if sources and stem in sources:
            entry["mask"] = str(sources[stem][0])
            entry["image"] = None if sources[stem][1] is None else str(sources[stem][1])
        images.append(entry)
    gsds = {r.gsd_mm for r in results.values()}
    data = {
        "units": first.units if same_units else "mixed",
        "resolution": first.resolution() if len(gsds) == 1 else "per image (see images)",
        "width_bins_mm": list(first.width_bins_mm) if first.gsd_mm else None,
        "totals": {"images": len(results), "cracks": len(cracks),
                   "total_length": round(sum(c.length_px * k for c, k in cracks), 4) if same_units else None,
                   "max_width": round(max((c.max_width_px * k for c, k in cracks), default=0.0), 4)
                   if same_units else None,
                   "below_resolution": sum(c.below_resolution for c, _ in cracks)},
        "images": images,
    }
    page = summary_html(list(results.items())).encode()
    atomic_write_bytes(Path(out_dir) / "summary.json", (json.dumps(data, indent=1) + "\n").encode())
    atomic_write_bytes(Path(out_dir) / "summary.html", page)
