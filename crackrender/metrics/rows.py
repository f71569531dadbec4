"""One count row per image, and the one place that turns rows into scores.

A row is a fixed-width float64 vector (columns :data:`ROW_COLUMNS`): the confusion counts,
mBA's correct and band pixels per radius step, Boundary IoU's band intersection and union,
and a group id (which dataset the image came from). Everything a score needs is a count, so
rows from several processes or datasets are simply stacked (DDP's ``all_gather``) and
scored by :func:`score_rows`; :func:`score_groups` scores each group alone. Evaluation
(:class:`MetricAccumulator`), training validation and the paper tables all score this way.
Counts are integers below 2**53, so float64 sums of them are exact in any order.
"""

from __future__ import annotations

import numpy as np

from crackrender.errors import InputError
from crackrender.metrics.definitions import (
    DEFAULT_THRESHOLDS,
    MBA_STEPS,
    METRIC_NAMES,
    SweepCounts,
    _pair,
    _ratio,
    best_f1,
    boundary_accuracy_counts,
    boundary_iou_counts,
    confusion,
    default_boundary_d,
    scores,
    threshold_sweep,
)

COUNT_NAMES = ("tp", "fp", "fn", "tn")
ROW_COLUMNS = (*COUNT_NAMES, *(f"mba_correct{i}" for i in range(MBA_STEPS)),
               *(f"mba_band{i}" for i in range(MBA_STEPS)), "biou_inter", "biou_union", "group")
ROW_WIDTH = len(ROW_COLUMNS)
_COUNTS = slice(0, 4)
_CORRECT = slice(4, 4 + MBA_STEPS)
_BAND = slice(4 + MBA_STEPS, 4 + 2 * MBA_STEPS)
_BIOU = slice(4 + 2 * MBA_STEPS, 6 + 2 * MBA_STEPS)
GROUP = ROW_WIDTH - 1  # the group id's column


def count_row(pred, gt, *, boundary_d: int | None = None, group: int = 0) -> np.ndarray:
    """The count row (:data:`ROW_COLUMNS`) of one binary prediction against its ground truth.

    Examples:
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> row = count_row(gt, gt, boundary_d=1, group=3)
        >>> row.shape, row[[0, 1, 2, 3, GROUP]].tolist()  # tp fp fn tn ... group
        ((17,), [16.0, 0.0, 0.0, 48.0, 3.0])
    """
    pred, gt = _pair(pred, gt)
    c = confusion(pred, gt)
    correct, band = boundary_accuracy_counts(pred, gt)
    inter, union, _ = boundary_iou_counts(pred, gt, boundary_d)
    return np.array([*(c[k] for k in COUNT_NAMES), *correct, *band, inter, union, group], np.float64)


