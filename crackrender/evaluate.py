"""Evaluate a folder of predictions against a folder of ground-truth masks.

Files pair by stem: the ground truth ``<stem>.<ext>`` matches a prediction ``<stem>.<ext>`` or
``<stem>_mask.<ext>``. A prediction file holding only binary values is a mask; anything else
is read as a probability map (8 or 16 bit gray), thresholded for the mask metrics and swept for
ODS/OIS. See :mod:`crackrender.metrics` for the definitions and zero-denominator conventions.
With a folder of distractor masks (the false-alarm benchmark's ``distractors/``), it also reports
how much of the distractors and of the image is predicted crack (:mod:`crackrender.false_alarm`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from crackrender.errors import InputError
from crackrender.false_alarm import false_alarm_counts, false_alarm_scores, format_false_alarms
from crackrender.io import (DEFAULT_MAX_PIXELS, binarize_mask, index_by_stem, list_images, probability_from_array,
                            read_image_array, read_mask)
from crackrender.metrics import METRIC_NAMES, MetricAccumulator, binarize

PRED_SUFFIXES = ("", "_mask")  # accepted endings of a prediction's stem, after the GT stem
LABELS = {
    "iou": "IoU (crack)",
    "background_iou": "IoU (background)",
    "miou": "mIoU",
    "f1": "F1 / Dice",
    "precision": "Precision",
    "recall": "Recall",
    "mba": "mBA",
    "boundary_iou": "Boundary IoU",
}


def match_files(pred_dir, gt_dir) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """Pair predictions with ground-truth masks by file stem.

    Returns ``(pairs, unmatched_pred, unmatched_gt)``: ``pairs`` is a list of
    ``(stem, pred_path, gt_path)`` sorted by stem; the unmatched lists hold file names.
    An exact stem match wins over a ``_mask`` one. Raises :class:`InputError` for an empty
    folder, when nothing pairs, or when two predictions claim the same ground truth.

    Examples:
        >>> pairs, extra_pred, extra_gt = match_files("runs/pred", "data/masks")  # doctest: +SKIP
        >>> pairs[0]  # doctest: +SKIP
        ('11111', PosixPath('runs/pred/11111_mask.png'), PosixPath('data/masks/11111.png'))
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    preds, gts = list_images(pred_dir), list_images(gt_dir)
    for folder, files in ((pred_dir, preds), (gt_dir, gts)):
        if not files:
            raise InputError(f"{folder}: no image files found")
    gt_by_stem = index_by_stem(gts, gt_dir)
    claimed: dict[str, Path] = {}
    unmatched_pred = []
    for p in preds:
        key = next((p.stem[: len(p.stem) - len(s)] for s in PRED_SUFFIXES
                    if p.stem.endswith(s) and p.stem[: len(p.stem) - len(s)] in gt_by_stem), None)
        if key is None:
            unmatched_pred.append(p.name)
        elif key in claimed:
            raise InputError(f"{pred_dir}: {claimed[key].name} and {p.name} both match ground truth {gt_by_stem[key].name}")
        else:
            claimed[key] = p
    if not claimed:
        raise InputError(
            f"no prediction in {pred_dir} matches a ground truth in {gt_dir} by name "
            f"(e.g. {preds[0].name} vs {gts[0].name}; expected <stem>.png or <stem>_mask.png)"
        )
    pairs = [(k, claimed[k], gt_by_stem[k]) for k in sorted(claimed)]
    unmatched_gt = sorted(p.name for k, p in gt_by_stem.items() if k not in claimed)
    return pairs, sorted(unmatched_pred), unmatched_gt


