"""CBPRN to ONNX: the network (image -> heatmap logits and the maps the point head reads) and the
point head (point features -> logits), each a graph with dynamic sizes.

Exported with torch's dynamo exporter (``torch.export`` + onnxscript). The TorchScript exporter
(``dynamo=False``) traces Python arithmetic on sizes into constants (the edge branch's crop,
torchvision's Swin window partition), so its graph fails at any size but the traced one; the
dynamo exporter keeps height, width and batch symbolic. The graphs are checked with onnx's
checker (full shape inference) and run once with onnxruntime against PyTorch before anything is
written; both files are written atomically, and only when both are ready.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import secrets
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from crackrender.deploy.files import (NETWORK, ONNX_EXTRA, PAD_MULTIPLE, POINT_HEAD, check_network_path,
                                      make_metadata, point_head_path, set_metadata)
from crackrender.errors import CrackRenderError

# ONNX opset of the exported graphs (onnxscript's torch library targets 18 and above)
OPSET = 18
# largest absolute difference between onnxruntime's and PyTorch's heatmap logits accepted by the
# self-check (measured: about 4e-6 in float32)
PARITY_TOLERANCE = 1e-3
NETWORK_INPUTS = ("image",)
NETWORK_OUTPUTS = ("coarse", "features")
FINE_OUTPUTS = ("stem", "image_normalized")
POINT_INPUTS = ("fine", "coarse", "extra")
POINT_OUTPUTS = ("logits",)


class NetworkGraph(nn.Module):
    """CBPRN's forward on an image already padded to a multiple of 32: heatmap logits and the
    enhanced feature map (and with ``point_fine`` the stem's map and the normalised image), all
    of the padded image. The crop to the image and the extents stay in PyTorch (onnx_backend)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(image)
        maps = (out["coarse"], out["features"])
        return maps + (out["stem"], out["image"]) if self.model.point_fine else maps


class PointHeadGraph(nn.Module):
    """The point head over N points: fine (N, C), coarse (N, 1) [, extra (N, E)] -> logits (N)."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(fine, coarse, extra)


def traceable(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose window attention is torchvision's own formulation.

    crackrender's fast WindowAttention (models/swin_attention.py) loops and caches over the number
    of windows, plain Python ints that torch.export would have to fix at the traced size;
    torchvision's ShiftedWindowAttention, which it subclasses with the same parameters, computes
    the same function in tensor ops that stay symbolic in height and width.
    """
    from torchvision.models.swin_transformer import ShiftedWindowAttention

    model = copy.deepcopy(model)
    for module in model.modules():
        if isinstance(module, ShiftedWindowAttention):
            module.__class__ = ShiftedWindowAttention
    return model


def check_exportable(model: nn.Module, source: str) -> None:
    """A one-line error unless ``model`` is a CBPRN with the heatmap-guided rule."""
    name = getattr(model, "name", type(model).__name__)
    if name != "cbprn":
        raise CrackRenderError(f"{source}: cannot export a {name!r} model; ONNX export supports CBPRN only")
    if model.guidance != "heatmap":
        raise CrackRenderError(f"{source}: cannot export a CBPRN with guidance={model.guidance!r} "
                               f"(PointRend's subdivision); ONNX export supports the heatmap-guided rule only")


def _to_onnx(module: nn.Module, args: tuple, input_names, output_names, dynamic_shapes):
    """One dynamo export to an in-memory onnx ModelProto, with the exporter's chatter silenced."""
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, args, dynamo=True, opset_version=OPSET, input_names=list(input_names),
                                        output_names=list(output_names), dynamic_shapes=dynamic_shapes,
                                        optimize=True, verbose=False)
    except Exception as exc:  # torch.export's errors span pages; the first line says what failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CrackRenderError(f"this model's architecture cannot be exported to ONNX ({type(exc).__name__}: "
                               f"{first})") from None
    return program.model_proto


def network_proto(model: nn.Module):
    """The network graph: input ``image`` (B, 3, 32h, 32w) float32 in [0, 1]."""
    from torch.export import Dim

    # batch 2 and unequal sides: torch.export specialises sizes 0 and 1 and equal example sizes
    example = torch.rand(2, 3, 3 * PAD_MULTIPLE, 4 * PAD_MULTIPLE)
    # traced at padded sides of 64 px and more: see files.min_side for the smallest exact size
    rows, cols = Dim("rows", min=2, max=1024), Dim("cols", min=2, max=1024)
    shapes = ({0: Dim("batch", min=1, max=256), 2: PAD_MULTIPLE * rows, 3: PAD_MULTIPLE * cols},)
    names = NETWORK_OUTPUTS + (FINE_OUTPUTS if model.point_fine else ())
    return _to_onnx(NetworkGraph(model), (example,), NETWORK_INPUTS, names, shapes)


def point_head_proto(model: nn.Module):
    """The point head graph: ``fine`` (N, C), ``coarse`` (N, 1) [, ``extra`` (N, E)] -> ``logits`` (N)."""
    from torch.export import Dim

    head = model.point_head
    points = Dim("points", min=1)
    example = [torch.randn(7, head.layers[0].in_features - 1), torch.randn(7, 1)]
    if head.extra is not None:
        example.append(torch.randn(7, head.extra.in_features))
    shapes = {name: {0: points} for name in POINT_INPUTS[:len(example)]}
    return _to_onnx(PointHeadGraph(head), tuple(example), POINT_INPUTS[:len(example)], POINT_OUTPUTS, shapes)


