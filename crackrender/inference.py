"""The one place that turns a photo into a model input and sets a model up for inference.

Channels-last is the layout CBPRN runs fastest in on CPU: its point head samples the stride-4
feature map with ``grid_sample``, 7x faster from a channels-last map (docs/design.md, "Measured
costs"). An (H, W, 3) array is already channels-last in memory, so the input costs no copy.
"""

from __future__ import annotations

import numpy as np
import torch


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in [0, 1] on ``device``, channels-last.

    Examples:
        >>> x = image_to_tensor(np.zeros((5, 7, 3), np.uint8))
        >>> tuple(x.shape), x.is_contiguous(memory_format=torch.channels_last)
        ((1, 3, 5, 7), True)
    """
    # uint8 travels to the device (4x fewer bytes than float), then converts there
    x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float().div_(255)
    return x.contiguous(memory_format=torch.channels_last)


def prepare_model(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """``model`` in the memory layout inference on ``device`` is fastest in: channels-last on CPU.

    On CUDA the weights keep their loaded layout: the CPU is where channels-last was measured to pay.
    """
    if torch.device(device).type == "cpu":
        return model.to(memory_format=torch.channels_last)
    return model
