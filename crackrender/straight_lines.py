"""Drop predicted crack pixels that lie along long, straight lines: joints, paint and shadow edges.

A sawn joint or the edge of a paint stripe is, locally, a thin dark groove, as a crack is, and the
models call it crack (MODEL.md, false alarms). What tells them apart is their course: a joint runs
straight for hundreds of pixels, a crack wanders. So the mask's skeleton goes through OpenCV's
probabilistic Hough transform, and every stretch of it that stays on one straight line, pixel for
pixel (OpenCV walks the line one pixel wide), for at least ``min_length`` pixels (allowing gaps of
up to ``_MAX_GAP``) is removed, over the width the mask has there. A crack that crosses such a line
keeps all but the crossing.

Measured (MODEL.md, 'Straight-line filter'): 200 px gave the best mean val F1 over the six
datasets (150, 200 and 250 tried); it leaves CRACK500, DeepCrack537, CFD and masonry val unchanged,
raises UAV-CrackX and kaggle-uav, and cuts the distractor pixels called crack on the false-alarm set
about threefold. The price: a crack that runs dead straight for ``min_length`` pixels is taken for a
joint (applied to the datasets' own masks it removes 0.02-0.8% of their crack pixels, 2.3% on
masonry's small crops). Tolerating a wandering skeleton (thickened by 1 or 2 px before the
transform) removed more joint edges but also straight stretches of real cracks: mean val F1 0.689
(as is), 0.666 (1 px), 0.607 (2 px) with v3 (docs/model.md, "Seventh launch").
"""

from __future__ import annotations

import numpy as np

from crackrender.errors import InputError

# cv2 and scikit-image are imported where used: the CLI reads DEFAULT_MIN_LENGTH at start-up

DEFAULT_MIN_LENGTH = 200  # px; 0 keeps every line
_MAX_GAP = 30  # px of missing skeleton a line may bridge (predictions along a joint break up)
_VOTE_SHARE = 0.5  # of min_length: skeleton pixels on the line needed to accept it
_ANGLE_STEP = np.pi / 360
_MARGIN = 2  # px removed beyond the mask's half-width along the line


def check_min_length(min_length) -> int:
    """``min_length`` as an int, or an InputError unless it is 0 (off) or a length that means a line.

    Examples:
        >>> check_min_length(200)
        200
        >>> check_min_length(10)
        Traceback (most recent call last):
        crackrender.errors.InputError: straight-line length must be 0 (off) or at least 50 px, got 10
    """
    try:
        value = int(min_length)
    except (TypeError, ValueError):
        raise InputError(f"straight-line length must be a whole number of px, got {min_length!r}") from None
    if value != min_length or not (value == 0 or value >= 50):
        raise InputError(f"straight-line length must be 0 (off) or at least 50 px, got {min_length}")
    return value


def straight_lines(mask: np.ndarray, min_length: int = DEFAULT_MIN_LENGTH) -> np.ndarray:
    """(N, 4) int array of the straight skeleton lines in ``mask`` as x1, y1, x2, y2 (none: (0, 4))."""
    import cv2
    from skimage.morphology import skeletonize

    if min_length <= 0 or not mask.any():
        return np.zeros((0, 4), np.int32)
    skeleton = skeletonize(mask.astype(bool)).astype(np.uint8) * 255
    lines = cv2.HoughLinesP(skeleton, rho=1, theta=_ANGLE_STEP, threshold=int(min_length * _VOTE_SHARE),
                            minLineLength=min_length, maxLineGap=_MAX_GAP)
    return np.zeros((0, 4), np.int32) if lines is None else lines.reshape(-1, 4)


def drop_straight_lines(mask: np.ndarray, min_length: int = DEFAULT_MIN_LENGTH) -> np.ndarray:
    """``mask`` (H, W) bool without the pixels along its straight lines (:func:`straight_lines`)."""
    import cv2

    lines = straight_lines(mask, min_length)
    if not len(lines):
        return mask
    mask = mask.astype(bool)
    # half-width of the mask along each line: the distance to background at its skeleton
    to_background = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    band = np.zeros(mask.shape, np.uint8)
    h, w = mask.shape
    for x1, y1, x2, y2 in lines:
        n = int(np.hypot(x2 - x1, y2 - y1)) + 1
        xs = np.clip(np.rint(np.linspace(x1, x2, n)).astype(int), 0, w - 1)
        ys = np.clip(np.rint(np.linspace(y1, y2, n)).astype(int), 0, h - 1)
        half = float(np.percentile(to_background[ys, xs], 90))
        cv2.line(band, (int(x1), int(y1)), (int(x2), int(y2)), 1, thickness=2 * (int(np.ceil(half)) + _MARGIN) + 1)
    return mask & (band == 0)
