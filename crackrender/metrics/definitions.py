"""Metrics for binary crack masks: the exact definitions of docs/design.md, "Metrics".

Pure numpy/OpenCV functions on (H, W) masks (crack = True). Scoring a dataset (per-image
means and summed-count aggregates) lives in :mod:`crackrender.metrics.rows`.

Zero denominators (one rule for every ratio metric): a metric whose denominator is 0 is 1.0
when the prediction equals the ground truth exactly (FP = FN = 0) and 0.0 otherwise. So for
an empty ground truth and an empty prediction, crack IoU = F1 = precision = recall = 1; an
empty prediction on a cracked image has precision 0 (and recall 0); any prediction on a
crack-free image has recall 0. The same rule applies to the aggregate counts and to Boundary
IoU. mBA is undefined (``None``) when the ground truth's band is empty: no crack, or all crack.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping, NamedTuple

import cv2
import numpy as np

from crackrender.errors import InputError

METRIC_NAMES = ("iou", "background_iou", "miou", "f1", "precision", "recall", "mba", "boundary_iou")
MBA_STEPS = 5
DEFAULT_THRESHOLDS = np.arange(1, 100) / 100.0  # 0.01 .. 0.99, each the nearest double to k/100


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.ndim != 2 or gt.ndim != 2:
        raise InputError(f"masks must be 2-D, got prediction {pred.shape} and ground truth {gt.shape}")
    if pred.shape != gt.shape:
        raise InputError(f"prediction size {pred.shape[1]}x{pred.shape[0]} does not match ground truth {gt.shape[1]}x{gt.shape[0]}")
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)


def _ratio(num: float, den: float, exact: bool) -> float:
    return float(num) / float(den) if den else (1.0 if exact else 0.0)


def confusion(pred, gt) -> dict[str, int]:
    """Pixel counts ``tp, fp, fn, tn`` of a binary prediction against a binary ground truth.

    Examples:
        >>> confusion(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]))
        {'tp': 1, 'fp': 1, 'fn': 1, 'tn': 1}
    """
    pred, gt = _pair(pred, gt)
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(gt)) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(gt.size) - tp - fp - fn}


def scores(counts: Mapping[str, float]) -> dict[str, float]:
    """Crack IoU, background IoU, mIoU, F1 (= Dice), precision and recall from confusion counts.

    Zero denominators follow the module's rule (1.0 if FP = FN = 0, else 0.0).

    Examples:
        >>> s = scores({"tp": 3, "fp": 1, "fn": 2, "tn": 10})
        >>> s["iou"], s["f1"], s["precision"], s["recall"]
        (0.5, 0.6666666666666666, 0.75, 0.6)
    """
    tp, fp, fn, tn = (counts[k] for k in ("tp", "fp", "fn", "tn"))
    exact = fp == 0 and fn == 0
    iou = _ratio(tp, tp + fp + fn, exact)
    bg = _ratio(tn, tn + fp + fn, exact)
    return {
        "iou": iou,
        "background_iou": bg,
        "miou": (iou + bg) / 2,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, exact),
        "precision": _ratio(tp, tp + fp, exact),
        "recall": _ratio(tp, tp + fn, exact),
    }


# ------------------------------------------------------------------ mBA (CascadePSP)


def mba_radii(h: int, w: int) -> list[int]:
    """The 5 disk radii of CascadePSP's boundary accuracy for an h x w image.

    Computed exactly as CascadePSP's ``compute_boundary_acc``:
    ``1 + int((max_radius - 1) / 5 * i)`` with ``max_radius = (h + w) / 300``. This equals
    DESIGN's ``1 + floor(((h + w)/300 - 1) * i / 5)`` except (a) when h + w < 300, where
    ``int`` truncates towards 0 (radius 1) and floor would give radius 0, and (b) at a few
    sizes (h + w = 3800, 7300, ...) where the float order of operations lands just below an
    integer (3800, i = 3: 7 here, 8 in exact arithmetic). We keep CascadePSP's numbers.

    Examples:
        >>> mba_radii(384, 544), mba_radii(1536, 2048), mba_radii(256, 256)
        ([1, 1, 1, 2, 2], [1, 3, 5, 7, 9], [1, 1, 1, 1, 1])
    """
    max_radius = (w + h) / 300
    return [1 + int((max_radius - 1) / MBA_STEPS * i) for i in range(MBA_STEPS)]


@lru_cache(maxsize=64)
def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def boundary_accuracy_counts(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Per step i of mBA: (pixels of band_i where pred == gt, pixels in band_i), int64 arrays of 5.

    band_i = dilate(gt, disk r_i) minus erode(gt, disk r_i) (OpenCV's morphological gradient,
    whose default border leaves pixels outside the image out of both operations).
    """
    pred, gt = _pair(pred, gt)
    gt8 = np.ascontiguousarray(gt).view(np.uint8)
    correct = np.zeros(MBA_STEPS, np.int64)
    band = np.zeros(MBA_STEPS, np.int64)
    done: dict[int, tuple[int, int]] = {}  # radii repeat on small images
    for i, r in enumerate(mba_radii(*gt.shape)):
        if r not in done:
            region = cv2.morphologyEx(gt8, cv2.MORPH_GRADIENT, _disk(r)) > 0
            n = int(np.count_nonzero(region))
            done[r] = (n - int(np.count_nonzero(pred[region] ^ gt[region])), n)
        correct[i], band[i] = done[r]
    return correct, band


