"""RefineNet (Lin et al., CVPR 2017), the strongest coarse network of the paper's Table 3. No
library ships it, so it is written here from the paper's description: four cascaded RefineNet
blocks over res5..res2 of a ResNet, each made of residual conv units (RCU), multi-resolution
fusion and chained residual pooling (CRP), giving crack logits at stride 4.

As in the paper the refinement path has no normalisation layers; the ResNet keeps its own.
One width (``dim``, 256 by default) for every block, where the paper widens the res5 block to 512:
a simplification, kept configurable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crackrender.models.backbone import ResNetFeatures


def conv3x3(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


class ResidualConvUnit(nn.Module):
    """ReLU-conv-ReLU-conv plus the input: the RCU that adapts pretrained features to the task."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv1, self.conv2 = conv3x3(dim, dim), conv3x3(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class MultiResolutionFusion(nn.Module):
    """A 3x3 conv per input path, all upsampled to the largest input and summed."""

    def __init__(self, dim: int, num_inputs: int):
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(dim, dim) for _ in range(num_inputs))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        size = max((x.shape[-2:] for x in xs), key=lambda s: s[0] * s[1])
        out = 0
        for conv, x in zip(self.convs, xs):
            y = conv(x)
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            out = out + y
        return out


class ChainedResidualPooling(nn.Module):
    """ReLU, then a chain of (5x5 max-pool stride 1, 3x3 conv) blocks whose outputs are all added
    to the input: context from ever larger regions, without lowering the resolution."""

    def __init__(self, dim: int, num_blocks: int = 2):
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(dim, dim, bias=False) for _ in range(num_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        out, path = x, x
        for conv in self.convs:
            path = conv(F.max_pool2d(path, 5, stride=1, padding=2))
            out = out + path
        return out


class RefineBlock(nn.Module):
    """One RefineNet block: two RCUs per input path, fusion (if more than one path), CRP, one RCU."""

    def __init__(self, dim: int, num_inputs: int):
        super().__init__()
        self.adapt = nn.ModuleList(nn.Sequential(ResidualConvUnit(dim), ResidualConvUnit(dim)) for _ in range(num_inputs))
        self.fusion = MultiResolutionFusion(dim, num_inputs) if num_inputs > 1 else None
        self.pool = ChainedResidualPooling(dim)
        self.out = ResidualConvUnit(dim)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        xs = [adapt(x) for adapt, x in zip(self.adapt, xs)]
        x = self.fusion(xs) if self.fusion is not None else xs[0]
        return self.out(self.pool(x))


class RefineNet(nn.Module):
    """4-cascaded RefineNet on a ResNet: normalised images -> (logits (B,1,H/4,W/4), res2 (B,C,H/4,W/4)).

    Examples:
        >>> net = RefineNet("resnet18", dim=32).eval()
        >>> logits, fine = net(torch.rand(1, 3, 64, 96))
        >>> tuple(logits.shape), tuple(fine.shape)
        ((1, 1, 16, 24), (1, 64, 16, 24))
    """

    def __init__(self, backbone: str = "resnet50", pretrained: bool = False, dim: int = 256):
        super().__init__()
        self.backbone = ResNetFeatures(backbone, pretrained)
        # 3x3 convs bring each ResNet stage to the common width before its block
        self.reduce = nn.ModuleList(conv3x3(c, dim, bias=False) for c in self.backbone.channels)
        # blocks[3] sees res5 alone; blocks[i] fuses res(i+2) with the output of blocks[i+1]
        self.blocks = nn.ModuleList([RefineBlock(dim, 2), RefineBlock(dim, 2), RefineBlock(dim, 2), RefineBlock(dim, 1)])
        self.head = nn.Sequential(ResidualConvUnit(dim), ResidualConvUnit(dim), nn.Conv2d(dim, 1, 1))
        self.fine_channels = self.backbone.channels[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(x)
        reduced = [r(f) for r, f in zip(self.reduce, feats)]
        y = self.blocks[3]([reduced[3]])
        for i in (2, 1, 0):
            y = self.blocks[i]([reduced[i], y])
        return self.head(y), feats[0]
