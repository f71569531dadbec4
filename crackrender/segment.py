"""Whole-image inference at native resolution: masks, probability maps, overlays, JSON sidecars.

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
from crackrender.io import (atomic_write_json, expand_inputs, index_by_stem, read_image, write_image,
                            write_mask)


@dataclass
class SegmentResult:
    mask: np.ndarray          # (H, W) bool
    prob: np.ndarray          # (H, W) float32, after point refinement
    refined_points: int
    timings: dict[str, float] = field(default_factory=dict)


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

    def __init__(self, model, device: torch.device, *, bf16: bool = False, source: str | None = None):
        self.model, self.device, self.bf16 = model, device, bf16
        self.source = source  # the model file it was loaded from, for sidecars

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | None = None, *, device: str | None = None, bf16: bool = False,
                        alpha: float | None = None, beta: float | None = None) -> "Segmenter":
        """Load a model file; ``path=None`` loads the model shipped with the package."""
        from crackrender.checkpoint import load_model
        from crackrender.weights import default_model_path

        path = default_model_path() if path is None else path
        dev = resolve_device(device)
        overrides = {k: v for k, v in (("alpha", alpha), ("beta", beta)) if v is not None}
        model = load_model(path, device=dev, **overrides)
        if dev.type == "cpu":
            model = model.to(memory_format=torch.channels_last)
        return cls(model, dev, bf16=bf16, source=str(path))

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

    def __call__(self, image: np.ndarray) -> SegmentResult:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        x = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float().div_(255)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            pred = self.model.predict(x, timings=timings)
        mask = pred.mask[0].cpu().numpy()
        prob = pred.prob[0].float().cpu().numpy()
        timings["total"] = time.perf_counter() - start
        return SegmentResult(mask, prob, pred.refined_points[0], timings)


def overlay(image: np.ndarray, mask: np.ndarray, color=(255, 0, 0), opacity: float = 0.6) -> np.ndarray:
    """The photo with crack pixels tinted, for people to look at."""
    out = image.copy()
    tint = np.asarray(color, np.float32)
    out[mask] = (image[mask] * (1 - opacity) + tint * opacity).astype(np.uint8)
    return out


def segment_paths(inputs: Sequence[str | os.PathLike], checkpoint: str | os.PathLike | None, out_dir: str | os.PathLike, *,
                  device: str | None = None, bf16: bool = False, alpha: float | None = None, beta: float | None = None,
                  save_prob: bool = False, save_overlay: bool = False, quantify_gsd: float | None = None,
                  quantify: bool = False, split: str | None = None, progress: bool = True) -> dict[str, dict]:
    """Segment every image in ``inputs`` (files and folders) into ``out_dir``.

    Writes ``<stem>.png`` (0/255 mask, same size as the image), ``<stem>.json`` (sidecar), and
    optionally ``<stem>_prob.png`` (8-bit probability) and ``<stem>_overlay.jpg``. With ``quantify``
    also crack measurements under ``out_dir/quantify``. An unreadable image is reported and
    skipped; the others are still written. ``checkpoint=None`` uses the shipped model. With
    ``split``, each input is a dataset folder and only the images its ``<split>.txt`` lists are
    segmented. Returns the sidecars by stem.
    """
    from tqdm import tqdm

    from crackrender.data.datasets import split_images

    files = split_images(inputs, split) if split else expand_inputs(inputs, "images")
    paths = list(index_by_stem(files, "inputs").values())
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if quantify:
        from crackrender.quantify import quantify_mask, resolve_gsd, write_report, write_summary

        quantify_gsd = resolve_gsd(quantify_gsd)  # a bad GSD fails before anything is written
    seg = Segmenter.from_checkpoint(checkpoint, device=device, bf16=bf16, alpha=alpha, beta=beta)
    quant_results, quant_sources, failures, sidecars = {}, {}, [], {}
    for path in tqdm(paths, desc="segment", unit="image", disable=not progress or len(paths) < 2):
        try:
            image = read_image(path)
        except InputError as exc:
            failures.append(str(exc))
            continue
        result = seg(image)
        write_mask(out / f"{path.stem}.png", result.mask)
        files = {"mask": f"{path.stem}.png"}
        if save_prob:
            files["probability"] = f"{path.stem}_prob.png"
            write_image(out / files["probability"], np.round(result.prob * 255).astype(np.uint8))
        if save_overlay:
            files["overlay"] = f"{path.stem}_overlay.jpg"
            write_image(out / files["overlay"], overlay(image, result.mask))
        sidecar = {
            "image": str(path),
            "width": image.shape[1],
            "height": image.shape[0],
            "checkpoint": seg.source,
            "model": seg.model.config,
            "device": str(seg.device),
            "dtype": str(seg.dtype).removeprefix("torch."),
            "alpha": getattr(seg.model, "alpha", None),  # only CBPRN refines an [alpha, beta] band
            "beta": getattr(seg.model, "beta", None),
            "refined_points": result.refined_points,
            "crack_pixels": int(result.mask.sum()),
            "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
            "files": files,
        }
        if quantify:
            q = quantify_mask(result.mask, gsd=quantify_gsd)
            write_report(q, out / "quantify", path.stem, image=image)
            quant_results[path.stem], quant_sources[path.stem] = q, (out / files["mask"], path)
            sidecar["quantify"] = q.summary()
        atomic_write_json(out / f"{path.stem}.json", sidecar)
        sidecars[path.stem] = sidecar
    if quantify and len(quant_results) > 1:
        write_summary(quant_results, out / "quantify", quant_sources)
    if failures:
        raise InputError(f"{len(failures)} of {len(paths)} images could not be read (others written): {failures[0]}")
    return sidecars
