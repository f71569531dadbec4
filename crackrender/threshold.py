"""The decision threshold a model file carries: chosen on validation splits by a stated rule.

A probability map is thresholded at 0.5 unless the model file says otherwise. ``crackrender
calibrate`` runs a model over validation splits and picks the threshold that maximises the mean
over datasets of the dataset-aggregated F1 of what ``segment`` outputs: each dataset counts once
however many images it has, as in the balanced training mix. In two steps, since the straight-line
filter (crackrender.straight_lines) runs after the threshold and costs a pass per threshold:

1. a histogram of predicted probabilities for crack and for background pixels per dataset scores
   every threshold on a 0.005 grid from one pass, before the filter;
2. with the filter on, the thresholds within 0.15 of that one (0.025 apart) and 0.5 are scored
   again with the filter applied, from the probability maps kept on disk meanwhile. The filter
   removes joints and paint edges that the first step had to threshold away, so the choice can
   move (the v5 candidate: 0.335 before the filter; 0.40 by benchmarks/view_sweep.py's
   filter-aware sweep on a 0.02 grid; docs/model.md, "Tenth launch").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from crackrender.errors import InputError
from crackrender.straight_lines import DEFAULT_MIN_LENGTH, check_min_length

BINS = 200  # thresholds on a 0.005 grid
DEFAULT_THRESHOLD = 0.5
RULE = "maximises the mean over validation datasets of the dataset-aggregated crack F1"
FILTER_RULE = RULE + " after the straight-line filter"
FILTER_STEPS = np.round(np.arange(-0.15, 0.1501, 0.025), 3)  # step 2's thresholds around step 1's


def probability_histograms(prob: np.ndarray, gt: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(2, bins) counts of ``prob`` values on background (row 0) and crack (row 1) pixels.

    Examples:
        >>> h = probability_histograms(np.array([[0.1, 0.9]]), np.array([[False, True]]), bins=4)
        >>> h.tolist()
        [[1, 0, 0, 0], [0, 0, 0, 1]]
    """
    if prob.shape != gt.shape:
        raise InputError(f"probability map {prob.shape} and mask {gt.shape} differ in size")
    index = np.clip((prob.astype(np.float64) * bins).astype(np.int64), 0, bins - 1)
    gt = gt.astype(bool)
    return np.stack([np.bincount(index[~gt], minlength=bins), np.bincount(index[gt], minlength=bins)])


def f1_by_threshold(hist: np.ndarray) -> np.ndarray:
    """F1 for each threshold ``k / bins`` (crack where p >= k / bins), k = 0..bins-1.

    Examples:
        >>> f1_by_threshold(np.array([[3, 1], [0, 2]])).round(3).tolist()
        [0.5, 0.8]
    """
    neg, pos = hist[0].astype(np.float64), hist[1].astype(np.float64)
    tp = pos[::-1].cumsum()[::-1]  # crack pixels at or above each bin
    fp = neg[::-1].cumsum()[::-1]
    fn = pos.sum() - tp
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def choose_threshold(hists: dict[str, np.ndarray]) -> tuple[float, dict[str, float]]:
    """The threshold maximising the mean F1 over datasets (ties: the one nearest 0.5), and each
    dataset's F1 there.

    Examples:
        >>> a = np.array([[90, 5, 0, 0], [0, 0, 3, 2]])   # background low, crack high
        >>> t, f1 = choose_threshold({"a": a})
        >>> t, f1["a"]
        (0.5, 1.0)
    """
    if not hists:
        raise InputError("no validation data to choose a threshold on")
    curves = {name: f1_by_threshold(h) for name, h in hists.items()}
    bins = len(next(iter(curves.values())))
    thresholds = np.arange(bins) / bins
    k = _best(curves, thresholds, DEFAULT_THRESHOLD)
    return float(thresholds[k]), {name: float(c[k]) for name, c in curves.items()}


def _best(curves: dict[str, np.ndarray], thresholds: np.ndarray, prefer: float) -> int:
    """Index of the threshold with the highest mean of the datasets' F1 curves (ties: nearest ``prefer``)."""
    mean = np.mean(list(curves.values()), axis=0)
    best = np.flatnonzero(np.isclose(mean, mean.max(), rtol=0, atol=1e-12))
    return int(best[np.argmin(np.abs(np.asarray(thresholds)[best] - prefer))])


def filter_candidates(t0: float) -> list[float]:
    """Step 2's thresholds: within 0.15 of step 1's ``t0``, 0.025 apart, inside (0, 1), and 0.5.

    Examples:
        >>> filter_candidates(0.9)[-3:], filter_candidates(0.3)[-3:], len(filter_candidates(0.3))
        ([0.925, 0.95, 0.975], [0.425, 0.45, 0.5], 14)
    """
    return sorted({float(round(t0 + d, 4)) for d in FILTER_STEPS if 0 < t0 + d < 1} | {DEFAULT_THRESHOLD})


def choose_filtered_threshold(samples, t0: float, min_length: int) -> tuple[float, dict[str, float], dict[str, float]]:
    """Step 2: among :func:`filter_candidates` of ``t0``, the threshold maximising the mean over
    datasets of the F1 of ``drop_straight_lines(prob >= t, min_length)`` (ties: the one nearest
    ``t0``); with each dataset's F1 there and at 0.5. ``samples``: (dataset, prob, gt) triples."""
    from crackrender.metrics.definitions import f1_curve
    from crackrender.straight_lines import drop_straight_lines

    candidates = filter_candidates(t0)
    counts: dict[str, np.ndarray] = {}
    for name, prob, gt in samples:
        gt = gt.astype(bool)
        c = counts.setdefault(name, np.zeros((len(candidates), 3), np.int64))
        for j, t in enumerate(candidates):
            mask = drop_straight_lines(prob >= t, min_length)
            c[j] += (int((mask & gt).sum()), int((mask & ~gt).sum()), int((~mask & gt).sum()))
    if not counts:
        raise InputError("no validation data to choose a threshold on")
    f1 = {name: f1_curve(*c.T) for name, c in counts.items()}
    k = _best(f1, np.asarray(candidates), t0)
    half = candidates.index(DEFAULT_THRESHOLD)
    return candidates[k], {n: float(v[k]) for n, v in f1.items()}, {n: float(v[half]) for n, v in f1.items()}


