"""Run an exported CBPRN with onnxruntime: a model-like object a :class:`~crackrender.segment.Segmenter`
drives exactly as it drives the PyTorch model.

onnxruntime runs the network and the point head MLP; everything between them is CBPRN's own
PyTorch code, called on onnxruntime's outputs: the padding, the crop of the heatmap to the image,
the [alpha, beta] rule (:func:`~crackrender.ops.heatmap_inference.heatmap_guided_inference`) and
the bilinear reads of the feature maps (:func:`~crackrender.ops.points.point_sample`). So the two
backends differ only by floating-point rounding inside the graphs.

    from crackrender.deploy import onnx_segmenter
    seg = onnx_segmenter("cbprn.onnx")           # made by `crackrender export`
    result = seg(read_image("bridge.jpg"))       # a SegmentResult, as with Segmenter.from_checkpoint
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import torch

from crackrender.deploy.files import NETWORK, ONNX_EXTRA, POINT_HEAD, point_head_path, read_metadata
from crackrender.errors import CrackRenderError, InputError
from crackrender.models.base import Prediction, Stopwatch, check_images, crop_to_image, pad_to_multiple
from crackrender.models.cbprn import CBPRN
from crackrender.ops.heatmap_inference import check_band
from crackrender.straight_lines import DEFAULT_MIN_LENGTH, check_min_length
from crackrender.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, check_tiling


def _session(path: Path, graph: str, threads: int | None):
    """An onnxruntime CPU session for ``path`` and the file's crackrender metadata."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CrackRenderError(ONNX_EXTRA) from None
    if not path.is_file():
        raise CrackRenderError(f"ONNX file not found: {path}" + ("" if graph == NETWORK else
                                                                 " (export writes it beside the network's .onnx)"))
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    options.intra_op_num_threads = threads or torch.get_num_threads()  # the same CPU budget as PyTorch
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CrackRenderError(f"{path}: onnxruntime cannot load it ({first})") from None
    return session, read_metadata(session.get_modelmeta().custom_metadata_map, path, graph)


