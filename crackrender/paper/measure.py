"""Score a trained row on the test splits and time it on a high-resolution image.

Accuracy uses the project's metrics exactly as ``crackrender evaluate`` and training validation
report them (count rows scored by :func:`crackrender.metrics.score_rows`): mIoU, crack IoU and
Dice from TP/FP/FN/TN summed over all test images ("aggregate"), mBA as the mean over images
(CascadePSP's mBA).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from crackrender.data.datasets import CrackDataset
from crackrender.metrics import count_row, score_groups, score_rows


@dataclass
class TestSet:
    name: str
    dataset: CrackDataset
    indices: list[int]


def load_test_sets(entries, limit: int | None) -> list[TestSet]:
    """``entries``: (name, root, split); ``limit``: at most this many images per set, evenly spaced."""
    sets = []
    for name, root, split in entries:
        ds = CrackDataset(root, split)
        n = len(ds)
        if limit is None or n <= limit:
            indices = list(range(n))
        else:
            indices = np.linspace(0, n - 1, limit).round().astype(int).tolist()
        sets.append(TestSet(name, ds, indices))
    return sets


def to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1] on ``device``."""
    return torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float().div_(255)


def _numbers(summary: dict) -> dict:
    m = summary["metrics"]
    return {"miou": m["miou"]["aggregate"], "iou": m["iou"]["aggregate"], "dice": m["f1"]["aggregate"],
            "mba": m["mba"]["per_image_mean"], "n_images": summary["n_images"], "mba_skipped": summary["mba_skipped"]}


def evaluate_model(model, test_sets: list[TestSet], device: torch.device, *, predict: dict | None = None,
                   coarse: bool = False, desc: str = "evaluating", progress: bool = True) -> dict:
    """``{"all": numbers, "per_dataset": {name: numbers}}`` where numbers are miou, iou, dice, mba
    (fractions), n_images, mba_skipped; with ``coarse`` also ``coarse_*`` keys from
    ``predict(refine=False)``. ``all`` pools every test set's images."""
    predict = predict or {}
    kinds = {"": dict(predict)}
    if coarse:
        kinds["coarse_"] = {**predict, "refine": False}
    rows = {k: [] for k in kinds}  # one count row per image, its test set's index as the group
    items = [(g, t, i) for g, t in enumerate(test_sets) for i in t.indices]
    with torch.inference_mode():
        for g, t, i in tqdm(items, desc=desc, unit="img", file=sys.stderr, disable=not progress, dynamic_ncols=True,
                            leave=False):
            image, gt = t.dataset.load(i)
            x = to_tensor(image, device)
            for prefix, kwargs in kinds.items():
                mask = model.predict(x, **kwargs).mask[0].cpu().numpy()
                rows[prefix].append(count_row(mask, gt, group=g))
    pooled = {prefix: score_rows(r) for prefix, r in rows.items()}
    grouped = {prefix: score_groups(r) for prefix, r in rows.items()}

    def merged(summaries: dict) -> dict:
        out = {}
        for prefix, summary in summaries.items():  # "" first, then "coarse_"; both score the same images
            out.update({(k if k == "n_images" else prefix + k): v for k, v in _numbers(summary).items()})
        return out

    per_dataset = {t.name: merged({p: grouped[p][g] for p in kinds}) for g, t in enumerate(test_sets)}
    return {"all": merged(pooled), "per_dataset": per_dataset}


def measure_fps(model, image: np.ndarray, device: torch.device, *, predict: dict | None = None,
                warmup: int = 2, repeats: int = 10) -> dict:
    """Frames per second of ``model.predict`` on one image already on the device, the mask
    brought back to the host; median of ``repeats`` timed runs after ``warmup`` untimed ones,
    CUDA synchronised around each."""
    x = to_tensor(image, device)
    times, refined = [], 0
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            pred = model.predict(x, **(predict or {}))
            pred.mask.cpu()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
            refined = int(pred.refined_points[0])
    median = statistics.median(times)
    return {"fps": 1.0 / median, "median_s": median, "times_s": times, "refined_points": refined,
            "refined": refined / float(image.shape[0] * image.shape[1])}
