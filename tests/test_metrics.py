"""Metric definitions (docs/design.md, "Metrics") on hand-computed cases and independent reimplementations
(over many images: ODS/OIS, the accumulator, count rows: tests/test_metrics_aggregate.py)."""

import math

import cv2
import numpy as np
import pytest
from scipy import ndimage

from crackrender.errors import InputError
from crackrender.metrics import (
    boundary_accuracy,
    boundary_iou,
    confusion,
    default_boundary_d,
    mba_radii,
    scores,
)


def square(h=8, w=8, top=2, left=2, size=4):
    m = np.zeros((h, w), bool)
    m[top : top + size, left : left + size] = True
    return m


def random_cracks(rng, h, w, n=6):
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        p, q = rng.integers(0, [w, h]), rng.integers(0, [w, h])
        cv2.line(m, tuple(int(v) for v in p), tuple(int(v) for v in q), 1, int(rng.integers(1, 6)))
    return m.astype(bool)


def perturb(rng, m):
    out = ndimage.binary_dilation(m) if rng.random() < 0.5 else ndimage.binary_erosion(m)
    return out ^ (rng.random(m.shape) < 0.02)


# ------------------------------------------------------------------ pixel metrics


def test_hand_case_4x4():
    gt = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool)  # 5 crack pixels
    pred = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], bool)  # 3 hit, 1 false
    c = confusion(pred, gt)
    assert c == {"tp": 3, "fp": 1, "fn": 2, "tn": 10}
    s = scores(c)
    assert s["iou"] == pytest.approx(3 / 6)
    assert s["background_iou"] == pytest.approx(10 / 13)
    assert s["miou"] == pytest.approx((3 / 6 + 10 / 13) / 2)
    assert s["f1"] == pytest.approx(6 / 9)
    assert s["precision"] == pytest.approx(3 / 4)
    assert s["recall"] == pytest.approx(3 / 5)


def test_shape_mismatch_and_non_2d_raise():
    with pytest.raises(InputError, match="4x3 does not match ground truth 3x4"):
        confusion(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(InputError, match="2-D"):
        confusion(np.zeros((2, 2, 3)), np.zeros((2, 2, 3)))


ZERO, ONE = np.zeros((4, 4), bool), np.ones((4, 4), bool)


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        # both empty: the prediction is perfect
        (ZERO, ZERO, dict(iou=1, background_iou=1, miou=1, f1=1, precision=1, recall=1)),
        # empty prediction on a cracked image: precision 0/0 -> 0 because FN > 0
        (ZERO, square(4, 4, 0, 0, 2), dict(iou=0, background_iou=12 / 16, f1=0, precision=0, recall=0)),
        # false cracks on a crack-free image: recall 0/0 -> 0 because FP > 0
        (square(4, 4, 0, 0, 2), ZERO, dict(iou=0, background_iou=12 / 16, f1=0, precision=0, recall=0)),
        # all crack in both: background IoU 0/0 -> 1
        (ONE, ONE, dict(iou=1, background_iou=1, miou=1, f1=1, precision=1, recall=1)),
        # all-crack GT, half predicted: background IoU = 0 / 8
        (square(4, 4, 0, 0, 4) & (np.arange(4) < 2)[:, None], ONE, dict(iou=0.5, background_iou=0, precision=1, recall=0.5)),
    ],
)
def test_zero_denominator_conventions(pred, gt, expected):
    s = scores(confusion(pred, gt))
    for k, v in expected.items():
        assert s[k] == pytest.approx(v), k


def test_perfect_prediction():
    gt = square()
    s = scores(confusion(gt, gt))
    assert all(v == 1.0 for v in s.values())


# ------------------------------------------------------------------ mBA


def test_mba_radii_follow_cascadepsp():
    assert mba_radii(384, 544) == [1, 1, 1, 2, 2]
    assert mba_radii(1536, 2048) == [1, 3, 5, 7, 9]
    assert mba_radii(128, 100) == [1] * 5  # h + w < 300: int() truncates to 0, floor would give 0 radii
    assert mba_radii(1900, 1900) == [1, 3, 5, 7, 10]  # float order: exact arithmetic gives 8 at i = 3
    for h, w in [(384, 544), (1536, 2048), (4000, 3000)]:  # DESIGN's floor formula elsewhere
        assert mba_radii(h, w) == [1 + math.floor(((h + w) / 300 - 1) * i / 5) for i in range(5)]


