"""GeoTIFF in and out: rasters read and written in windows, never whole, so orthomosaics far
larger than memory can be segmented.

Which files take this path (``crackrender segment``, :func:`takes_windowed_path`): a
``.tif``/``.tiff`` that is georeferenced (it has a CRS or a geotransform), or whose pixel count
exceeds the bound above which :func:`crackrender.io.read_image` refuses to decode an image whole
(``--max-pixels``, :data:`crackrender.io.DEFAULT_MAX_PIXELS`). Every other image, plain TIFFs
within that bound included, is decoded whole by ``read_image``.

Input rules (:class:`RasterReader`):

- 1 band (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA; a 4th band is never colour); bands
  beyond the first three are not shown to the model. Palette rasters are refused.
- uint8 as is; uint16 scaled by the fixed rule ``round(v * 255 / 65535)`` (the full 16-bit range,
  as ``read_image`` does for 16-bit photos that use more than 8 bits); other types are refused.
- No data (a nodata value, an alpha band or a mask band; GDAL's dataset mask) is never crack:
  the model sees those pixels as stored, and the mask and probability there are set to 0 and
  flagged invalid in the outputs' internal mask band.
- The TIFF orientation tag is not applied (a raster is read as its geotransform places it).

Outputs (:class:`RasterWriter`): single-band uint8 GeoTIFFs, tiled 512x512, DEFLATE, with the
input's CRS and transform: the mask ``<stem>.tif`` (0 background, 255 crack) and on request the
probability ``<stem>_prob.tif`` (``round(p * 255)``). Each is written into a temporary file beside
its name and renamed onto it only when complete.

Requires the ``geo`` extra (``pip install crackrender[geo]``, rasterio).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crackrender.errors import CrackRenderError, InputError
from crackrender.io import DEFAULT_MAX_PIXELS
from crackrender.tiling import Window

TIFF_SUFFIXES = (".tif", ".tiff")
BLOCK = 512  # output tile size, px
# GDAL's block cache while a raster is segmented (its default, 5% of RAM, fills with blocks read
# once). The writers hand GDAL whole rows of blocks, so a small cache never rewrites one.
GDAL_CACHE_BYTES = 128 * 2**20


def _rasterio():
    try:
        import rasterio
    except ImportError:
        raise CrackRenderError("GeoTIFF support needs rasterio: pip install 'crackrender[geo]'") from None
    return rasterio


def _open(path: str | os.PathLike):
    """Open a raster for reading; a plain TIFF's "not georeferenced" warning is expected here."""
    rio = _rasterio()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rio.errors.NotGeoreferencedWarning)
            return rio.open(path)
    except rio.errors.RasterioIOError as exc:
        raise InputError(f"{path}: unreadable raster ({exc})") from None


def _rio_window(w: Window):
    from rasterio.windows import Window as RioWindow

    return RioWindow(w.left, w.top, w.width, w.height)


@dataclass(frozen=True)
class Georef:
    """Where a raster lies: its CRS (WKT, or None) and its affine transform (a, b, c, d, e, f):
    the world position of pixel corner (col, row) is (a*col + b*row + c, d*col + e*row + f)."""

    crs: str | None
    transform: tuple[float, float, float, float, float, float]

    @property
    def epsg(self) -> int | None:
        if self.crs is None:
            return None
        from rasterio.crs import CRS

        return CRS.from_wkt(self.crs).to_epsg()

    def to_dict(self) -> dict:
        """JSON form, as sidecars and quantify reports record it."""
        return {"crs": self.crs, "epsg": self.epsg, "transform": list(self.transform)}

    @classmethod
    def from_dataset(cls, ds) -> "Georef | None":
        """The dataset's georeferencing; None for a raster without CRS and geotransform."""
        if ds.crs is None and ds.transform.is_identity:
            return None
        t = ds.transform
        return cls(None if ds.crs is None else ds.crs.to_wkt(), (t.a, t.b, t.c, t.d, t.e, t.f))

    def gsd_mm(self, name: str = "raster") -> float:
        """The pixel size in mm, from the transform and the CRS's linear unit.

        Refused (InputError) where it is no length: no CRS, a geographic CRS (degrees), or
        pixels more than 1% from square (widths across cracks would depend on direction).
        """
        from rasterio.crs import CRS

        if self.crs is None:
            raise InputError(f"{name}: has a geotransform but no CRS, so its pixel size has no unit; give the GSD")
        crs = CRS.from_wkt(self.crs)
        if crs.is_geographic:
            raise InputError(f"{name}: its CRS is geographic (pixel size in degrees); reproject it to a projected "
                             "CRS (e.g. its UTM zone) or give the GSD")
        a, b, _, d, e, _ = self.transform
        sx, sy = math.hypot(a, d), math.hypot(b, e)
        if abs(sx - sy) > 0.01 * max(sx, sy):
            raise InputError(f"{name}: pixels are not square ({sx:g} x {sy:g} CRS units); resample to square "
                             "pixels to measure widths")
        try:
            _, metres = crs.linear_units_factor
        except _rasterio().errors.CRSError:
            raise InputError(f"{name}: its CRS has no linear unit, so its pixel size has no length; give the GSD") from None
        return round(math.sqrt(sx * sy) * metres * 1000.0, 9)


