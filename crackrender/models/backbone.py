"""ResNet feature extractor (res2..res5) with torchvision's weights API for ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision.models as tvm
from torch import nn

from crackrender.checks import choice
from crackrender.errors import CrackRenderError

RESNETS = {
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights),
    "resnet34": (tvm.resnet34, tvm.ResNet34_Weights),
    "resnet50": (tvm.resnet50, tvm.ResNet50_Weights),
    "resnet101": (tvm.resnet101, tvm.ResNet101_Weights),
}


def build_resnet(name: str, pretrained: bool = False) -> nn.Module:
    """A torchvision ResNet, randomly initialised or with ImageNet weights.

    Weights come through torchvision's API: a file already in ``$TORCH_HOME/hub/checkpoints`` is
    loaded without downloading; otherwise it downloads, and offline that fails with a clear
    ``CrackRenderError``, never a silent random init.
    """
    builder, weights_enum = RESNETS[choice(name, "backbone", RESNETS)]
    if not pretrained:
        return builder(weights=None)
    weights = weights_enum.DEFAULT
    try:
        return builder(weights=weights)
    except Exception as exc:  # URLError, HTTP errors, corrupt files: all mean "no weights"
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise CrackRenderError(
            f"could not load ImageNet weights for {name} ({type(exc).__name__}: {exc}); "
            f"put {target.name} into {target.parent} or train with pretrained: false") from None


class ResNetFeatures(nn.Module):
    """res2..res5 of a ResNet (strides 4, 8, 16, 32), detectron2's naming."""

    def __init__(self, name: str = "resnet50", pretrained: bool = False):
        super().__init__()
        net = build_resnet(name, pretrained)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.res2, self.res3, self.res4, self.res5 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if name in ("resnet50", "resnet101") else 1
        self.channels = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_stem(x)[0]

    def forward_with_stem(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """res2..res5 and the stem's stride-2 map (conv1-bn-relu, before the max-pool)."""
        stem = self.stem[:3](x)
        c2 = self.res2(self.stem[3](stem))
        c3 = self.res3(c2)
        c4 = self.res4(c3)
        return [c2, c3, c4, self.res5(c4)], stem
