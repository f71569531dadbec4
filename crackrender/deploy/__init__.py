"""Deployment: CBPRN exported to ONNX and run with onnxruntime, optionally quantised to INT8.

``crackrender export [MODEL] OUT.onnx`` writes a pair of ONNX files (:mod:`crackrender.deploy.export`):
``OUT.onnx``, the network up to the heatmap and the features the point head reads, and
``OUT.points.onnx``, the point head over a batch of point features. The heatmap-guided
refinement between them stays in PyTorch (:mod:`crackrender.deploy.onnx_backend`), the same code
the PyTorch model runs, so the two backends pick the same pixels. docs/deploy.md has the details.

Needs the ``[onnx]`` extra (onnx, onnxscript, onnxruntime); importing this package does not.
"""

from __future__ import annotations

__all__ = ["export_onnx", "onnx_segmenter", "OnnxCBPRN"]


def __getattr__(name: str):
    # lazy: the command line imports crackrender.deploy without paying for onnx/onnxruntime
    if name == "export_onnx":
        from crackrender.deploy.export import export_onnx

        return export_onnx
    if name in ("onnx_segmenter", "OnnxCBPRN"):
        from crackrender.deploy import onnx_backend

        return getattr(onnx_backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
