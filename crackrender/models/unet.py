"""The peer every trained model is judged against (issue 15.6): a plain UNet with a ResNet
encoder (segmentation_models_pytorch, random init unless ``pretrained``), every pixel supervised
(BCE + Dice), no point head. Built from the same smp network PointRend-UNet uses as its coarse net.
"""

from __future__ import annotations

import torch

from crackrender.checks import choice
from crackrender.models.backbone import RESNETS
from crackrender.models.base import Prediction, SegmentationModel, Stopwatch, check_images, pad_to_multiple
from crackrender.models.coarse_nets import SmpCoarseNet


class UNet(SegmentationModel):
    """smp's UNet on a ResNet encoder (``backbone``, resnet18 by default), full-resolution logits.

    Images are reflect-padded to a multiple of 32 and cropped back, so any size works.

    Examples:
        >>> model = UNet().eval()
        >>> out = model.predict(torch.rand(1, 3, 37, 53))
        >>> tuple(out.mask.shape), out.refined_points
        ((1, 37, 53), [0])
    """

    name = "unet"
    pad_multiple = 32  # the encoder's deepest stride

    def __init__(self, *, backbone: str = "resnet18", pretrained: bool = False):
        super().__init__()
        self.net = SmpCoarseNet("unet", choice(backbone, "backbone", RESNETS), pretrained)

    def forward(self, images: torch.Tensor, timings: dict | None = None) -> dict:
        """images (B,3,H,W) in [0,1] -> {"coarse": logits (B,1,H,W)}."""
        check_images(images)
        h, w = images.shape[-2:]
        x, _ = pad_to_multiple(self.normalize(images), self.pad_multiple)
        with Stopwatch(timings)("unet", images.device):
            logits, _ = self.net(x)
        return {"coarse": logits[..., :h, :w]}

    def training_outputs(self, images, masks, generator=None) -> dict:
        """Full-resolution logits only: the losses supervise every pixel (no points)."""
        return self(images)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, refine: bool = True, timings: dict | None = None) -> Prediction:
        """The thresholded logits; ``refine`` is accepted for the common signature and changes
        nothing (there is no point head)."""
        return Prediction.from_logits(self(images, timings)["coarse"], [0] * images.shape[0])