def check_graph(proto, what: str) -> None:
    """onnx's checker with full shape inference, and the opset we meant to export."""
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CrackRenderError(f"the exported {what} graph fails onnx's checker: {first}") from None
    opset = {o.domain: o.version for o in proto.opset_import}.get("", None)
    if opset != OPSET:
        raise CrackRenderError(f"the exported {what} graph has opset {opset}, expected {OPSET}")


def check_parity(model: nn.Module, network: bytes, points: bytes) -> float:
    """Run both graphs once with onnxruntime against PyTorch at a size other than the traced one;
    returns the largest logit difference, or fails if it exceeds PARITY_TOLERANCE."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 5 * PAD_MULTIPLE, 2 * PAD_MULTIPLE, generator=gen)
    with torch.no_grad():
        ref = NetworkGraph(model)(image)
    got = ort.InferenceSession(network, options, providers=["CPUExecutionProvider"]).run(None, {"image": image.numpy()})
    worst = max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref))
    head = PointHeadGraph(model.point_head)
    feeds = {"fine": ref[1][0, :, :3].reshape(ref[1].shape[1], -1).T.contiguous(),
             "coarse": ref[0][0, :, :3].reshape(1, -1).T.contiguous()}
    if model.point_fine:
        feeds["extra"] = torch.randn(feeds["fine"].shape[0], head.head.extra.in_features, generator=gen)
    with torch.no_grad():
        ref_logits = head(*feeds.values())
    session = ort.InferenceSession(points, options, providers=["CPUExecutionProvider"])
    logits = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    worst = max(worst, float(np.abs(logits - ref_logits.numpy()).max()))
    if not worst <= PARITY_TOLERANCE:
        raise CrackRenderError(f"the exported graphs differ from PyTorch by {worst:.3g} (tolerance "
                               f"{PARITY_TOLERANCE}); not written")
    return worst


def export_onnx(model_path: str | os.PathLike | None, out: str | os.PathLike, *, int8: bool = False,
                calibration: Sequence[str | os.PathLike] | None = None, calibration_images: int = 32,
                progress: bool = True) -> tuple[Path, Path]:
    """Export a CBPRN model file (``None``: the shipped model) to ``out`` (``.onnx``) and its point
    head beside it (``.points.onnx``); returns both paths.

    ``int8``: quantise the network statically, calibrated on ``calibration_images`` images from
    ``calibration`` (dataset folders, whose train split is used, or image folders/files); see
    :mod:`crackrender.deploy.quantise` and docs/deploy.md for what it costs in accuracy.
    Nothing is written unless both graphs exported, passed the checker and matched PyTorch.
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise CrackRenderError(ONNX_EXTRA) from None
    from crackrender.checkpoint import load_model_and_info
    from crackrender.io import atomic_write_bytes
    from crackrender.threshold import model_threshold
    from crackrender.weights import default_model_path

    out = check_network_path(out)
    model_path = Path(default_model_path() if model_path is None else model_path)
    if int8 and not calibration:
        raise CrackRenderError("--int8 needs calibration images: --calibration DATASET_DIR (its train split) "
                               "or an image folder")
    calibration_files = None
    if int8:
        from crackrender.deploy.quantise import calibration_files as find_calibration

        calibration_files = find_calibration(calibration, calibration_images)
    model, info = load_model_and_info(model_path)  # float32, eval
    check_exportable(model, str(model_path))
    model = traceable(model)
    steps = ["network", "point head", "check"] + (["int8"] if int8 else [])
    from tqdm import tqdm

    bar = tqdm(steps, desc="export", unit="step", disable=not progress)
    bar.set_postfix_str(steps[0])
    net = network_proto(model)
    bar.update()
    bar.set_postfix_str(steps[1])
    head = point_head_proto(model)
    bar.update()
    bar.set_postfix_str(steps[2])
    check_graph(net, NETWORK)
    check_graph(head, POINT_HEAD)
    check_parity(model, net.SerializeToString(), head.SerializeToString())
    bar.update()
    precision = "fp32"
    if int8:
        from crackrender.deploy.quantise import quantise_network

        bar.set_postfix_str(steps[3])
        net = quantise_network(net, calibration_files, progress=progress)
        check_graph(net, NETWORK)
        precision = "int8"
        bar.update()
    bar.close()
    token = secrets.token_hex(8)
    common = dict(config=model.config, info=info, threshold=model_threshold(info), token=token, precision=precision,
                  source=model_path.name)
    set_metadata(net, make_metadata(NETWORK, **common))
    set_metadata(head, make_metadata(POINT_HEAD, **common))
    for proto in (net, head):
        proto.producer_name, proto.doc_string = "crackrender", f"CBPRN from {model_path.name}; see docs/deploy.md"
    net_bytes, head_bytes = net.SerializeToString(), head.SerializeToString()
    # the point head first: a network file never names a point head that is not there yet
    points_out = atomic_write_bytes(point_head_path(out), head_bytes)
    return atomic_write_bytes(out, net_bytes), points_out


__all__ = ["NetworkGraph", "PointHeadGraph", "export_onnx", "network_proto", "point_head_proto"]
