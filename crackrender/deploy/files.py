"""The exported pair of ONNX files: their names, and the metadata that makes them self-describing.

``OUT.onnx`` holds the network, ``OUT.points.onnx`` the point head. Each carries, in its
``metadata_props``, the format, which graph it is, the model's config (alpha, beta, point_fine,
...), the model file's info and threshold, and a token shared by the two files, so a backend never
pairs a network with another export's point head.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from crackrender.errors import CrackRenderError

FORMAT = "crackrender-onnx/1"
NETWORK, POINT_HEAD = "network", "point_head"
# the network graph takes the image already reflect-padded to this multiple (as CBPRN pads it),
# so its height and width are free symbols in steps of 32 and the padding stays exact PyTorch code
PAD_MULTIPLE = 32
ONNX_EXTRA = "onnx, onnxscript and onnxruntime are needed: pip install 'crackrender[onnx]'"


def min_side(config: dict) -> int:
    """The smallest image side the exported network computes exactly as PyTorch does.

    torchvision's Swin blocks skip the window shift when the token grid is a single window, that
    is when the padded side is at most ``edge_stride * window`` px; the exported graph (traced at
    larger sizes) always shifts. For the shipped model (stride 4, window 8) sides up to 32 px differ.

    Examples:
        >>> min_side({"edge": True, "edge_stride": 4, "window": 8})
        33
        >>> min_side({"edge": True, "edge_stride": 4, "window": 4})
        1
    """
    if not config.get("edge", True):
        return 1
    return PAD_MULTIPLE * (config["edge_stride"] * config["window"] // PAD_MULTIPLE) + 1


def point_head_path(network_path: str | os.PathLike) -> Path:
    """The point head's file beside a network file: ``model.onnx`` -> ``model.points.onnx``.

    Examples:
        >>> point_head_path("out/cbprn.onnx").as_posix()
        'out/cbprn.points.onnx'
    """
    path = Path(network_path)
    return path.with_name(f"{path.stem}.points{path.suffix or '.onnx'}")


def check_network_path(path: str | os.PathLike) -> Path:
    """An output path for :func:`~crackrender.deploy.export.export_onnx`: must end in .onnx and
    not be a point head's own name, so the pair's names cannot collide."""
    path = Path(path)
    if path.suffix != ".onnx" or path.stem.endswith(".points"):
        raise CrackRenderError(f"{path}: the exported network's file must end in .onnx (and not in .points.onnx)")
    if path.is_dir():
        raise CrackRenderError(f"{path}: is a folder")
    return path


def make_metadata(graph: str, config: dict, info: dict, threshold: float, token: str, precision: str,
                  source: str) -> dict[str, str]:
    """The metadata_props of one exported graph (all values strings, as ONNX wants)."""
    return {"crackrender.format": FORMAT, "crackrender.graph": graph, "crackrender.config": json.dumps(config),
            "crackrender.info": json.dumps(info, default=str), "crackrender.threshold": repr(threshold),
            "crackrender.pair": token, "crackrender.precision": precision, "crackrender.source": source,
            "crackrender.pad_multiple": str(PAD_MULTIPLE), "crackrender.min_side": str(min_side(config))}


def set_metadata(model_proto, metadata: dict[str, str]) -> None:
    """Replace any crackrender.* entries of an onnx ModelProto's metadata_props with ``metadata``."""
    keep = [(p.key, p.value) for p in model_proto.metadata_props if p.key not in metadata]
    del model_proto.metadata_props[:]
    for key, value in keep + list(metadata.items()):
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def read_metadata(meta: dict[str, str], path: Path, graph: str) -> dict:
    """The parsed metadata of an exported file (a session's ``get_modelmeta().custom_metadata_map``),
    or a one-line error if ``path`` is not the ``graph`` of a crackrender export."""
    if meta.get("crackrender.format") != FORMAT:
        raise CrackRenderError(f"{path} is not a crackrender ONNX export (format {meta.get('crackrender.format')!r}); "
                               f"make one with `crackrender export`")
    if meta.get("crackrender.graph") != graph:
        raise CrackRenderError(f"{path} holds the {meta.get('crackrender.graph')!r} graph, expected {graph!r}"
                               + ("; pass the network's .onnx, not its .points.onnx" if graph == NETWORK else ""))
    try:
        return {"config": json.loads(meta["crackrender.config"]), "info": json.loads(meta["crackrender.info"]),
                "threshold": float(meta["crackrender.threshold"]), "pair": meta["crackrender.pair"],
                "precision": meta["crackrender.precision"], "source": meta["crackrender.source"],
                "pad_multiple": int(meta["crackrender.pad_multiple"]), "min_side": int(meta["crackrender.min_side"])}
    except (KeyError, ValueError) as exc:
        raise CrackRenderError(f"{path}: damaged crackrender metadata ({type(exc).__name__}: {exc})") from None