def as_rows(rows) -> np.ndarray:
    """``rows`` (a sequence of rows or an array) as a (N, ROW_WIDTH) float64 array."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        rows = rows.reshape(0, ROW_WIDTH)
    if rows.ndim != 2 or rows.shape[1] != ROW_WIDTH:
        raise InputError(f"count rows must have shape (N, {ROW_WIDTH}), got {rows.shape}")
    return rows


def image_scores(row) -> dict[str, float | None]:
    """One image's metrics (:data:`METRIC_NAMES`) from its row; ``mba`` is None for an empty band.

    Examples:
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> s = image_scores(count_row(np.zeros_like(gt), gt, boundary_d=1))
        >>> s["iou"], s["mba"], s["boundary_iou"]
        (0.0, 0.5714285714285714, 0.0)
    """
    row = np.asarray(row, dtype=np.float64)
    out = scores(dict(zip(COUNT_NAMES, row[_COUNTS])))
    correct, band = row[_CORRECT], row[_BAND]
    # a non-empty band for one radius implies one for every radius
    out["mba"] = float(np.mean(correct / band)) if band.all() else None
    out["boundary_iou"] = _ratio(row[_BIOU][0], row[_BIOU][1], True)
    return out


def score_rows(rows) -> dict:
    """``{"metrics": {name: {"per_image_mean", "aggregate"}}, "n_images", "mba_skipped"}``.

    ``per_image_mean`` averages each image's value. ``aggregate`` scores the counts summed over
    the rows: TP/FP/FN/TN for the pixel metrics, band intersections over unions for Boundary
    IoU, and for mBA (a mean over images by definition: ``per_image_mean`` is the paper's mBA)
    correct over band pixels summed per radius step, then averaged over the steps. Images whose
    ground truth has an empty band are left out of both mBA numbers and counted in ``mba_skipped``.

    Examples:
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> s = score_rows([count_row(gt, gt), count_row(np.zeros_like(gt), gt)])
        >>> s["metrics"]["iou"], s["n_images"], s["mba_skipped"]
        ({'per_image_mean': 0.5, 'aggregate': 0.5}, 2, 0)
    """
    rows = as_rows(rows)
    if not len(rows):
        raise InputError("no images were evaluated")
    agg = scores(dict(zip(COUNT_NAMES, rows[:, _COUNTS].sum(axis=0))))
    valid = rows[:, _BAND].all(axis=1)
    correct, band = rows[valid, _CORRECT].sum(axis=0), rows[valid, _BAND].sum(axis=0)
    agg["mba"] = float(np.mean(correct / band)) if valid.any() else None
    inter, union = rows[:, _BIOU].sum(axis=0)
    agg["boundary_iou"] = _ratio(inter, union, True)
    per_image = [image_scores(r) for r in rows]
    metrics = {}
    for m in METRIC_NAMES:
        values = [s[m] for s in per_image if s[m] is not None]
        metrics[m] = {"per_image_mean": float(np.mean(values)) if values else None, "aggregate": agg[m]}
    return {"metrics": metrics, "n_images": len(rows), "mba_skipped": int(len(rows) - valid.sum())}


def score_groups(rows) -> dict[int, dict]:
    """:func:`score_rows` of each group id's rows alone, by group id (ascending).

    Examples:
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> rows = [count_row(gt, gt, group=1), count_row(np.zeros_like(gt), gt, group=0)]
        >>> {g: s["metrics"]["iou"]["aggregate"] for g, s in score_groups(rows).items()}
        {0: 0.0, 1: 1.0}
    """
    rows = as_rows(rows)
    return {int(g): score_rows(rows[rows[:, GROUP] == g]) for g in np.unique(rows[:, GROUP])}


class MetricAccumulator:
    """Collects one count row (and a readable per-image dict) per image; :meth:`summary` scores
    them with :func:`score_rows` and adds ODS/OIS, available only when every image came with a
    probability map.

    Examples:
        >>> acc = MetricAccumulator(boundary_d=1)
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> row = acc.add("a", gt, gt)
        >>> acc.summary()["metrics"]["iou"]
        {'per_image_mean': 1.0, 'aggregate': 1.0}
    """

    def __init__(self, *, boundary_d: int | None = None, thresholds=None):
        self.boundary_d = boundary_d
        self.thresholds = np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, np.float64)
        self.rows: list[dict] = []
        self.count_rows: list[np.ndarray] = []
        self._sweep = np.zeros((3, len(self.thresholds)), np.int64)
        self._all_prob = True

    def add(self, name: str, pred, gt, prob=None) -> dict:
        """Score one image and return its row; ``prob`` (optional) feeds ODS/OIS."""
        pred, gt = _pair(pred, gt)
        counts = count_row(pred, gt, boundary_d=self.boundary_d)
        d = default_boundary_d(*gt.shape) if self.boundary_d is None else int(self.boundary_d)
        row = {"name": name, "height": gt.shape[0], "width": gt.shape[1],
               **dict(zip(COUNT_NAMES, counts[_COUNTS].astype(int).tolist())), **image_scores(counts),
               "boundary_iou_d": d}
        if prob is None:
            self._all_prob = False
        else:
            sweep = threshold_sweep(prob, gt, self.thresholds)
            self._sweep += np.stack([sweep.tp, sweep.fp, sweep.fn])
            row["best_f1"], row["best_threshold"] = best_f1(sweep)
        self.count_rows.append(counts)
        self.rows.append(row)
        return row

    def summary(self) -> dict:
        """:func:`score_rows`'s dict plus ``"ods": {"f1", "threshold"} | None, "ois": {"f1"} | None``."""
        out = {**score_rows(self.count_rows), "ods": None, "ois": None}
        if self._all_prob:
            f1, t = best_f1(SweepCounts(self.thresholds, *self._sweep))
            out["ods"] = {"f1": f1, "threshold": t}
            out["ois"] = {"f1": float(np.mean([r["best_f1"] for r in self.rows]))}
        return out
