"""Metrics for binary crack masks: the exact definitions of docs/design.md, "Metrics".

:mod:`~crackrender.metrics.definitions` holds the per-image definitions (pixel metrics, mBA,
Boundary IoU, ODS/OIS sweeps) and the zero-denominator rule; :mod:`~crackrender.metrics.rows`
the one count-row format and the one place that turns rows into dataset scores, used by
``crackrender evaluate`` (:class:`MetricAccumulator`), training validation and the paper tables.
"""

from crackrender.metrics.definitions import (
    DEFAULT_THRESHOLDS,
    MBA_STEPS,
    METRIC_NAMES,
    SweepCounts,
    best_f1,
    binarize,
    boundary_accuracy,
    boundary_accuracy_counts,
    boundary_band,
    boundary_iou,
    boundary_iou_counts,
    confusion,
    default_boundary_d,
    f1_curve,
    mba_radii,
    scores,
    threshold_sweep,
)
from crackrender.metrics.rows import (
    GROUP,
    ROW_COLUMNS,
    ROW_WIDTH,
    MetricAccumulator,
    as_rows,
    count_row,
    image_scores,
    score_groups,
    score_rows,
)

__all__ = [
    "DEFAULT_THRESHOLDS", "GROUP", "MBA_STEPS", "METRIC_NAMES", "ROW_COLUMNS", "ROW_WIDTH", "MetricAccumulator",
    "SweepCounts", "as_rows", "best_f1", "binarize", "boundary_accuracy", "boundary_accuracy_counts", "boundary_band",
    "boundary_iou", "boundary_iou_counts", "confusion", "count_row", "default_boundary_d", "f1_curve", "image_scores",
    "mba_radii", "score_groups", "score_rows", "scores", "threshold_sweep",
]