def model_threshold(info: dict, flips: int = 1, scales=(1.0,)) -> float:
    """The threshold a model file's info records for these test-time views
    (crackrender.test_time_views; ``calibrate`` with the same views), else its plain threshold, or
    0.5 for files made before thresholds.

    Examples:
        >>> info = {"threshold": 0.34, "view_thresholds": {"flips=2 scales=1": 0.3}}
        >>> model_threshold(info), model_threshold(info, flips=2), model_threshold(info, flips=4)
        (0.34, 0.3, 0.34)
    """
    from crackrender.test_time_views import views_label

    if not isinstance(info, dict):
        return DEFAULT_THRESHOLD
    by_views = info.get("view_thresholds")
    value = by_views.get(views_label(flips, tuple(scales))) if isinstance(by_views, dict) else None
    return check_threshold(info.get("threshold", DEFAULT_THRESHOLD) if value is None else value)


def check_threshold(value) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < t < 1.0:
        raise InputError(f"threshold must lie in (0, 1), got {t}")
    return t


def calibrate(model_path: str | os.PathLike | None, splits: list[tuple[Path, str]], out: str | os.PathLike,
              *, limit: int | None = None, device: str | None = None, progress: bool = True,
              flips: int = 1, scales=(1.0,), straight_lines: int = DEFAULT_MIN_LENGTH) -> dict:
    """Choose the threshold of a model file on ``splits`` ((dataset root, split) pairs) for
    ``segment`` with this straight-line filter (0: off), and write a copy of the model with it in
    its info; returns what was chosen.

    With test-time views (``flips``, ``scales``: crackrender.test_time_views) the threshold is
    chosen on the averaged probabilities and recorded for those views only (info
    ``view_thresholds``), beside the file's plain threshold, which stays as it was."""
    from tqdm import tqdm

    from crackrender.checkpoint import load_model_and_info, save_model
    from crackrender.data.datasets import CrackDataset
    from crackrender.segment import Segmenter
    from crackrender.test_time_views import is_plain, views_label

    min_length = check_min_length(straight_lines)
    # the segmenter's own filter off: step 2 applies it at each threshold
    seg = Segmenter.from_checkpoint(model_path, device=device, flips=flips, scales=scales, straight_lines=0)
    hists: dict[str, np.ndarray] = {}
    # step 2's probability maps wait on disk, not in memory: a val set may be any size
    with tempfile.TemporaryDirectory(prefix="crackrender-calibrate-") as spill:
        kept: list[tuple[str, Path]] = []
        for root, split in splits:
            ds = CrackDataset(root, split)
            index = range(len(ds)) if not limit or len(ds) <= limit else np.linspace(0, len(ds) - 1, limit).round().astype(int)
            name = Path(root).name
            hist = hists.setdefault(name, np.zeros((2, BINS), np.int64))
            for i in tqdm(index, desc=f"{name}:{split}", disable=not progress, leave=False):
                image, mask = ds.load(int(i))
                prob = seg(image).prob_float()  # float32 also for tiled images
                hist += probability_histograms(prob, mask)
                if min_length:
                    kept.append((name, Path(spill) / f"{len(kept)}.npz"))
                    np.savez(kept[-1][1], prob=prob.astype(np.float16), gt=mask.astype(bool))
        t0, f1 = choose_threshold(hists)
        chosen = {"threshold": t0, "threshold_rule": RULE, "threshold_val_f1": f1,
                  "threshold_f1_at_0.5": {n: float(f1_by_threshold(h)[BINS // 2]) for n, h in hists.items()}}
        if min_length:
            # the whole image is filtered at once, where segment filters tile by tile: the same
            # for val images within one tile (all of the six datasets')
            steps = tqdm(_read_kept(kept), total=len(kept), desc="with the filter", disable=not progress, leave=False)
            threshold, f1, at_half = choose_filtered_threshold(steps, t0, min_length)
            chosen = {"threshold": threshold, "threshold_rule": FILTER_RULE, "threshold_val_f1": f1,
                      "threshold_f1_at_0.5": at_half, "threshold_before_filter": t0,
                      "threshold_straight_lines": min_length}
    info = {k: v for k, v in seg.info.items() if k != "half"}
    threshold = chosen["threshold"]
    label = views_label(seg.flips, seg.scales)
    if is_plain(seg.flips, seg.scales):
        record = {**chosen, "threshold_splits": [f"{Path(r).name}:{s}" for r, s in splits]}
    else:  # the plain threshold stays; these views get their own
        record = {"view_thresholds": {**info.get("view_thresholds", {}), label: threshold},
                  "view_thresholds_val_f1": {**info.get("view_thresholds_val_f1", {}), label: chosen["threshold_val_f1"]}}
    # the weights as the file holds them: the segmenter's copy is set up for inference (BatchNorm
    # folded), which no longer matches the architecture's state dict
    model, _ = load_model_and_info(seg.source, device="cpu")
    save_model(out, model, half=seg.info["half"], info={**info, **record})
    return {**chosen, "views": label}


def _read_kept(kept: list[tuple[str, Path]]):
    for name, path in kept:
        with np.load(path) as z:
            yield name, z["prob"], z["gt"]
