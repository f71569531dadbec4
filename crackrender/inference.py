"""The one place that turns a photo into a model input and sets a model up for inference.

Inference folds each eval-mode BatchNorm into the convolution before it: the same function up to
float rounding, one pass over each feature map instead of two (BatchNorm was a tenth of CBPRN's
CPU time at 2048x1536, docs/design.md, "Measured costs").

Channels-last is the layout CBPRN runs fastest in on CPU: its point head samples the stride-4
feature map with ``grid_sample``, 7x faster from a channels-last map (docs/design.md, "Measured
costs"). An (H, W, 3) array is already channels-last in memory, so the input costs no copy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet


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


def prepare_model(model: nn.Module, device: torch.device | str) -> nn.Module:
    """``model`` set up for inference on ``device``, in place: BatchNorm folded into the convs
    before it when the model is in eval mode (:func:`fold_batchnorm`; train it no more after that),
    and channels-last on CPU, the layout inference there is fastest in.

    On CUDA the weights keep their loaded layout: the CPU is where channels-last was measured to pay.
    """
    if not model.training:
        fold_batchnorm(model)
    if torch.device(device).type == "cpu":
        return model.to(memory_format=torch.channels_last)
    return model


# modules whose forward applies bnN to convN's output and nothing else in between: torchvision's
# ResNet (stem) and its blocks, which smp's ResNet encoders reuse
_NAMED_PAIRS = {ResNet: (("conv1", "bn1"),),
                BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
                Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))}


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` into that conv, in
    place, and return how many were folded. Only pairs whose order of execution is known are
    folded: neighbours in an ``nn.Sequential`` and the conv/bn pairs of torchvision's ResNet and
    its blocks; any other BatchNorm is left as it is.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
        >>> fold_batchnorm(net), type(net[1]).__name__
        (1, 'Identity')
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode: training updates BatchNorm's statistics")
    folded = 0
    for parent in list(model.modules()):
        if isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            pairs = list(zip(names, names[1:]))
        else:
            pairs = next((p for cls, p in _NAMED_PAIRS.items() if type(parent) is cls), ())
        for conv_name, bn_name in pairs:
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if _foldable(conv, bn):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                folded += 1
    if folded:
        model._batchnorm_folded = True  # checkpoint.save_model refuses it: the state dict changed shape
    return folded


def is_folded(model: nn.Module) -> bool:
    """True for a model in which :func:`fold_batchnorm` folded at least one BatchNorm."""
    return getattr(model, "_batchnorm_folded", False)


def _foldable(conv, bn) -> bool:
    return (type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d) and not bn.training
            and bn.running_mean is not None and conv.out_channels == bn.num_features)
