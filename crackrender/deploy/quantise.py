"""INT8 quantisation of the exported network with onnxruntime's tools.

Static quantisation (QDQ format, int8 weights per channel, uint8 activations: the layout
onnxruntime runs fastest on x86 CPUs with VNNI) calibrated on a few dozen images: the activation
ranges come from running the float graph on them (MinMax). The point head stays float32: it
re-predicts only the uncertain band, a few percent of the run time (BENCHMARKS.md), and it is the
part whose answers decide the crack boundary. docs/deploy.md gives the measured accuracy cost.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from crackrender.deploy.files import PAD_MULTIPLE
from crackrender.errors import InputError


def calibration_files(sources: Sequence[str | os.PathLike], count: int) -> list[Path]:
    """``count`` image files, evenly spaced, from ``sources``: a dataset folder contributes its
    train split (``train.txt``), an image folder or file its images."""
    from crackrender.data.datasets import split_images
    from crackrender.io import expand_inputs

    if int(count) < 1:
        raise InputError(f"need at least one calibration image, got {count}")
    files: list[Path] = []
    for source in map(Path, sources):
        is_dataset = (source / "images").is_dir() and (source / "train.txt").is_file()
        files += split_images([source], "train") if is_dataset else expand_inputs([source], "calibration images")
    picks = np.linspace(0, len(files) - 1, num=min(int(count), len(files))).round().astype(int)
    return [files[i] for i in picks]


def network_input(path: Path) -> np.ndarray:
    """An image file as the network graph's input: (1, 3, 32h, 32w) float32, reflect-padded as CBPRN pads."""
    from crackrender.inference import image_to_tensor
    from crackrender.io import read_image
    from crackrender.models.base import pad_to_multiple

    padded, _ = pad_to_multiple(image_to_tensor(read_image(path)), PAD_MULTIPLE)
    return np.ascontiguousarray(padded.numpy())


def quantise_network(proto, files: Sequence[Path], *, progress: bool = True):
    """The network ModelProto quantised statically to INT8 (QDQ), calibrated on ``files``."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tqdm import tqdm

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.files = iter(tqdm(files, desc="calibrate", unit="image", disable=not progress, leave=False))

        def get_next(self):
            path = next(self.files, None)
            return None if path is None else {"image": network_input(path)}

    root_logger, level = logging.getLogger(), logging.getLogger().level
    # the quantiser logs a warning per LayerNorm weight it cannot quantise per channel: noise here
    root_logger.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="crackrender-int8-") as tmp:
            tmp = Path(tmp)
            onnx.save(proto, tmp / "fp32.onnx")
            # graph fusions and ONNX shape inference first, as onnxruntime's quantisation guide asks (its
            # symbolic shape inference gives up on the Swin blocks' dynamic window partition)
            quant_pre_process(str(tmp / "fp32.onnx"), str(tmp / "pre.onnx"), skip_symbolic_shape=True)
            quantize_static(str(tmp / "pre.onnx"), str(tmp / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=CalibrationMethod.MinMax)
            return onnx.load(str(tmp / "int8.onnx"))
    finally:
        root_logger.setLevel(level)


__all__ = ["calibration_files", "network_input", "quantise_network"]
