"""Crack quantification: instances, branches, length, width, orientation and width classes
from a binary crack mask, with JSON/CSV/GeoJSON/overlay/HTML reports.

Examples:
    >>> import numpy as np
    >>> from crackrender.quantify import quantify_mask
    >>> m = np.zeros((60, 200), bool); m[28:34, 20:180] = True
    >>> r = quantify_mask(m, gsd=0.05)
    >>> r.summary()["count"], round(r.cracks[0].length_px * r.gsd_mm, 1), r.cracks[0].width_class
    (1, 8.0, '>=0.3')
"""

from crackrender.quantify.core import quantify_mask
from crackrender.quantify.report import write_report
from crackrender.quantify.result import BranchResult, CrackResult, QuantResult
from crackrender.quantify.run import run_quantify, write_summary
from crackrender.quantify.units import (DEFAULT_WIDTH_BINS_MM, MIN_RESOLVABLE_PX, Camera, orientation_class,
                                        resolve_gsd, width_class)

__all__ = [
    "quantify_mask", "write_report", "run_quantify", "write_summary",
    "QuantResult", "CrackResult", "BranchResult",
    "Camera", "resolve_gsd", "width_class", "orientation_class",
    "DEFAULT_WIDTH_BINS_MM", "MIN_RESOLVABLE_PX",
]
