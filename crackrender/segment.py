"""Inference at native resolution: masks, probability maps, overlays, JSON sidecars.

:class:`Segmenter` turns one image in memory into a :class:`SegmentResult` (mask, probability,
timings, sidecar), in overlapping tiles when it is larger than one (crackrender.tiling), so memory
is bounded by the tile; :meth:`Segmenter.segment_windows` does the same for an image it reads and
writes window by window. :class:`ResultWriter` writes a result's files; :func:`segment_paths` is
the loop ``crackrender segment`` runs: read each file, segment it, write it.

From Python::

    from crackrender.segment import Segmenter
    seg = Segmenter.from_checkpoint("model.safetensors")
    result = seg(read_image("bridge.jpg"))      # result.mask: (H, W) bool, same size as the image
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from crackrender.errors import CrackRenderError, InputError
from crackrender.inference import image_to_tensor, prepare_model
from crackrender.straight_lines import DEFAULT_MIN_LENGTH, check_min_length, drop_straight_lines
from crackrender.test_time_views import ViewAveraged, check_flips, check_scales, is_plain
from crackrender.threshold import DEFAULT_THRESHOLD, check_threshold, model_threshold
from crackrender.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, Window, check_tiling, plan_tiles
from crackrender.io import (DEFAULT_MAX_PIXELS, atomic_write_json, expand_inputs, index_by_stem, read_image,
                            write_image, write_mask)


@dataclass
class SegmentResult:
    """One image segmented: the mask, what produced it, and the sidecar that records it.

    ``prob`` is float32 in [0, 1] for an image that ran as one tile, and uint8 (round(p * 255))
    for a tiled one, so a large image never allocates a float map; :meth:`prob_uint8` and
    :meth:`prob_float` give either kind. ``mask`` and ``prob`` are None from
    :meth:`Segmenter.segment_windows`, whose ``write`` receives them tile by tile.
    """
    mask: np.ndarray | None       # (H, W) bool, the image's size
    prob: np.ndarray | None       # (H, W) after point refinement (see above); None when not kept
    refined_points: int           # summed over tiles: a point in two tiles' overlap counts twice
    timings: dict[str, float] = field(default_factory=dict)
    sidecar: dict = field(default_factory=dict)  # what <stem>.json records, less the files written

    def prob_uint8(self) -> np.ndarray | None:
        """The probability as 8 bits, round(p * 255), as ``<stem>_prob.png`` stores it."""
        if self.prob is None or self.prob.dtype == np.uint8:
            return self.prob
        return np.round(self.prob * 255).astype(np.uint8)

    def prob_float(self) -> np.ndarray | None:
        """The probability as float32 in [0, 1] (in steps of 1/255 for a tiled image)."""
        if self.prob is None or self.prob.dtype != np.uint8:
            return self.prob
        return self.prob.astype(np.float32) / 255


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise CrackRenderError(f"unknown device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CrackRenderError("--device cuda asked for, but no CUDA GPU is available")
    return dev


class Segmenter:
    """A loaded model plus its inference settings; call it on (H, W, 3) uint8 RGB arrays.

    Images larger than ``tile`` px on a side run as overlapping tiles of at most ``tile`` x ``tile``
    px whose cores are kept (``overlap`` px of context on each side; see crackrender.tiling).
    Crack along straight lines of at least ``straight_lines`` px (joints, paint and shadow edges)
    is dropped from each tile's mask (crackrender.straight_lines; 0 keeps it). ``flips`` and
    ``scales`` average each tile's probability over flipped and rescaled views of it
    (crackrender.test_time_views; the default, 1 and (1.0,), is the tile alone).
    The model is only asked ``model.predict(x, timings=...)``, so any backend with that call works.
    """

    def __init__(self, model, device: torch.device, *, bf16: bool = False, source: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                 straight_lines: int = DEFAULT_MIN_LENGTH, flips: int = 1, scales=(1.0,)):
        self.flips, self.scales = check_flips(flips), check_scales(scales)
        self.model = model if is_plain(self.flips, self.scales) else ViewAveraged(model, self.flips, self.scales)
        self.device, self.bf16 = device, bf16
        self.source = source  # the model file it was loaded from, for sidecars
        self.threshold = check_threshold(threshold)
        self.tile, self.overlap = check_tiling(tile, overlap)
        self.straight_lines = check_min_length(straight_lines)
        self.info: dict = {}  # the model file's info, when loaded from one

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, *, device: str | None = None, bf16: bool = False,
                        alpha: float | None = None, beta: float | None = None,
                        threshold: float | None = None, tile: int = DEFAULT_TILE,
                        overlap: int = DEFAULT_OVERLAP, straight_lines: int = DEFAULT_MIN_LENGTH,
                        flips: int = 1, scales=(1.0,)) -> "Segmenter":
        """Load a model file; ``path=None`` loads the model shipped with the package. The decision
        threshold is the file's own for these views (``crackrender calibrate``; else its plain one;
        0.5 for files without one) unless ``threshold`` is given. ``tile``, ``overlap``,
        ``straight_lines``, ``flips``, ``scales``: see :class:`Segmenter`."""
        from crackrender.checkpoint import load_model_and_info
        from crackrender.weights import default_model_path

        path = default_model_path() if path is None else path
        dev = resolve_device(device)
        overrides = {k: v for k, v in (("alpha", alpha), ("beta", beta)) if v is not None}
        threshold = None if threshold is None else check_threshold(threshold)  # bad input before the load
        check_tiling(tile, overlap)
        check_min_length(straight_lines)
        flips, scales = check_flips(flips), check_scales(scales)
        model, info = load_model_and_info(path, device=dev, **overrides)
        seg = cls(prepare_model(model, dev), dev, bf16=bf16, source=str(path),
                  threshold=model_threshold(info, flips, scales) if threshold is None else threshold, tile=tile,
                  overlap=overlap, straight_lines=straight_lines, flips=flips, scales=scales)
        seg.info = info
        return seg

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype: bf16 when asked, fp16 autocast on CUDA, else float32."""
        if self.bf16:
            return torch.bfloat16
        return torch.float16 if self.device.type == "cuda" else torch.float32

    def _autocast(self):
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def __call__(self, image: np.ndarray, *, source: str | os.PathLike | None = None,
                 keep_prob: bool = True, progress: bool = False) -> SegmentResult:
        """Segment one (H, W, 3) uint8 RGB image; ``source`` (its file) goes into the sidecar.
        ``keep_prob=False`` skips the probability map (see :class:`SegmentResult` for its dtype);
        ``progress`` shows a bar over the tiles of a tiled image."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        one_tile = h <= self.tile and w <= self.tile
        mask = np.empty((h, w), bool)
        # float32 only for an image that runs whole: a tiled one holds 8 bits per pixel
        prob = None if not keep_prob else np.empty((h, w), np.float32 if one_tile else np.uint8)

        def write(core: Window, core_mask: np.ndarray, core_prob: np.ndarray | None) -> None:
            mask[core.slices] = core_mask
            if prob is not None:
                prob[core.slices] = core_prob

        result = self._run(lambda window: image[window.slices], h, w, write,
                           prob_dtype=None if prob is None else prob.dtype, progress=progress, source=source)
        result.mask, result.prob = mask, prob
        return result

    def segment_windows(self, read: Callable[[Window], np.ndarray], height: int, width: int,
                        write: Callable[[Window, np.ndarray, np.ndarray | None], None], *,
                        keep_prob: bool = False, progress: bool = False, source=None) -> SegmentResult:
        """Segment a ``height`` x ``width`` image that ``read(window)`` returns window by window as
        (h, w, 3) uint8 RGB. ``write(core, mask, prob)`` receives each tile's core (disjoint windows
        covering the image once), its (h, w) bool mask and, with ``keep_prob``, its (h, w) uint8
        probability round(p * 255), else None. The result's ``mask`` and ``prob`` are None; its
        points, timings and sidecar cover the whole image."""
        return self._run(read, height, width, write, prob_dtype=np.uint8 if keep_prob else None,
                         progress=progress, source=source)

    def _run(self, read, height: int, width: int, write, *, prob_dtype, progress: bool, source) -> SegmentResult:
        from tqdm import tqdm

        tiles = plan_tiles(height, width, self.tile, self.overlap)
        timings: dict[str, float] = {}
        refined = crack = 0
        start = time.perf_counter()
        for tile in tqdm(tiles, desc="tiles", unit="tile", leave=False, disable=not progress or len(tiles) < 2):
            pixels = read(tile.window)
            expected = (tile.window.height, tile.window.width, 3)
            if pixels.shape != expected or pixels.dtype != np.uint8:
                raise InputError(f"read({tile.window}) gave {pixels.shape} {pixels.dtype}, expected {expected} uint8")
            mask, prob, points = self._predict(pixels, tile.core.relative_to(tile.window), prob_dtype, timings)
            refined += points
            crack += int(mask.sum())
            write(tile.core, mask, prob)
        timings["total"] = time.perf_counter() - start
        sidecar = self._sidecar(height, width, source, crack, refined, timings)
        sidecar.update(tile=self.tile, overlap=self.overlap, tiles=len(tiles))
        return SegmentResult(None, None, refined, timings, sidecar)

    def _predict(self, pixels: np.ndarray, core: Window, prob_dtype, timings: dict) -> tuple:
        """One tile through the model: the core's mask, its probability (as ``prob_dtype``, or
        None) and the number of points the head re-predicted in the whole tile."""
        x = image_to_tensor(pixels, self.device)
        tile_timings: dict[str, float] = {}  # a fresh dict per tile, summed here, whatever the backend does
        with torch.inference_mode(), self._autocast():
            pred = self.model.predict(x, timings=tile_timings)
        for k, v in tile_timings.items():
            timings[k] = timings.get(k, 0.0) + v
        # the models decide at p > 0.5; a calibrated threshold decides on the same probabilities
        tile_mask = (pred.mask[0] if self.threshold == DEFAULT_THRESHOLD else pred.prob[0] >= self.threshold).cpu().numpy()
        # lines are found on the whole tile, so its context shows how far a line runs beyond the core
        mask = drop_straight_lines(tile_mask, self.straight_lines)[core.slices]
        p = pred.prob[0][core.slices]
        prob = None
        if prob_dtype == np.uint8:
            prob = torch.round(p.float() * 255).to(torch.uint8).cpu().numpy()
        elif prob_dtype is not None:
            prob = p.float().cpu().numpy()
        return mask, prob, int(pred.refined_points[0])

    def _sidecar(self, height, width, source, crack_pixels, refined, timings) -> dict:
        return {
            "image": None if source is None else str(source),
            "width": width,
            "height": height,
            "checkpoint": self.source,
            "model": getattr(self.model, "config", None),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "alpha": getattr(self.model, "alpha", None),  # only CBPRN refines an [alpha, beta] band
            "beta": getattr(self.model, "beta", None),
            "threshold": self.threshold,
            "straight_lines": self.straight_lines,
            "flips": self.flips,
            "scales": list(self.scales),
            "refined_points": refined,
            "crack_pixels": crack_pixels,
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
        }


def overlay(image: np.ndarray, mask: np.ndarray, color=(255, 0, 0), opacity: float = 0.6) -> np.ndarray:
    """The photo with crack pixels tinted, for people to look at."""
    out = image.copy()
    tint = np.asarray(color, np.float32)
    out[mask] = (image[mask] * (1 - opacity) + tint * opacity).astype(np.uint8)
    return out


class ResultWriter:
    """Writes each segmented image's files into one folder and gathers measurements for a summary.

    Per image: ``<stem>.png`` (0/255 mask, the image's size), ``<stem>.json`` (sidecar), and on
    request ``<stem>_prob.png`` (8-bit probability), ``<stem>_overlay.jpg`` and crack measurements
    under ``quantify/``. A raster segmented window by window (crackrender.geotiff) has GeoTIFFs
    instead, ``<stem>.tif`` and ``<stem>_prob.tif``, and an overlay at most
    :data:`RASTER_OVERLAY_MAX_SIDE` px on its long side. The folder and the GSD are checked when the
    writer is made, before any image is segmented.

    The sidecar is written last and atomically, so its presence says the files it lists were
    written; :meth:`completed` is what ``--resume`` asks.
    """

    def __init__(self, out: str | os.PathLike, *, prob: bool = False, overlay: bool = False, quantify: bool = False,
                 gsd: float | None = None):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"{self.out}: exists and is not a folder")
        self.prob, self.overlay, self.quantify = prob, overlay, quantify
        if quantify:
            from crackrender.quantify import resolve_gsd

            gsd = resolve_gsd(gsd)
        self.gsd = gsd
        self.measured: dict[str, tuple] = {}  # stem -> (measurements, mask file, image file)

    def write(self, stem: str, image: np.ndarray, result: SegmentResult) -> dict:
        """Write one image's outputs; returns its sidecar as written to ``<stem>.json``."""
        self.invalidate(stem)
        write_mask(self.out / f"{stem}.png", result.mask)
        files = {"mask": f"{stem}.png"}
        if self.prob:
            if result.prob is None:
                raise ValueError("this writer saves probability maps: segment with keep_prob=True")
            files["probability"] = f"{stem}_prob.png"
            write_image(self.out / files["probability"], result.prob_uint8())
        if self.overlay:
            files["overlay"] = f"{stem}_overlay.jpg"
            write_image(self.out / files["overlay"], overlay(image, result.mask))
        sidecar = {**result.sidecar, "files": files}
        if self.quantify:
            self._measure(stem, sidecar, result.mask, image, self.gsd, None)
        atomic_write_json(self.out / f"{stem}.json", sidecar)
        return sidecar

    def invalidate(self, stem: str) -> None:
        """Remove ``<stem>.json`` before its files are replaced: an earlier run's sidecar must not
        vouch for files this run has begun to overwrite, should it stop half way."""
        (self.out / f"{stem}.json").unlink(missing_ok=True)

    def raster_paths(self, stem: str) -> tuple[Path, Path | None]:
        """Where a raster's mask GeoTIFF and (with ``prob``) probability GeoTIFF go."""
        return self.out / f"{stem}.tif", (self.out / f"{stem}_prob.tif" if self.prob else None)

    def write_raster(self, stem: str, source: Path, result: SegmentResult, georef) -> dict:
        """The rest of a raster's outputs once :func:`crackrender.geotiff.segment_raster` has written
        its GeoTIFFs at :meth:`raster_paths`: a reduced overlay, measurements, the sidecar."""
        from crackrender.geotiff import RasterReader, raster_gsd, read_mask_raster, read_mask_thumbnail, thumbnail_shape

        mask_path, prob_path = self.raster_paths(stem)
        files = {"mask": mask_path.name}
        if prob_path is not None:
            files["probability"] = prob_path.name
        height, width = result.sidecar["height"], result.sidecar["width"]
        sidecar = {**result.sidecar, "georeference": None if georef is None else georef.to_dict(), "files": files}
        if self.overlay:  # a picture to look at, not a gigapixel JPEG: the GeoTIFF is the result
            h, w = thumbnail_shape(height, width, RASTER_OVERLAY_MAX_SIDE)
            with RasterReader(source) as src:
                picture = src.thumbnail(h, w)
            files["overlay"] = f"{stem}_overlay.jpg"
            write_image(self.out / files["overlay"], overlay(picture, read_mask_thumbnail(mask_path, h, w)))
            sidecar["overlay_scale"] = round(w / width, 6)
        if self.quantify:
            from crackrender.quantify.report import REPORT_PICTURE_MAX_PIXELS

            mask, _ = read_mask_raster(mask_path)
            image = None
            if height * width <= REPORT_PICTURE_MAX_PIXELS:
                with RasterReader(source) as src:
                    image = src(Window(0, 0, height, width))
            self._measure(stem, sidecar, mask, image, raster_gsd(georef, self.gsd, str(source)), georef)
        atomic_write_json(self.out / f"{stem}.json", sidecar)
        return sidecar

    def _measure(self, stem: str, sidecar: dict, mask: np.ndarray, image, gsd, georef) -> None:
        from crackrender.quantify import quantify_mask, write_report

        q = quantify_mask(mask, gsd=gsd, georef=None if georef is None else georef.to_dict())
        write_report(q, self.out / "quantify", stem, image=image)
        self.measured[stem] = (q, self.out / sidecar["files"]["mask"], sidecar.get("image"))
        sidecar["quantify"] = q.summary()

    def completed(self, stem: str, source: Path, settings: dict, gsd: float | None) -> dict | None:
        """The sidecar an earlier run wrote for ``source`` if its outputs are complete, else None.

        Complete means: ``<stem>.json`` parses; it names this very file, written no earlier than
        the file was last changed; its ``settings`` (model, threshold, band, dtype, tiles) equal
        this run's; every file it lists exists and includes each kind this writer is asked for;
        and, with ``quantify``, its measurements (``quantify/<stem>.json``) are at ``gsd`` and
        join the summary again.
        """
        side_path = self.out / f"{stem}.json"
        try:
            side = json.loads(side_path.read_text())
            recorded = Path(side["image"])
            same = recorded.exists() and os.path.samefile(recorded, source)
            fresh = side_path.stat().st_mtime >= source.stat().st_mtime
            files = side["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        wanted = {"mask"} | ({"probability"} if self.prob else set()) | ({"overlay"} if self.overlay else set())
        if not (same and fresh and isinstance(files, dict) and wanted <= files.keys()
                and all(side.get(k, _ADDED_SETTINGS.get(k)) == v for k, v in _json_ready(settings).items())
                and all((self.out / f).is_file() for f in files.values())):
            return None
        if self.quantify:
            from crackrender.quantify import QuantResult

            try:
                q = QuantResult.from_dict(json.loads((self.out / "quantify" / f"{stem}.json").read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                return None
            if "quantify" not in side or q.gsd_mm != gsd:
                return None
            self.measured[stem] = (q, self.out / files["mask"], side.get("image"))
        return side

    def finish(self, order: Sequence[str] | None = None) -> None:
        """With more than one image measured, ``quantify/summary.json`` and ``summary.html``
        (images in ``order`` of stems, when given)."""
        if order is not None:
            self.measured = {s: self.measured[s] for s in order if s in self.measured}
        if len(self.measured) > 1:
            from crackrender.quantify import write_summary

            write_summary({k: v[0] for k, v in self.measured.items()}, self.out / "quantify",
                          {k: (v[1], v[2]) for k, v in self.measured.items()})


# A raster's overlay is reduced to this long side (crackrender.geotiff: rasters may be gigapixels).
RASTER_OVERLAY_MAX_SIDE = 4096


def _json_ready(obj):
    """``obj`` as it reads back from JSON (tuples become lists), so it compares with a sidecar."""
    from crackrender.io import json_default

    return json.loads(json.dumps(obj, default=json_default))


# settings that sidecars gained later, with the value every run before had: an older sidecar still resumes
_ADDED_SETTINGS = {"flips": 1, "scales": [1.0]}


def run_settings(seg: Segmenter) -> dict:
    """The sidecar fields that decide a mask: a resumed image must have been made with these."""
    return {"checkpoint": seg.source, "model": getattr(seg.model, "config", None),
            "dtype": str(seg.dtype).removeprefix("torch."), "alpha": getattr(seg.model, "alpha", None),
            "beta": getattr(seg.model, "beta", None), "threshold": seg.threshold, "tile": seg.tile,
            "overlap": seg.overlap, "straight_lines": seg.straight_lines, "flips": seg.flips,
            "scales": list(seg.scales)}


def _now_or_later(pool, fn, *args) -> Future:
    """``fn(*args)`` on ``pool``, or at once (still as a Future, errors kept in it) without one."""
    if pool is not None:
        return pool.submit(fn, *args)
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except Exception as exc:  # noqa: BLE001 - handed to whoever asks the future, as a pool would
        done.set_exception(exc)
    return done


def segment_paths(inputs: Sequence[str | os.PathLike], checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, *,
                  device: str | None = None, bf16: bool = False, alpha: float | None = None, beta: float | None = None,
                  save_prob: bool = False, save_overlay: bool = False, quantify_gsd: float | None = None,
                  quantify: bool = False, split: str | None = None, progress: bool = True,
                  threshold: float | None = None, resume: bool = False, prefetch: int = 1,
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, straight_lines: int = DEFAULT_MIN_LENGTH,
                  flips: int = 1, scales=(1.0,), max_pixels: int | None = DEFAULT_MAX_PIXELS,
                  backend: str = "torch") -> dict[str, dict]:
    """Segment every image in ``inputs`` (files and folders) into ``out_dir`` (see :class:`ResultWriter`).
    ``backend="onnxruntime"`` runs an exported ``checkpoint`` (.onnx, ``crackrender export``) instead.

    An unreadable image is reported and skipped; the others are still written. ``checkpoint=None``
    uses the shipped model. With ``split``, each input is a dataset folder and only the images its
    ``<split>.txt`` lists are segmented. ``threshold=None`` uses the model file's own threshold;
    ``straight_lines``, ``flips`` and ``scales``: see :class:`Segmenter`.
    GeoTIFFs and TIFFs too large to decode whole run window by window into GeoTIFFs
    (crackrender.geotiff says which).

    ``prefetch`` images are decoded ahead on a thread while the model runs, and each image's files
    are written on another while the next one is segmented (``prefetch=0``: one thing at a time).
    ``resume`` skips the images whose outputs are complete (:meth:`ResultWriter.completed`).

    Returns the sidecars by stem, in input order; a resumed image's is the one on disk, with
    ``"resumed": True`` added to the returned copy.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    from crackrender.data.datasets import split_images
    from crackrender.geotiff import raster_gsd, raster_info, segment_raster, takes_windowed_path
    from crackrender.quantify.core import check_quantify_size

    if prefetch < 0:
        raise InputError(f"prefetch must be 0 or more images, got {prefetch}")
    check_min_length(straight_lines)  # bad settings before any file is looked at
    flips, scales = check_flips(flips), check_scales(scales)
    files = split_images(inputs, split) if split else expand_inputs(inputs, "images")
    paths = list(index_by_stem(files, "inputs").values())
    writer = ResultWriter(out_dir, prob=save_prob, overlay=save_overlay, quantify=quantify, gsd=quantify_gsd)
    rasters = {p: raster_info(p) for p in paths if takes_windowed_path(p, max_pixels)}
    gsds = {p: writer.gsd for p in paths}
    for p, info in rasters.items():  # every raster checked before any image is segmented
        if writer.raster_paths(p.stem)[0].resolve() == p.resolve():
            raise InputError(f"{p}: its mask would overwrite it; choose another --out folder")
        if quantify:
            check_quantify_size(info.height, info.width, str(p))
            gsds[p] = raster_gsd(info.georef, writer.gsd, str(p))
    if backend == "onnxruntime":  # an exported model (crackrender export; docs/deploy.md)
        from crackrender.deploy import onnx_segmenter

        seg = onnx_segmenter(checkpoint, device=device, bf16=bf16, alpha=alpha, beta=beta, threshold=threshold,
                             tile=tile, overlap=overlap, straight_lines=straight_lines, flips=flips,
                             scales=scales)
    elif backend == "torch":
        seg = Segmenter.from_checkpoint(checkpoint, device=device, bf16=bf16, alpha=alpha, beta=beta,
                                        threshold=threshold, tile=tile, overlap=overlap,
                                        straight_lines=straight_lines, flips=flips, scales=scales)
    else:
        raise InputError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
    sidecars: dict[str, dict | None] = {p.stem: None for p in paths}
    todo = []
    settings = run_settings(seg)
    for p in paths:
        done = writer.completed(p.stem, p, settings, gsds[p]) if resume else None
        if done is not None:
            sidecars[p.stem] = {**done, "resumed": True}
        else:
            todo.append(p)

    def load(path: Path) -> np.ndarray | None:
        return None if path in rasters else read_image(path, max_pixels)

    failures: list[str] = []
    with ThreadPoolExecutor(1, thread_name_prefix="decode") as decode_pool, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as write_pool:
        decoder, saver = (decode_pool, write_pool) if prefetch else (None, None)
        queued = iter(todo)
        ahead: deque = deque()  # (path, future of its pixels), at most prefetch + 1
        writing: tuple[str, Future] | None = None  # one image's files being written

        def collect() -> None:  # the last image's files written (its errors raised here)
            nonlocal writing
            if writing is not None:
                sidecars[writing[0]] = writing[1].result()
                writing = None

        for _ in tqdm(range(len(todo)), desc="segment", unit="image", disable=not progress or len(todo) < 2):
            while len(ahead) <= prefetch and (nxt := next(queued, None)) is not None:
                ahead.append((nxt, _now_or_later(decoder, load, nxt)))
            path, pixels = ahead.popleft()
            try:
                if path in rasters:
                    collect()
                    writer.invalidate(path.stem)
                    result, georef = segment_raster(seg, path, *writer.raster_paths(path.stem), progress=progress)
                    job = (writer.write_raster, path.stem, path, result, georef)
                else:
                    image = pixels.result()
                    result = seg(image, source=path, keep_prob=save_prob, progress=progress)
                    job = (writer.write, path.stem, image, result)
            except InputError as exc:
                failures.append(str(exc))
                continue
            collect()  # at most one image waits to be written: memory stays bounded
            writing = (path.stem, _now_or_later(saver, *job))
        collect()
    writer.finish(order=[p.stem for p in paths])
    if failures:
        raise InputError(f"{len(failures)} of {len(paths)} images could not be read (others written): {failures[0]}")
    return {stem: side for stem, side in sidecars.items() if side is not None}