def read_prediction(path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """(mask, probability or None): a binary-valued file is a mask, anything else a probability map.

    The file is decoded once; its values decide which it is. Files over ``max_pixels`` are refused.
    """
    arr = read_image_array(path, max_pixels)
    try:
        return binarize_mask(arr, str(path)), None
    except InputError:
        pass  # not binary: a probability map, whose conversion reports its own errors
    return None, probability_from_array(arr, str(path))


def _distractor_masks(folder, stems) -> dict[str, Path]:
    """The distractor mask of every matched stem, by stem; a missing one is an error."""
    by_stem = index_by_stem(list_images(folder), folder)
    missing = [s for s in stems if s not in by_stem]
    if missing:
        raise InputError(f"{folder}: no distractor mask for {len(missing)} of {len(stems)} images "
                         f"(e.g. {missing[0]}; expected <stem>.png as the ground truth is named)")
    return by_stem


def evaluate_folders(pred_dir, gt_dir, *, threshold: float = 0.5, boundary_d: int | None = None,
                     progress: bool = True, distractors_dir=None, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """Score every matched prediction against its ground truth; see the module docstring.

    ``threshold``: probability maps give the mask ``prob >= threshold``. ``boundary_d``:
    Boundary IoU's band width in pixels; None uses each image's 0.5% of its diagonal.
    ODS/OIS are reported when at least one prediction is a probability map; binary files
    then enter the sweep as probabilities 0 and 1 (a crack-free image's saturated map is
    binary too). With binary masks only, they are omitted with a note. ``distractors_dir``: masks
    of distractor pixels by stem; adds ``result["false_alarm"]`` and per-image false-alarm counts.
    ``max_pixels``: files larger than this are refused from their header (None or 0: no limit).

    Examples:
        >>> result = evaluate_folders("runs/pred", "data/masks", progress=False)  # doctest: +SKIP
        >>> result["summary"]["miou"]  # doctest: +SKIP
        {'per_image_mean': 0.81, 'aggregate': 0.79}
    """
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold must be in [0, 1], got {threshold}")
    pairs, unmatched_pred, unmatched_gt = match_files(pred_dir, gt_dir)
    acc = MetricAccumulator(boundary_d=boundary_d)
    distractor_masks = None if distractors_dir is None else _distractor_masks(distractors_dir, [p[0] for p in pairs])
    n_prob = 0
    for stem, pred_path, gt_path in tqdm(pairs, desc="evaluating", unit="img", file=sys.stderr,
                                         disable=not progress, dynamic_ncols=True):
        gt = read_mask(gt_path, max_pixels)
        mask, prob = read_prediction(pred_path, max_pixels)
        shape = (mask if prob is None else prob).shape
        if shape != gt.shape:
            raise InputError(f"{pred_path}: size {shape[1]}x{shape[0]} does not match ground truth "
                             f"{gt_path} ({gt.shape[1]}x{gt.shape[0]})")
        if prob is not None:
            n_prob += 1
            mask = binarize(prob, threshold)
        row = acc.add(stem, mask, gt, prob=mask if prob is None else prob)  # a bool mask sweeps as 0/1
        row.update(prediction=os.fspath(pred_path), ground_truth=os.fspath(gt_path),
                   kind="mask" if prob is None else "probability")
        if distractor_masks is not None:
            dpath = distractor_masks[stem]
            distractors = read_mask(dpath, max_pixels)
            if distractors.shape != gt.shape:
                raise InputError(f"{dpath}: size {distractors.shape[1]}x{distractors.shape[0]} does not match "
                                 f"ground truth {gt_path} ({gt.shape[1]}x{gt.shape[0]})")
            row.update(false_alarm_counts(mask, gt, distractors), distractors=os.fspath(dpath))
    summary = acc.summary()
    notes = []
    result = {
        "summary": summary["metrics"],
        "images": acc.rows,
        "unmatched": {"pred": unmatched_pred, "gt": unmatched_gt},
        "mba_skipped": summary["mba_skipped"],
        "boundary_iou_d": boundary_d if boundary_d is not None
        else {"rule": "max(1, round(0.005 * diagonal))", "values": sorted({r["boundary_iou_d"] for r in acc.rows})},
        "n_images": summary["n_images"],
        "threshold": threshold,
        "definitions": {
            "per_image_mean": "mean over images of each image's value (mBA: CascadePSP's mBA)",
            "aggregate": "from TP/FP/FN/TN (Boundary IoU: band intersections/unions; mBA: band pixels) "
                         "summed over the dataset",
        },
    }
    if n_prob:
        result["ods"], result["ois"] = summary["ods"], summary["ois"]
        if n_prob < len(pairs):
            notes.append(f"{len(pairs) - n_prob} binary prediction(s) entered ODS/OIS as probabilities 0/1")
    else:
        for row in acc.rows:
            row.pop("best_f1"), row.pop("best_threshold")
        notes.append("ODS/OIS omitted: every prediction is a binary mask, not a probability map")
    if result["mba_skipped"]:
        notes.append(f"mBA skipped {result['mba_skipped']} image(s) whose ground truth has no crack (or is all crack)")
    if distractor_masks is not None:
        result["false_alarm"] = {**false_alarm_scores(acc.rows), "distractors": os.fspath(distractors_dir)}
    result["notes"] = notes
    return result


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def format_table(result: dict) -> str:
    """A plain-text table (metric | per-image mean | aggregate) followed by notes.

    Examples:
        >>> print(format_table(evaluate_folders("pred", "gt", progress=False)))  # doctest: +SKIP
        metric             per-image mean   aggregate
        IoU (crack)                0.6100      0.5900
        ...
    """
    lines = [f"{'metric':<18}{'per-image mean':>15}{'aggregate':>12}"]
    for m in METRIC_NAMES:
        v = result["summary"][m]
        lines.append(f"{LABELS[m]:<18}{_fmt(v['per_image_mean']):>15}{_fmt(v['aggregate']):>12}")
    if result.get("ods"):
        lines.append(f"ODS F1 {_fmt(result['ods']['f1'])} at threshold {result['ods']['threshold']:.2f}; "
                     f"OIS F1 {_fmt(result['ois']['f1'])}")
    d = result["boundary_iou_d"]
    d_text = f"d = {d}" if isinstance(d, int) else f"d = {d['rule']} ({', '.join(map(str, d['values']))})"
    lines.append(f"{result['n_images']} images, threshold {result['threshold']}, Boundary IoU {d_text}")
    lines.append(f"mBA skipped: {result['mba_skipped']} image(s) with no crack in the ground truth")
    if result.get("false_alarm"):
        lines.append(format_false_alarms(result["false_alarm"]))
    for side, label in (("pred", "predictions"), ("gt", "ground truths")):
        names = result["unmatched"][side]
        if names:
            shown = ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
            lines.append(f"unmatched {label}: {shown}")
    lines.extend(n for n in result.get("notes", []) if not n.startswith("mBA skipped"))
    return "\n".join(lines)