def ellipse_kernel(r):
    """OpenCV's MORPH_ELLIPSE rule: row dy keeps |dx| <= round(sqrt(r^2 - dy^2)) (not x^2+y^2 <= r^2)."""
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return np.abs(x) <= np.rint(np.sqrt(np.maximum(r * r - y * y, 0)))


def test_ellipse_kernel_formula_matches_opencv():
    for r in range(1, 25):
        cv = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)).astype(bool)
        np.testing.assert_array_equal(ellipse_kernel(r), cv, err_msg=f"radius {r}")
    y, x = np.mgrid[-4:5, -4:5]
    assert not np.array_equal(ellipse_kernel(4), x * x + y * y <= 16)  # why the formula matters


def reference_boundary_accuracy(pred, gt):
    """Independent mBA: scipy morphology; erosion treats outside the image as crack (OpenCV's default)."""
    h, w = gt.shape
    accs = []
    for i in range(5):
        r = 1 + int(((h + w) / 300 - 1) / 5 * i)
        k = ellipse_kernel(r)
        band = ndimage.binary_dilation(gt, k) & ~ndimage.binary_erosion(gt, k, border_value=1)
        accs.append(np.mean(pred[band] == gt[band]))
    return float(np.mean(accs))


def test_mba_hand_case():
    gt = square()  # 8x8 image: radius 1, a 3x3 cross kernel; band = 32 dilated - 4 eroded = 28 pixels
    assert boundary_accuracy(gt, gt) == 1.0
    assert boundary_accuracy(np.zeros_like(gt), gt) == pytest.approx(16 / 28)  # only the outer ring is right
    pred = gt.copy()
    pred[2, 2] = False  # one band pixel wrong in each of the 5 (identical) steps
    assert boundary_accuracy(pred, gt) == pytest.approx(27 / 28)
    pred = gt.copy()
    pred[4, 4] = False  # interior pixel: outside the band, no effect
    assert boundary_accuracy(pred, gt) == 1.0


def test_mba_empty_band_is_none():
    assert boundary_accuracy(square(), np.zeros((8, 8), bool)) is None
    assert boundary_accuracy(square(), np.ones((8, 8), bool)) is None


@pytest.mark.parametrize("h, w", [(96, 120), (384, 544), (700, 900)])
def test_mba_matches_independent_reimplementation(h, w):
    rng = np.random.default_rng(h)
    for _ in range(3):
        gt = random_cracks(rng, h, w)
        gt[: h // 8, : w // 8] = True  # a block touching the border checks the border convention
        pred = perturb(rng, gt)
        assert boundary_accuracy(pred, gt) == pytest.approx(reference_boundary_accuracy(pred, gt), abs=1e-12)


# ------------------------------------------------------------------ Boundary IoU


def test_boundary_iou_hand_case():
    gt = square()
    pred = np.roll(gt, 1, axis=1)  # two 12-pixel rings sharing 6 pixels: 6 / 18
    assert boundary_iou(pred, gt, d=1) == (pytest.approx(1 / 3), 1)
    assert boundary_iou(gt, gt, d=1) == (1.0, 1)
    assert boundary_iou(gt, gt, d=2)[0] == 1.0  # d = 2 makes the whole 4x4 square a band


def test_boundary_iou_special_cases():
    z = np.zeros((8, 8), bool)
    assert boundary_iou(z, z) == (1.0, 1)  # both empty: 1 by convention
    assert boundary_iou(square(), z)[0] == 0.0
    full = np.ones((8, 8), bool)  # zero padding: a full mask has a band along the image border
    assert boundary_iou(full, full, d=1)[0] == 1.0
    assert boundary_iou(full & ~square(8, 8, 1, 1, 6), full, d=1)[0] == 1.0  # band = 28 border pixels
    with pytest.raises(InputError):
        boundary_iou(z, z, d=0)


def test_boundary_iou_default_d_and_reference():
    assert default_boundary_d(384, 544) == 3  # 0.005 * 665.9 = 3.33
    assert default_boundary_d(100, 100) == 1
    assert default_boundary_d(1536, 2048) == 13  # 0.005 * 2560 = 12.8
    rng = np.random.default_rng(0)
    for d in (None, 1, 4):
        gt = random_cracks(rng, 200, 300)
        pred = perturb(rng, gt)
        dd = default_boundary_d(200, 300) if d is None else d
        bands = [m & ~ndimage.binary_erosion(m, np.ones((3, 3)), iterations=dd, border_value=0) for m in (pred, gt)]
        expected = (bands[0] & bands[1]).sum() / (bands[0] | bands[1]).sum()
        assert boundary_iou(pred, gt, d) == (pytest.approx(expected), dd)