@dataclass(frozen=True)
class RasterInfo:
    """What a raster's header says, read without decoding a pixel."""

    path: Path
    height: int
    width: int
    count: int
    dtype: str
    georef: Georef | None

    @property
    def pixels(self) -> int:
        return self.height * self.width


def raster_info(path: str | os.PathLike) -> RasterInfo:
    with _open(path) as ds:
        return RasterInfo(Path(path), ds.height, ds.width, ds.count, ds.dtypes[0], Georef.from_dataset(ds))


def takes_windowed_path(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> bool:
    """True for a TIFF that is georeferenced, or has more than ``max_pixels`` pixels (the bound of
    decoding whole; None or 0: none), so it is read window by window (module notes).

    Without rasterio installed no file takes it, unless one must: a TIFF whose header carries
    GeoTIFF tags, which is then refused rather than read as a plain picture that loses them.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return False
    try:
        import rasterio  # noqa: F401
    except ImportError:
        if _has_geotiff_tags(path):
            _rasterio()  # raises the install hint
        return False
    try:
        info = raster_info(path)
    except InputError:
        return False  # not a raster GDAL reads: the ordinary reader reports it
    return info.georef is not None or bool(max_pixels and info.pixels > max_pixels)


def _has_geotiff_tags(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            tags = getattr(im, "tag_v2", {})
            return any(t in tags for t in (33550, 33922, 34264, 34735))  # pixel scale, tiepoint, transform, geokeys
    except (OSError, ValueError, SyntaxError):
        return False


def _to_rgb8(data: np.ndarray) -> np.ndarray:
    """(bands, h, w) uint8/uint16 -> (h, w, 3) uint8: uint16 by round(v * 255 / 65535), gray repeated."""
    if data.dtype == np.uint16:
        data = ((data.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    rgb = np.moveaxis(data, 0, -1)
    return np.ascontiguousarray(np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb)


class RasterReader:
    """Windows of a raster as (h, w, 3) uint8 RGB (module notes), for ``Segmenter.segment_windows``."""

    def __init__(self, path: str | os.PathLike):
        from rasterio.enums import ColorInterp, MaskFlags

        self.path = Path(path)
        self._ds = _open(path)
        ds = self._ds
        try:
            if ds.count not in (1, 2, 3, 4):
                raise InputError(f"{path}: {ds.count} bands; expected 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA)")
            if ds.dtypes[0] not in ("uint8", "uint16") or len(set(ds.dtypes)) > 1:
                raise InputError(f"{path}: band type {'/'.join(sorted(set(ds.dtypes)))}; expected uint8 or uint16")
            if ds.colorinterp[0] == ColorInterp.palette:
                raise InputError(f"{path}: a palette raster; expand it to RGB first (gdal_translate -expand rgb)")
        except InputError:
            ds.close()
            raise
        self.height, self.width = ds.height, ds.width
        self.georef = Georef.from_dataset(ds)
        self._bands = [1, 2, 3] if ds.count >= 3 else [1]
        self.all_valid = all(flags == [MaskFlags.all_valid] for flags in ds.mask_flag_enums)

    def __call__(self, window: Window) -> np.ndarray:
        try:
            return _to_rgb8(self._ds.read(self._bands, window=_rio_window(window)))
        except _rasterio().errors.RasterioIOError as exc:  # e.g. a corrupt block deep inside the file
            raise InputError(f"{self.path}: unreadable at {window} ({exc})") from None

    def valid(self, window: Window) -> np.ndarray | None:
        """(h, w) bool, False where the raster has no data; None when every pixel is valid."""
        if self.all_valid:
            return None
        return self._ds.dataset_mask(window=_rio_window(window)) > 0

    def thumbnail(self, height: int, width: int) -> np.ndarray:
        """The whole raster averaged down to (height, width, 3) uint8, read block by block by GDAL."""
        from rasterio.enums import Resampling

        return _to_rgb8(self._ds.read(self._bands, out_shape=(len(self._bands), height, width),
                                      resampling=Resampling.average))

    def close(self) -> None:
        self._ds.close()

    def __enter__(self) -> "RasterReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RasterWriter:
    """A single-band uint8 GeoTIFF (tiled 512x512, DEFLATE) written window by window into a
    temporary file beside ``path``; :meth:`commit` renames it onto ``path``, and leaving the
    ``with`` block on an error removes it, so ``path`` only ever holds a complete file.

    ``masked=True`` adds an internal mask band (GDAL's per-dataset mask) that :meth:`write`
    fills from its ``valid`` argument.
    """

    def __init__(self, path: str | os.PathLike, height: int, width: int, georef: Georef | None, *,
                 masked: bool = False):
        from crackrender.io import reserve_temp_file

        rio = _rasterio()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = reserve_temp_file(self.path.parent, self.path.name)
        os.close(fd)  # GDAL creates the file afresh under the reserved name
        profile = dict(driver="GTiff", height=height, width=width, count=1, dtype="uint8", tiled=True,
                       blockxsize=BLOCK, blockysize=BLOCK, compress="deflate", BIGTIFF="IF_SAFER")
        if georef is not None:
            profile.update(transform=rio.Affine(*georef.transform),
                           crs=None if georef.crs is None else rio.crs.CRS.from_wkt(georef.crs))
        self.masked = masked
        self._height, self._width = height, width
        self._strip_top = 0  # rows above it are GDAL's
        self._strip = np.zeros((0, width), np.uint8)
        self._valid = np.ones((0, width), bool)
        self._filled = np.zeros(height, np.int64)  # pixels written per row
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rio.errors.NotGeoreferencedWarning)
                self._ds = rio.open(self._tmp, "w", **profile)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise

    def write(self, window: Window, values: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Put (h, w) uint8 ``values`` at ``window``; ``valid`` (h, w) bool fills the mask band.

        Windows are gathered in a strip of rows and handed to GDAL in whole rows of 512 px blocks
        once complete, so each compressed block is written once (a block written in parts, then
        evicted from GDAL's cache, would be written again: a larger file) and memory holds the
        strip, not the raster. Windows must come row by row, as :func:`crackrender.tiling.plan_tiles`
        makes them: a window above rows already handed over is an error.
        """
        top = window.top - self._strip_top
        if top < 0:
            raise ValueError(f"{window} lies above rows already written ({self._strip_top})")
        need = top + window.height - len(self._strip)
        if need > 0:  # grow the strip downwards
            self._strip = np.concatenate([self._strip, np.zeros((need, self._width), np.uint8)])
            if self.masked:
                self._valid = np.concatenate([self._valid, np.ones((need, self._width), bool)])
        rows, cols = slice(top, top + window.height), slice(window.left, window.left + window.width)
        self._strip[rows, cols] = values
        if self.masked and valid is not None:
            self._valid[rows, cols] = valid
        self._filled[window.top:window.top + window.height] += window.width
        # rows below the strip are untouched, so the complete rows are a prefix of the strip
        gaps = np.flatnonzero(self._filled[self._strip_top:self._strip_top + len(self._strip)] < self._width)
        done = int(gaps[0]) if len(gaps) else len(self._strip)
        last = self._strip_top + done == self._height
        self._flush(done if last else done - done % BLOCK)

    def _flush(self, n: int) -> None:
        """Hand the strip's first ``n`` rows to GDAL."""
        if n <= 0:
            return
        win = _rio_window(Window(self._strip_top, 0, n, self._width))
        self._ds.write(self._strip[None, :n], window=win)
        if self.masked:
            with _rasterio().Env(GDAL_TIFF_INTERNAL_MASK=True):  # inside the file, so the rename carries it
                self._ds.write_mask(self._valid[:n].astype(np.uint8) * 255, window=win)
            self._valid = self._valid[n:]
        self._strip = self._strip[n:]
        self._strip_top += n

    def commit(self) -> Path:
        gaps = np.flatnonzero(self._filled < self._width)
        if len(gaps):
            raise ValueError(f"{self.path}: rows {gaps[0]} to {gaps[-1] + 1} were never written whole")
        self._ds.close()
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        if not self._ds.closed:
            self._ds.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "RasterWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None or self._tmp.exists():
            self.discard()  # an error, or left without commit


def segment_raster(seg, path: str | os.PathLike, mask_path: str | os.PathLike, prob_path: str | os.PathLike | None = None,
                   *, progress: bool = False):
    """Segment the raster at ``path`` tile by tile with ``seg`` (a :class:`~crackrender.segment.Segmenter`)
    into the mask GeoTIFF ``mask_path`` and, given ``prob_path``, the probability GeoTIFF.

    Memory is bounded by a strip of the raster's width and a tile's height (the model's tile, the
    writers' strips, GDAL's block cache held to :data:`GDAL_CACHE_BYTES`), whatever the raster's
    height; benchmarks/geotiff_memory.py measures it. Returns ``(result, georef)``: the
    :class:`~crackrender.segment.SegmentResult` (``mask``/``prob`` None, the files hold them) and
    the raster's :class:`Georef` (None when it has none). Each file appears at its path only
    complete, once the whole raster is segmented; until then an earlier file there stays.
    """
    with _rasterio().Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), RasterReader(path) as src:
        masked = not src.all_valid
        with RasterWriter(mask_path, src.height, src.width, src.georef, masked=masked) as mask_out:
            prob_out = (RasterWriter(prob_path, src.height, src.width, src.georef, masked=masked)
                        if prob_path is not None else None)
            crack_pixels = 0
            try:
                def write(core: Window, mask: np.ndarray, prob: np.ndarray | None) -> None:
                    nonlocal crack_pixels
                    valid = src.valid(core)
                    if valid is not None:  # no data is never crack
                        mask = mask & valid
                        prob = None if prob is None else np.where(valid, prob, 0).astype(np.uint8)
                    crack_pixels += int(np.count_nonzero(mask))
                    mask_out.write(core, mask.astype(np.uint8) * 255, valid)
                    if prob_out is not None:
                        prob_out.write(core, prob, valid)

                result = seg.segment_windows(src, src.height, src.width, write, keep_prob=prob_out is not None,
                                             progress=progress, source=path)
                result.sidecar["crack_pixels"] = crack_pixels
                if prob_out is not None:
                    prob_out.commit()
                mask_out.commit()
            except BaseException:
                if prob_out is not None:
                    prob_out.discard()
                raise
    return result, src.georef


def read_mask_raster(path: str | os.PathLike) -> tuple[np.ndarray, Georef | None]:
    """A binary mask raster read whole, for quantify, as (H, W) bool (crack: value > 0; no-data
    pixels are not crack) with its georeferencing. A mask above quantify's size limit is refused
    from its header, before anything is decoded."""
    from crackrender.io import binarize_mask
    from crackrender.quantify.core import check_quantify_size

    with _open(path) as ds:
        if ds.count != 1:
            raise InputError(f"{path}: a mask raster has 1 band, this one {ds.count}")
        check_quantify_size(ds.height, ds.width, str(path))  # from the header, before decoding
        mask = binarize_mask(ds.read(1), str(path))
        valid = ds.dataset_mask() > 0 if ds.mask_flag_enums[0] != [_rasterio().enums.MaskFlags.all_valid] else None
        return (mask if valid is None else mask & valid), Georef.from_dataset(ds)


def raster_gsd(georef: Georef | None, given: float | None, name: str) -> float | None:
    """The GSD to measure a raster's mask with: its pixel size in mm when it is georeferenced in a
    projected CRS, else ``given``. A ``given`` GSD more than 1% off the raster's own is refused.

    Examples:
        >>> raster_gsd(None, 0.2, "photo.tif")
        0.2
    """
    if georef is None:
        return given
    try:
        own = georef.gsd_mm(name)
    except InputError:
        if given is not None:
            return given  # no length unit in the raster: the user's GSD stands
        raise
    if given is not None and abs(given - own) > 0.01 * own:
        raise InputError(f"{name}: the GSD given, {given:g} mm, disagrees with the raster's pixel size, {own:g} mm; "
                         "leave the GSD out to use the raster's")
    return own


def thumbnail_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) of a picture of a height x width raster whose long side is at most ``max_side``.

    Examples:
        >>> thumbnail_shape(30000, 60000, 4096), thumbnail_shape(300, 600, 4096)
        ((2048, 4096), (300, 600))
    """
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def read_mask_thumbnail(path: str | os.PathLike, height: int, width: int) -> np.ndarray:
    """A mask raster shrunk to (height, width) bool: a thumbnail pixel is crack if any pixel it
    covers is (an average above 0), so thin cracks stay visible."""
    from rasterio.enums import Resampling

    with _open(path) as ds:
        avg = ds.read(1, out_shape=(height, width), out_dtype="float32", resampling=Resampling.average)
    return avg > 0

