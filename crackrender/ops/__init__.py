"""Pure tensor operations: the guided filter, and the point selection of the paper's three parts.

| part | module |
|---|---|
| boundary-guided training sampling (and Table 1's uniform sampling) | :mod:`~crackrender.ops.boundary_sampling` |
| heatmap-guided inference (the [alpha, beta] rule) | :mod:`~crackrender.ops.heatmap_inference` |
| PointRend's uncertainty sampling and subdivision (the baselines) | :mod:`~crackrender.ops.subdivision` |
| point coordinates, sampling maps at points | :mod:`~crackrender.ops.points` |
"""

from crackrender.ops.boundary_sampling import (
    BACKGROUND,
    BAND,
    INTERIOR,
    label_boundary_band,
    sample_training_points,
    stratum_quotas,
    uniform_training_points,
)
from crackrender.ops.guided_filter import GuidedFilter, box_filter, guided_filter
from crackrender.ops.heatmap_inference import band_training_points, heatmap_guided_inference, uncertain_pixels
from crackrender.ops.points import pixel_centers, point_sample, upsample_logits
from crackrender.ops.subdivision import (
    SUBDIVISION_POINTS,
    subdivision_inference,
    uncertain_training_points,
    uncertainty,
)

__all__ = [
    "BACKGROUND",
    "BAND",
    "INTERIOR",
    "SUBDIVISION_POINTS",
    "band_training_points",
    "GuidedFilter",
    "box_filter",
    "guided_filter",
    "heatmap_guided_inference",
    "label_boundary_band",
    "pixel_centers",
    "point_sample",
    "sample_training_points",
    "stratum_quotas",
    "subdivision_inference",
    "uncertain_pixels",
    "uncertain_training_points",
    "uncertainty",
    "uniform_training_points",
    "upsample_logits",
]
