"""``crackrender demo``: a synthetic high-resolution crack scene, segmented by the shipped model,
measured, and scored against its exact ground truth -- the whole tool in one command, offline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crackrender.data.synthetic import render_crack_scene
from crackrender.errors import InputError
from crackrender.io import DEFAULT_MAX_PIXELS, atomic_write_json, check_pixels, write_image, write_mask
from crackrender.metrics import boundary_accuracy, confusion, scores
from crackrender.tiling import DEFAULT_OVERLAP, DEFAULT_TILE

# error map colours: found crack, false alarm, missed crack
_HIT, _FALSE, _MISSED = (0, 200, 0), (255, 40, 40), (40, 120, 255)


def error_map(image: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The photo, dimmed, with correct crack pixels green, false alarms red and misses blue."""
    out = (image.astype(np.float32) * 0.5).astype(np.uint8)
    out[pred & truth] = _HIT
    out[pred & ~truth] = _FALSE
    out[~pred & truth] = _MISSED
    return out


def run_demo(out: str | os.PathLike = "crackrender-demo", *, width: int = 2048, height: int = 1536, seed: int = 0,
             surface: str = "concrete", gsd: float = 0.2, checkpoint: str | os.PathLike | None = None,
             device: str | None = None, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
             max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """Render, segment, measure and score one scene into ``out``; returns the summary it writes
    to ``out/demo.json``. ``gsd`` (mm per pixel) puts the measurements in millimetres. A scene of
    more than ``max_pixels`` pixels is refused before it is rendered; ``tile`` and ``overlap``: see
    :class:`~crackrender.segment.Segmenter`."""
    from crackrender.segment import ResultWriter, Segmenter

    out = Path(out)
    # checks the folder and the GSD before anything is written
    writer = ResultWriter(out, prob=True, overlay=True, quantify=True, gsd=gsd)
    if min(width, height) < 64:
        raise InputError(f"demo scene must be at least 64x64 pixels, got {width}x{height}")
    check_pixels("demo scene", width, height, max_pixels)
    try:
        scene = render_crack_scene(width, height, seed=seed, surface=surface)
    except ValueError as exc:  # e.g. an unknown surface: the user's input, so one line
        raise InputError(str(exc)) from None
    seg = Segmenter.from_checkpoint(checkpoint, device=device, tile=tile, overlap=overlap)
    # a lossless record of exactly the pixels the model is given (from memory, below)
    source = write_image(out / "input" / "scene.png", scene.image)
    write_mask(out / "truth.png", scene.mask)
    result = seg(scene.image, source=source)
    sidecar = writer.write("scene", scene.image, result)
    pred = result.mask
    write_image(out / "scene_errors.png", error_map(scene.image, pred, scene.mask))
    summary = {
        "scene": {"width": width, "height": height, "seed": seed, "surface": surface, "gsd_mm": gsd,
                  "true_max_widths_px": [round(c["width"], 2) for c in scene.cracks]},
        "accuracy": {**{k: round(v, 4) for k, v in scores(confusion(pred, scene.mask)).items()},
                     "mba": round(float(boundary_accuracy(pred, scene.mask) or float("nan")), 4)},
        "segment": {k: sidecar[k] for k in ("checkpoint", "device", "refined_points", "crack_pixels", "timings_s")},
        "measured": sidecar.get("quantify"),
        "files": {"input": "input/scene.png", "truth": "truth.png", "mask": "scene.png",
                  "overlay": "scene_overlay.jpg", "probability": "scene_prob.png", "errors": "scene_errors.png",
                  "report": "quantify/scene_report.html"},
    }
    atomic_write_json(out / "demo.json", summary)
    return summary
