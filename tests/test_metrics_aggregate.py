"""Metrics over many images (docs/design.md, "Metrics"): ODS/OIS threshold sweeps, the accumulator's
aggregate and per-image means, and count rows that score the same however DDP ranks gather them."""

import numpy as np
import pytest
from test_metrics import perturb, random_cracks, square

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
    image_scores,
    score_groups,
    score_rows,
    scores,
    threshold_sweep,
)


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