def boundary_accuracy(pred, gt) -> float | None:
    """CascadePSP's boundary accuracy of one image: the mean over 5 radii of the accuracy in
    the ground truth's boundary band. mBA is the mean of this over images.

    Returns ``None`` when the band is empty, i.e. the ground truth has no crack pixel or is
    crack everywhere (CascadePSP would divide by zero); such images are skipped for mBA.

    Examples:
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> boundary_accuracy(gt, gt), boundary_accuracy(np.zeros_like(gt), gt)
        (1.0, 0.5714285714285714)
    """
    correct, band = boundary_accuracy_counts(pred, gt)
    if not band.all():
        return None  # a non-empty band for one radius implies one for every radius
    return float(np.mean(correct / band))


# ------------------------------------------------------------------ Boundary IoU (Cheng et al. 2021)


def default_boundary_d(h: int, w: int, ratio: float = 0.005) -> int:
    """Boundary IoU's band width: ``max(1, round(ratio * diagonal))`` as in boundary-iou-api."""
    return max(1, int(round(ratio * float(np.sqrt(h * h + w * w)))))


def boundary_band(mask, d: int) -> np.ndarray:
    """Inner boundary of width d: the mask minus its erosion by a 3x3 square iterated d times,
    on a zero-padded mask so that a mask cut by the image border has a boundary there too."""
    m = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=int(d))[1:-1, 1:-1]
    return m.astype(bool) & (eroded == 0)


def boundary_iou_counts(pred, gt, d: int | None = None) -> tuple[int, int, int]:
    """(|Pb and Gb|, |Pb or Gb|, d) for Boundary IoU of the crack class."""
    pred, gt = _pair(pred, gt)
    d = default_boundary_d(*gt.shape) if d is None else int(d)
    if d < 1:
        raise InputError(f"boundary IoU width d must be >= 1, got {d}")
    pb, gb = boundary_band(pred, d), boundary_band(gt, d)
    return int(np.count_nonzero(pb & gb)), int(np.count_nonzero(pb | gb)), d


def boundary_iou(pred, gt, d: int | None = None) -> tuple[float, int]:
    """Boundary IoU of the crack class and the width d used (default: 0.5% of the diagonal).

    Both masks empty (empty union) gives 1.0; the reference implementation divides by zero.

    Examples:
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> boundary_iou(np.roll(gt, 1, axis=1), gt, d=1)
        (0.3333333333333333, 1)
    """
    inter, union, d = boundary_iou_counts(pred, gt, d)
    return _ratio(inter, union, True), d


# ------------------------------------------------------------------ ODS / OIS


class SweepCounts(NamedTuple):
    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def binarize(prob, threshold: float) -> np.ndarray:
    """Prediction mask ``prob >= threshold``, compared in float64 like :func:`threshold_sweep`."""
    return np.asarray(prob, dtype=np.float64) >= float(threshold)


def threshold_sweep(prob, gt, thresholds=None) -> SweepCounts:
    """TP, FP, FN of ``prob >= t`` for every threshold t, in one pass over the pixels.

    Each pixel's index among the sorted thresholds (``searchsorted``) is histogrammed separately
    for crack and background pixels; reverse cumulative sums give the counts for every threshold.
    A bool ``prob`` is a mask taken as probabilities 0 and 1 (counted directly, no search).

    Examples:
        >>> s = threshold_sweep(np.array([[0.9, 0.4, 0.2]]), np.array([[1, 1, 0]]), [0.3, 0.5])
        >>> s.tp.tolist(), s.fp.tolist(), s.fn.tolist()
        ([2, 1], [0, 0], [0, 1])
    """
    thr = np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, dtype=np.float64).ravel()
    if np.asarray(prob).dtype == np.bool_:  # a binary mask as probabilities 0/1: no per-pixel search
        c = confusion(prob, gt)
        n_pos, n_neg = c["tp"] + c["fn"], c["fp"] + c["tn"]
        tp = np.where(thr <= 0, n_pos, np.where(thr <= 1, c["tp"], 0))
        fp = np.where(thr <= 0, n_neg, np.where(thr <= 1, c["fp"], 0))
        return SweepCounts(thr, tp.astype(np.int64), fp.astype(np.int64), n_pos - tp.astype(np.int64))
    p = np.asarray(prob, dtype=np.float64)
    _, g = _pair(p, gt)
    if not (np.all(p >= 0) and np.all(p <= 1)):  # also rejects NaN
        raise InputError("probability map must hold values in [0, 1]")
    order = np.argsort(thr, kind="stable")
    n = len(thr)
    k = np.searchsorted(thr[order], p.ravel(), side="right")  # the pixel is crack for sorted thr[:k]
    g = g.ravel()
    tail_pos = np.bincount(k[g], minlength=n + 1)[::-1].cumsum()[::-1]  # [j] = sum over k >= j
    tail_neg = np.bincount(k[~g], minlength=n + 1)[::-1].cumsum()[::-1]
    tp, fp = np.empty(n, np.int64), np.empty(n, np.int64)
    tp[order], fp[order] = tail_pos[1:], tail_neg[1:]
    return SweepCounts(thr, tp, fp, int(np.count_nonzero(g)) - tp)


def f1_curve(tp, fp, fn) -> np.ndarray:
    """F1 per threshold from count arrays, with the module's zero-denominator rule."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    den = 2 * tp + fp + fn
    exact = (fp == 0) & (fn == 0)
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), np.where(exact, 1.0, 0.0))


def best_f1(sweep: SweepCounts) -> tuple[float, float]:
    """(best F1, its threshold); ties go to the first threshold in the sweep's order."""
    f1 = f1_curve(sweep.tp, sweep.fp, sweep.fn)
    j = int(np.argmax(f1))
    return float(f1[j]), float(sweep.thresholds[j])
