"""Whole-image inference at native resolution: masks, probability maps, overlays, JSON sidecars.

:class:`Segmenter` turns one image in memory into a :class:`SegmentResult` (mask, probability,
timings, sidecar); :class:`ResultWriter` writes a result's files; :func:`segment_paths` is the
loop ``crackrender segment`` runs: read each file, segment it, write it.

From Python::

    from crackrender.segment import Segmenter
    seg = Segmenter.from_checkpoint("model.safetensors")
    result = seg(read_image("bridge.jpg"))      # result.mask: (H, W) bool, same size as the image
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from crackrender.errors import CrackRenderError, InputError
from crackrender.inference import image_to_tensor, prepare_model
from crackrender.threshold import DEFAULT_THRESHOLD, check_threshold, model_threshold
from crackrender.io import (atomic_write_json, expand_inputs, index_by_stem, read_image, write_image,
                            write_mask)


@dataclass
class SegmentResult:
    """One image segmented: the mask, what produced it, and the sidecar that records it."""
    mask: np.ndarray              # (H, W) bool, the image's size
    prob: np.ndarray | None       # (H, W) float32 after point refinement; None when not kept
    refined_points: int
    timings: dict[str, float] = field(default_factory=dict)
    sidecar: dict = field(default_factory=dict)  # what <stem>.json records, less the files written


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
    """A loaded model plus its inference settings; call it on (H, W, 3) uint8 RGB arrays."""

    def __init__(self, model, device: torch.device, *, bf16: bool = False, source: str | None = None,
                 threshold: float = DEFAULT_THRESHOLD):
        self.model, self.device, self.bf16 = model, device, bf16
        self.source = source  # the model file it was loaded from, for sidecars
        self.threshold = check_threshold(threshold)
        self.info: dict = {}  # the model file's info, when loaded from one

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, *, device: str | None = None, bf16: bool = False,
                        alpha: float | None = None, beta: float | None = None,
                        threshold: float | None = None) -> "Segmenter":
        """Load a model file; ``path=None`` loads the model shipped with the package. The decision
        threshold is the file's own (``crackrender calibrate``; 0.5 for files without one) unless
        ``threshold`` is given."""
        from crackrender.checkpoint import load_model_and_info
        from crackrender.weights import default_model_path

        path = default_model_path() if path is None else path
        dev = resolve_device(device)
        overrides = {k: v for k, v in (("alpha", alpha), ("beta", beta)) if v is not None}
        threshold = None if threshold is None else check_threshold(threshold)  # bad input before the load
        model, info = load_model_and_info(path, device=dev, **overrides)
        seg = cls(prepare_model(model, dev), dev, bf16=bf16, source=str(path),
                  threshold=model_threshold(info) if threshold is None else threshold)
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
                 keep_prob: bool = True) -> SegmentResult:
        """Segment one (H, W, 3) uint8 RGB image; ``source`` (its file) goes into the sidecar.
        ``keep_prob=False`` skips copying the probability map off the device."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        x = image_to_tensor(image, self.device)
        with torch.inference_mode(), self._autocast():
            pred = self.model.predict(x, timings=timings)
        # the models decide at p > 0.5; a calibrated threshold decides on the same probabilities
        mask = (pred.mask[0] if self.threshold == DEFAULT_THRESHOLD else pred.prob[0] >= self.threshold).cpu().numpy()
        prob = pred.prob[0].float().cpu().numpy() if keep_prob else None
        timings["total"] = time.perf_counter() - start
        refined = pred.refined_points[0]
        return SegmentResult(mask, prob, refined, timings, self._sidecar(image, source, mask, refined, timings))

    def _sidecar(self, image, source, mask, refined, timings) -> dict:
        return {
            "image": None if source is None else str(source),
            "width": image.shape[1],
            "height": image.shape[0],
            "checkpoint": self.source,
            "model": getattr(self.model, "config", None),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "alpha": getattr(self.model, "alpha", None),  # only CBPRN refines an [alpha, beta] band
            "beta": getattr(self.model, "beta", None),
            "threshold": self.threshold,
            "refined_points": refined,
            "crack_pixels": int(mask.sum()),
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
    under ``quantify/``. The folder and the GSD are checked when the writer is made, before any
    image is segmented.
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
        write_mask(self.out / f"{stem}.png", result.mask)
        files = {"mask": f"{stem}.png"}
        if self.prob:
            if result.prob is None:
                raise ValueError("this writer saves probability maps: segment with keep_prob=True")
            files["probability"] = f"{stem}_prob.png"
            write_image(self.out / files["probability"], np.round(result.prob * 255).astype(np.uint8))
        if self.overlay:
            files["overlay"] = f"{stem}_overlay.jpg"
            write_image(self.out / files["overlay"], overlay(image, result.mask))
        sidecar = {**result.sidecar, "files": files}
        if self.quantify:
            from crackrender.quantify import quantify_mask, write_report

            q = quantify_mask(result.mask, gsd=self.gsd)
            write_report(q, self.out / "quantify", stem, image=image)
            self.measured[stem] = (q, self.out / files["mask"], sidecar.get("image"))
            sidecar["quantify"] = q.summary()
        atomic_write_json(self.out / f"{stem}.json", sidecar)
        return sidecar

    def finish(self) -> None:
        """With more than one image measured, ``quantify/summary.json`` and ``summary.html``."""
        if len(self.measured) > 1:
            from crackrender.quantify import write_summary

            write_summary({k: v[0] for k, v in self.measured.items()}, self.out / "quantify",
                          {k: (v[1], v[2]) for k, v in self.measured.items()})


def segment_paths(inputs: Sequence[str | os.PathLike], checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, *,
                  device: str | None = None, bf16: bool = False, alpha: float | None = None, beta: float | None = None,
                  save_prob: bool = False, save_overlay: bool = False, quantify_gsd: float | None = None,
                  quantify: bool = False, split: str | None = None, progress: bool = True,
                  threshold: float | None = None) -> dict[str, dict]:
    """Segment every image in ``inputs`` (files and folders) into ``out_dir`` (see :class:`ResultWriter`).

    An unreadable image is reported and skipped; the others are still written. ``checkpoint=None``
    uses the shipped model. With ``split``, each input is a dataset folder and only the images its
    ``<split>.txt`` lists are segmented. ``threshold=None`` uses the model file's own threshold.
    Returns the sidecars by stem.
    """
    from tqdm import tqdm

    from crackrender.data.datasets import split_images

    files = split_images(inputs, split) if split else expand_inputs(inputs, "images")
    paths = list(index_by_stem(files, "inputs").values())
    writer = ResultWriter(out_dir, prob=save_prob, overlay=save_overlay, quantify=quantify, gsd=quantify_gsd)
    seg = Segmenter.from_checkpoint(checkpoint, device=device, bf16=bf16, alpha=alpha, beta=beta, threshold=threshold)
    failures, sidecars = [], {}
    for path in tqdm(paths, desc="segment", unit="image", disable=not progress or len(paths) < 2):
        try:
            image = read_image(path)
        except InputError as exc:
            failures.append(str(exc))
            continue
        sidecars[path.stem] = writer.write(path.stem, image, seg(image, source=path, keep_prob=save_prob))
    writer.finish()
    if failures:
        raise InputError(f"{len(failures)} of {len(paths)} images could not be read (others written): {failures[0]}")
    return sidecars
