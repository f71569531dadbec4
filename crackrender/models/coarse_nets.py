"""The coarse networks that guide PointRend in the paper's Table 3: FCN-18, UNet, DeepLabV3+,
PSPNet and RefineNet.

Every one maps ImageNet-normalised images whose sides are multiples of 32 to ``(coarse logits
(B, 1, h', w') at the network's own output resolution, fine features at stride 4)``; the fine
features (the encoder's res2) feed PointRend's point head. Output strides: FCN 32, UNet 1,
DeepLabV3+ 4, PSPNet 8, RefineNet 4. The final bilinear upsampling that the libraries append is
left out: PointRend's subdivision does that upsampling, point by point.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.fcn import FCNHead

from crackrender.checks import choice
from crackrender.errors import CrackRenderError
from crackrender.models.backbone import RESNETS, ResNetFeatures
from crackrender.models.refinenet import RefineNet

COARSE_KINDS = ("fcn", "unet", "deeplabv3plus", "pspnet", "refinenet")

# smp's index of the stride-4 encoder feature (its list starts with the input itself)
_SMP_STRIDE4 = 2


class FCN(nn.Module):
    """torchvision's FCNHead on res5 of a ResNet (FCN-32s). "FCN-18" is this on ResNet18, whose
    BasicBlocks cannot be dilated the way torchvision's FCN-ResNet50 reaches stride 8."""

    def __init__(self, backbone: str, pretrained: bool):
        super().__init__()
        self.backbone = ResNetFeatures(backbone, pretrained)
        self.head = FCNHead(self.backbone.channels[3], 1)
        self.fine_channels = self.backbone.channels[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.backbone(x)
        return self.head(feats[3]), feats[0]


class PooledBatchNorm(nn.BatchNorm2d):
    """BatchNorm after a global pooling (DeepLabV3+'s ASPP image branch): each image gives one
    value per channel, so a training batch of one has no batch statistics and plain BatchNorm
    raises. Here such a batch is normalised with the running statistics (as in eval mode, and
    without updating them); larger batches are ordinary BatchNorm. Same state-dict keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def _make_batch1_safe(net: nn.Module) -> None:
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import ASPPPooling

    for module in net.modules():
        if isinstance(module, ASPPPooling):
            for i, child in enumerate(module):
                if type(child) is nn.BatchNorm2d:
                    safe = PooledBatchNorm(child.num_features, child.eps, child.momentum)
                    safe.load_state_dict(child.state_dict())
                    module[i] = safe


class SmpCoarseNet(nn.Module):
    """A segmentation_models_pytorch network run as encoder once, then decoder + segmentation
    head; its encoder's stride-4 features are the fine features."""

    def __init__(self, kind: str, backbone: str, pretrained: bool):
        super().__init__()
        import segmentation_models_pytorch as smp

        builders = {"unet": (smp.Unet, {}),
                    "deeplabv3plus": (smp.DeepLabV3Plus, {"upsampling": 1}),
                    "pspnet": (smp.PSPNet, {"upsampling": 1})}
        cls, extra = builders[kind]
        weights = "imagenet" if pretrained else None
        try:
            self.net = cls(encoder_name=backbone, encoder_weights=weights, classes=1, **extra)
        except Exception as exc:  # offline Hub, missing cache, corrupt file: all mean "no weights"
            if not pretrained:
                raise
            raise CrackRenderError(
                f"could not load ImageNet weights for the {kind} {backbone} encoder from the Hugging Face Hub "
                f"({type(exc).__name__}: {exc}); run once online to fill the Hub cache or train with "
                f"pretrained: false") from None
        if kind == "deeplabv3plus":
            _make_batch1_safe(self.net)
        # a shallow encoder (PSPNet's depth 3) keeps ResNet's deeper stages without calling them:
        # drop them, or they sit in checkpoints and break DDP with parameters that get no gradient
        depth = len(self.net.encoder.out_channels) - 1
        for stage in range(depth, 5):
            delattr(self.net.encoder, f"layer{stage}")
        self.fine_channels = self.net.encoder.out_channels[_SMP_STRIDE4]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.net.encoder(x)
        logits = self.net.segmentation_head(self.net.decoder(feats))
        return logits, feats[_SMP_STRIDE4]


def build_coarse_net(kind: str, backbone: str = "resnet50", pretrained: bool = False) -> nn.Module:
    """The coarse network ``kind`` (one of COARSE_KINDS) on a ResNet ``backbone``.

    ``pretrained=True`` loads ImageNet encoder weights (torchvision's API for fcn and refinenet,
    the Hugging Face Hub for smp's nets) and fails with a CrackRenderError when it cannot.

    Examples:
        >>> net = build_coarse_net("pspnet", "resnet18").eval()
        >>> logits, fine = net(torch.rand(1, 3, 64, 96))
        >>> tuple(logits.shape), tuple(fine.shape)
        ((1, 1, 8, 12), (1, 64, 16, 24))
    """
    choice(kind, "coarse network", COARSE_KINDS)
    choice(backbone, "backbone", RESNETS)  # smp would accept other encoders; the tables use ResNets
    if kind == "fcn":
        return FCN(backbone, pretrained)
    if kind == "refinenet":
        return RefineNet(backbone, pretrained)
    return SmpCoarseNet(kind, backbone, pretrained)
