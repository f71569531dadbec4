"""Pure tensor operations: the guided filter and the point sampling of CBPRN's point head."""

from crackrender.ops.guided_filter import GuidedFilter, box_filter, guided_filter
from crackrender.ops.sampling import (
    BACKGROUND,
    BAND,
    INTERIOR,
    boundary_band,
    pixel_centers,
    point_sample,
    sample_training_points,
    stratum_quotas,
    uncertain_pixels,
)
from crackrender.ops.subdivision import subdivision_inference, uncertain_training_points, uncertainty

__all__ = [
    "BACKGROUND",
    "BAND",
    "INTERIOR",
    "GuidedFilter",
    "box_filter",
    "guided_filter",
    "boundary_band",
    "pixel_centers",
    "point_sample",
    "sample_training_points",
    "stratum_quotas",
    "uncertain_pixels",
    "subdivision_inference",
    "uncertain_training_points",
    "uncertainty",
]
