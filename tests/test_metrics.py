"""Metric definitions (docs/design.md, "Metrics") on hand-computed cases and independent reimplementations."""

import math

import cv2
import numpy as np
import pytest
from scipy import ndimage

from crackrender.errors import InputError
from crackrender.metrics import (
    GROUP,
    METRIC_NAMES,
    ROW_WIDTH,
    MetricAccumulator,
    SweepCounts,
    best_f1,
    binarize,
    boundary_accuracy,
    boundary_iou,
    confusion,
    count_row,
    default_boundary_d,
    image_scores,
    mba_radii,
    score_groups,
    score_rows,
    scores,
    threshold_sweep,
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


# ------------------------------------------------------------------ ODS / OIS


def test_threshold_sweep_matches_brute_force():
    rng = np.random.default_rng(1)
    gt = rng.random((40, 50)) < 0.2
    prob = np.round(rng.random((40, 50)), 2).astype(np.float32)  # many exact ties with the thresholds
    prob[0, :4] = [0.0, 1.0, 0.01, 0.99]
    thresholds = [0.9, 0.5, 0.01, 0.2, 0.99, 0.0, 1.0]  # unsorted on purpose
    s = threshold_sweep(prob, gt, thresholds)
    for j, t in enumerate(thresholds):
        c = confusion(binarize(prob, t), gt)
        assert (s.tp[j], s.fp[j], s.fn[j]) == (c["tp"], c["fp"], c["fn"]), t
    assert len(threshold_sweep(prob, gt).tp) == 99
    mask, odd = prob > 0.5, [0.5, -0.1, 0.0, 1.0, 1.2, 0.01]
    fast, slow = threshold_sweep(mask, gt, odd), threshold_sweep(mask.astype(np.float32), gt, odd)
    for a, b in zip(fast[1:], slow[1:]):
        np.testing.assert_array_equal(a, b)


def test_threshold_sweep_rejects_bad_probabilities():
    with pytest.raises(InputError):
        threshold_sweep(np.full((2, 2), 1.5), np.zeros((2, 2), bool))
    with pytest.raises(InputError):
        threshold_sweep(np.full((2, 2), np.nan), np.zeros((2, 2), bool))


def test_ods_ois_known_thresholds():
    # image A is perfect for t in (0.4, 0.6]; image B for t in (0.15, 0.3].
    gt_a, prob_a = np.array([[1, 1, 0, 0]], bool), np.array([[0.9, 0.6, 0.4, 0.1]])
    gt_b, prob_b = np.array([[1, 0, 0, 0]], bool), np.array([[0.3, 0.15, 0.1, 0.05]])
    acc = MetricAccumulator()
    acc.add("a", binarize(prob_a, 0.5), gt_a, prob_a)
    acc.add("b", binarize(prob_b, 0.5), gt_b, prob_b)
    summary = acc.summary()
    assert summary["ois"]["f1"] == pytest.approx(1.0)  # each image's best is perfect
    # One threshold for both: t in (0.15, 0.3] gives TP 3, FP 1 (A's 0.4), FN 0 -> 6/7; first is 0.16.
    assert summary["ods"]["f1"] == pytest.approx(6 / 7)
    assert summary["ods"]["threshold"] == pytest.approx(0.16)
    assert acc.rows[0]["best_threshold"] == pytest.approx(0.41)
    assert best_f1(SweepCounts(np.array([0.5]), np.array([0]), np.array([0]), np.array([0]))) == (1.0, 0.5)


# ------------------------------------------------------------------ accumulator


def test_aggregate_differs_from_per_image_mean():
    gt1 = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], bool)
    pred1 = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], bool)  # TP 3 FP 1 FN 2
    gt2 = np.zeros((4, 4), bool)
    gt2[0, 0] = True  # perfect: TP 1
    acc = MetricAccumulator(boundary_d=1)
    acc.add("one", pred1, gt1)
    acc.add("two", gt2, gt2)
    acc.add("empty", np.zeros((4, 4), bool), np.zeros((4, 4), bool))  # perfect, crack-free
    m = acc.summary()["metrics"]
    assert m["iou"]["per_image_mean"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert m["iou"]["aggregate"] == pytest.approx(4 / 7)
    assert m["f1"]["aggregate"] == pytest.approx(8 / 11)
    assert m["precision"]["aggregate"] == pytest.approx(4 / 5)
    assert acc.summary()["ods"] is None  # no probability maps given


def test_mba_aggregate_is_band_weighted_and_skips_empty_gt():
    big, small = square(16, 16, 2, 2, 8), square(16, 16, 2, 2, 1)  # bands 96-36=60 and 5 pixels (radius 1)
    wrong_small = np.zeros((16, 16), bool)  # gets only the 4 outer band pixels of the small one right
    acc = MetricAccumulator()
    acc.add("big", big, big)
    acc.add("small", wrong_small, small)
    acc.add("crack-free", np.zeros((16, 16), bool), np.zeros((16, 16), bool))
    s = acc.summary()
    assert s["mba_skipped"] == 1
    assert acc.rows[2]["mba"] is None
    assert s["metrics"]["mba"]["per_image_mean"] == pytest.approx((1 + 4 / 5) / 2)
    assert s["metrics"]["mba"]["aggregate"] == pytest.approx((60 + 4) / (60 + 5))


# ------------------------------------------------------------------ count rows


def _scored_rows(seed=7, n=9):
    """Count rows of perturbed random cracks in 3 groups, one crack-free image (empty band) among them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        gt = random_cracks(rng, h, w) if i != 4 else np.zeros((h, w), bool)
        rows.append(count_row(perturb(rng, gt), gt, group=i % 3))
    return np.stack(rows)


def test_rows_gathered_from_two_ranks_score_as_one():
    rows = _scored_rows()
    single = score_rows(rows)
    # DDP: a distributed sampler deals images out in turn; all_gather stacks rank 0's rows, then rank 1's
    ranks = [rows[0::2], rows[1::2]]
    gathered = score_rows(np.concatenate(ranks))
    assert gathered["n_images"] == single["n_images"] == 9 and gathered["mba_skipped"] == single["mba_skipped"] == 1
    for m in METRIC_NAMES:
        # summed counts are exact in any order; a mean over images only up to float rounding
        assert gathered["metrics"][m]["aggregate"] == single["metrics"][m]["aggregate"], m
        assert gathered["metrics"][m]["per_image_mean"] == pytest.approx(single["metrics"][m]["per_image_mean"],
                                                                        rel=1e-12, abs=0), m
    assert 0 < single["metrics"]["iou"]["aggregate"] < 1  # a real test: imperfect predictions
    # per group: the same as scoring each group's images alone, whichever rank they came from
    by_group = score_groups(np.concatenate(ranks[::-1]))
    assert list(by_group) == [0, 1, 2]
    for g, s in by_group.items():
        alone = score_rows(rows[g::3])
        assert s["n_images"] == 3 and s["metrics"]["miou"]["aggregate"] == alone["metrics"]["miou"]["aggregate"]


def test_accumulator_scores_its_count_rows():
    rng = np.random.default_rng(2)
    acc = MetricAccumulator(boundary_d=2)
    for i in range(4):
        gt = random_cracks(rng, 50, 70)
        pred = perturb(rng, gt)
        row = acc.add(f"im{i}", pred, gt)
        # the readable row and the count row agree with the per-image definitions
        assert row["iou"] == scores(confusion(pred, gt))["iou"] == image_scores(acc.count_rows[-1])["iou"]
        assert row["mba"] == boundary_accuracy(pred, gt) and row["boundary_iou"] == boundary_iou(pred, gt, 2)[0]
        assert acc.count_rows[-1][GROUP] == 0
    summary = acc.summary()
    assert summary["metrics"] == score_rows(acc.count_rows)["metrics"]
    with pytest.raises(InputError, match="no images"):
        MetricAccumulator().summary()
    with pytest.raises(InputError, match=f"shape \\(N, {ROW_WIDTH}\\)"):
        score_rows(np.zeros((2, ROW_WIDTH - 1)))