class OnnxPointHead:
    """The exported point head as a callable with PointHead's signature: (..., C), (..., 1)
    [, (..., E)] float tensors -> (...) float32 logits."""

    def __init__(self, session):
        self.session = session
        self.names = [i.name for i in session.get_inputs()]

    def __call__(self, fine: torch.Tensor, coarse: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        parts = [fine, coarse] if extra is None else [fine, coarse, extra]
        feeds = {name: np.ascontiguousarray(t.reshape(-1, t.shape[-1]).float().numpy())
                 for name, t in zip(self.names, parts)}
        (logits,) = self.session.run(None, feeds)
        return torch.from_numpy(logits).view(fine.shape[:-1])


class OnnxCBPRN:
    """An exported CBPRN (``crackrender export``) behind CBPRN's inference interface: ``predict``
    and the attributes a Segmenter reads (``config``, ``alpha``, ``beta``). CPU only.

    ``path`` is the network's .onnx; its point head is read from the .points.onnx beside it.
    ``alpha``/``beta`` override the exported band; ``threads`` defaults to torch's thread count.
    """

    name = "cbprn"

    def __init__(self, path: str | os.PathLike, *, alpha: float | None = None, beta: float | None = None,
                 threads: int | None = None):
        self.path = Path(path)
        self.network, meta = _session(self.path, NETWORK, threads)
        head_session, head_meta = _session(point_head_path(self.path), POINT_HEAD, threads)
        if head_meta["pair"] != meta["pair"]:
            raise CrackRenderError(f"{point_head_path(self.path)} is from another export than {self.path}; "
                                   f"export the model again")
        self.point_head = OnnxPointHead(head_session)
        self.meta = meta
        config = meta["config"]
        self.alpha, self.beta = check_band(config["alpha"] if alpha is None else alpha,
                                           config["beta"] if beta is None else beta)
        self.config = {**config, "alpha": self.alpha, "beta": self.beta}
        # what CBPRN.inference_rule and CBPRN.point_logits read, so they run here unchanged
        self.guidance, self.point_fine = config["guidance"], config["point_fine"]
        self.point_chunk, self.subdivision_points = config["point_chunk"], config["subdivision_points"]
        self.pad_multiple, self.min_side = meta["pad_multiple"], meta["min_side"]
        self.outputs = [o.name for o in self.network.get_outputs()]

    @property
    def threshold(self) -> float:
        """The decision threshold the exported model file recorded."""
        return self.meta["threshold"]

    @property
    def info(self) -> dict:
        """The exported model file's info, plus the export's precision."""
        return {**self.meta["info"], "precision": self.meta["precision"], "exported_from": self.meta["source"]}

    def __call__(self, images: torch.Tensor, timings: dict | None = None) -> dict:
        """CBPRN's forward output (see :meth:`CBPRN.forward`), computed by onnxruntime."""
        check_images(images)
        h, w = images.shape[-2:]
        if min(h, w) < self.min_side:
            raise InputError(f"the ONNX backend needs images of at least {self.min_side} px per side, got {w}x{h}")
        padded, _ = pad_to_multiple(images.float().cpu(), self.pad_multiple)
        with Stopwatch(timings)("network", images.device):
            maps = self.network.run(None, {"image": np.ascontiguousarray(padded.numpy())})
        # channels-last once here: point_sample reads it several times faster (docs/design.md)
        maps = dict(zip(self.outputs, (torch.from_numpy(m).contiguous(memory_format=torch.channels_last)
                                       for m in maps)))
        coarse = maps["coarse"]
        hp, wp = padded.shape[-2:]
        hc, wc = -(-h // 4), -(-w // 4)
        out = {"coarse": crop_to_image(coarse, (h, w), (hp, wp)), "features": maps["features"][..., :hc, :wc],
               "extent": (w / (4 * wc), h / (4 * hc))}
        if self.point_fine:
            out.update(stem=maps["stem"], image=maps["image_normalized"], fine_extent=(w / wp, h / hp))
        return out

    # CBPRN's own code, on this object's attributes: the same points, the same reads
    point_logits = CBPRN.point_logits
    inference_rule = CBPRN.inference_rule

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, alpha: float | None = None, beta: float | None = None,
                chunk: int | None = None, refine: bool = True, timings: dict | None = None) -> Prediction:
        """As :meth:`CBPRN.predict`: the heatmap, with its [alpha, beta] band re-predicted by the point head."""
        rule = self.inference_rule(refine=refine, alpha=alpha, beta=beta, chunk=chunk)
        out = self(images, timings)
        with Stopwatch(timings if refine else None)("point_refinement", images.device):
            logits, counts = rule(out["coarse"], partial(self.point_logits, out), images.shape[-2:])
        return Prediction.from_logits(logits, counts)


def onnx_segmenter(path: str | os.PathLike, *, device: str | None = None, bf16: bool = False,
                   alpha: float | None = None, beta: float | None = None, threshold: float | None = None,
                   threads: int | None = None, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                   straight_lines: int = DEFAULT_MIN_LENGTH, flips: int = 1, scales=(1.0,)):
    """A :class:`~crackrender.segment.Segmenter` over an exported model: tiling (``tile``,
    ``overlap``), threshold, straight-line filter, test-time views and outputs as with PyTorch. The
    threshold is the exported model file's own (for these views, if calibrated for them) unless given."""
    from crackrender.segment import Segmenter
    from crackrender.test_time_views import check_flips, check_scales
    from crackrender.threshold import check_threshold

    if device not in (None, "auto", "cpu"):
        raise CrackRenderError(f"the onnxruntime backend runs on the CPU; got --device {device}")
    if bf16:
        raise CrackRenderError("--bf16 applies to the torch backend only; the onnxruntime backend runs its graphs "
                               "as exported")
    if path is None or Path(path).suffix != ".onnx":
        raise CrackRenderError(f"the onnxruntime backend needs an exported .onnx model (crackrender export), got "
                               f"{'no model' if path is None else path}")
    threshold = None if threshold is None else check_threshold(threshold)  # bad input before the load
    check_tiling(tile, overlap)
    check_min_length(straight_lines)
    flips, scales = check_flips(flips), check_scales(scales)
    model = OnnxCBPRN(path, alpha=alpha, beta=beta, threads=threads)
    seg = Segmenter(model, torch.device("cpu"), source=str(path),
                    threshold=_exported_threshold(model, flips, scales) if threshold is None else threshold,
                    tile=tile, overlap=overlap, straight_lines=straight_lines, flips=flips, scales=scales)
    seg.info = model.info
    return seg


def _exported_threshold(model: OnnxCBPRN, flips: int, scales) -> float:
    """The file's threshold; for test-time views the one its info recorded for them, if any."""
    from crackrender.threshold import model_threshold

    return model_threshold({**model.info, "threshold": model.threshold}, flips, scales)
