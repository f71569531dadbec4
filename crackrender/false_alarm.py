"""False alarms on hard negatives: how much of the distractors, and of the whole image, is called crack.

Two numbers complement the crack metrics on the false-alarm benchmark (``crackrender data
falsealarm``), whose scenes carry a mask of distractor pixels (paint, joints, shadows...):

- distractor share predicted crack: predicted-crack distractor pixels / distractor pixels,
  pooled over the images (a distractor pixel that is also ground-truth crack does not count);
- false-positive pixels per megapixel: predicted crack outside the ground truth, anywhere in the
  image, per million image pixels, pooled over the images.

A crack-free image with no prediction scores 0 on both; with no distractor pixels at all, the
share is undefined (None).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from crackrender.errors import InputError

__all__ = ["COUNT_KEYS", "false_alarm_counts", "false_alarm_scores", "format_false_alarms"]

COUNT_KEYS = ("distractor_px", "distractor_fp_px", "fp_px", "image_px")


def false_alarm_counts(pred, gt, distractors) -> dict[str, int]:
    """One image's counts from bool (or 0/nonzero) masks of the same shape.

    Examples:
        >>> gt = np.zeros((4, 5), bool); gt[0] = True                   # 5 crack pixels
        >>> dis = np.zeros((4, 5), bool); dis[0:2, :2] = True           # 2 of its 4 pixels are crack
        >>> pred = np.zeros((4, 5), bool); pred[1, :3] = True; pred[0] = True
        >>> false_alarm_counts(pred, gt, dis)
        {'distractor_px': 2, 'distractor_fp_px': 2, 'fp_px': 3, 'image_px': 20}
    """
    pred, gt, distractors = (np.asarray(m) != 0 for m in (pred, gt, distractors))
    if not pred.shape == gt.shape == distractors.shape:
        raise InputError(f"mask shapes differ: prediction {pred.shape}, ground truth {gt.shape}, "
                         f"distractors {distractors.shape}")
    background = ~gt
    fp = pred & background
    negatives = distractors & background
    return {"distractor_px": int(negatives.sum()), "distractor_fp_px": int((fp & negatives).sum()),
            "fp_px": int(fp.sum()), "image_px": int(gt.size)}


def false_alarm_scores(rows: Iterable[Mapping[str, int]]) -> dict:
    """Pool per-image counts (:func:`false_alarm_counts`) into the two scores and their totals.

    Examples:
        >>> rows = [{"distractor_px": 100, "distractor_fp_px": 5, "fp_px": 20, "image_px": 2_000_000},
        ...         {"distractor_px": 300, "distractor_fp_px": 15, "fp_px": 30, "image_px": 2_000_000}]
        >>> s = false_alarm_scores(rows)
        >>> s["distractor_share_predicted"], s["fp_per_mp"]
        (0.05, 12.5)
        >>> blank = {"distractor_px": 0, "distractor_fp_px": 0, "fp_px": 0, "image_px": 10}
        >>> false_alarm_scores([blank])["distractor_share_predicted"] is None
        True
    """
    totals = dict.fromkeys(COUNT_KEYS, 0)
    n = 0
    for row in rows:
        for k in COUNT_KEYS:
            totals[k] += int(row[k])
        n += 1
    if n == 0 or totals["image_px"] == 0:
        raise InputError("no images to score false alarms on")
    share = totals["distractor_fp_px"] / totals["distractor_px"] if totals["distractor_px"] else None
    return {"distractor_share_predicted": share, "fp_per_mp": totals["fp_px"] / (totals["image_px"] / 1e6),
            "n_images": n, **totals}


def format_false_alarms(scores: Mapping) -> str:
    """One summary line for :func:`false_alarm_scores`'s dict.

    Examples:
        >>> print(format_false_alarms({"distractor_share_predicted": 0.05, "fp_per_mp": 12.5,
        ...                            "distractor_fp_px": 20, "distractor_px": 400}))
        false alarms: 0.0500 of distractor pixels predicted crack (20 of 400); 12.5 false-positive px per megapixel
    """
    share = scores["distractor_share_predicted"]
    share_text = "n/a (no distractor pixels)" if share is None else f"{share:.4f}"
    return (f"false alarms: {share_text} of distractor pixels predicted crack "
            f"({scores['distractor_fp_px']} of {scores['distractor_px']}); "
            f"{scores['fp_per_mp']:.1f} false-positive px per megapixel")
