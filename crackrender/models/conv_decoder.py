"""Table 1's first row: CBPRN's encoder with a conventional decoder (conv + x2 upsampling to
full resolution) and dense supervision on every pixel, instead of the heatmap + point head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crackrender.checks import positive_int
from crackrender.models.base import Prediction, SegmentationModel, Stopwatch
from crackrender.models.encoder import EncoderOptions, EnhancedEncoder
from crackrender.models.heads import conv_bn_relu


class UpsamplingDecoder(nn.Module):
    """From the stride-4 feature map: two (x2 bilinear upsampling, 3x3 conv-BN-ReLU) blocks, the
    second landing exactly on the image size (ceil-sized stride-4 maps overshoot odd sizes), then
    a 1x1 conv to the crack logit."""

    def __init__(self, in_dim: int, dim: int = 64):
        super().__init__()
        self.up1 = conv_bn_relu(in_dim, dim)
        self.up2 = conv_bn_relu(dim, max(1, dim // 2))
        self.predictor = nn.Conv2d(max(1, dim // 2), 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        half = (-(-size[0] // 2), -(-size[1] // 2))
        x = self.up1(F.interpolate(x, size=half, mode="bilinear", align_corners=False))
        x = self.up2(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.predictor(x)


class ConvDecoderNet(EnhancedEncoder, SegmentationModel):
    """CBPRN's encoder (its :class:`EncoderOptions` as keywords) + :class:`UpsamplingDecoder`
    (``decoder_dim``).

    Examples:
        >>> model = ConvDecoderNet(backbone="resnet18", edge_dim=16, edge_heads=2, window=4).eval()
        >>> out = model.predict(torch.rand(1, 3, 67, 93))
        >>> tuple(out.mask.shape), out.refined_points
        ((1, 67, 93), [0])
    """

    name = "conv_decoder"

    def __init__(self, *, decoder_dim: int = 64, **encoder_options):
        super().__init__()
        positive_int(decoder_dim, "decoder_dim")
        self._build_encoder(EncoderOptions(**encoder_options))
        self.decoder = UpsamplingDecoder(in_dim=self.fusion.out_channels, dim=decoder_dim)

    def forward(self, images: torch.Tensor, timings: dict | None = None) -> dict:
        """images (B,3,H,W) in [0,1] -> {"coarse": full-resolution logits (B,1,H,W)}."""
        watch = Stopwatch(timings)
        h, w = images.shape[-2:]
        feats, edge = self._encode(images, watch)
        padded = (4 * feats[0].shape[-2], 4 * feats[0].shape[-1])
        with watch("decoder", images.device):
            logits = self.decoder(self.fusion(feats, edge), padded)
        return {"coarse": logits[..., :h, :w]}

    def training_outputs(self, images, masks, generator=None) -> dict:
        """Full-resolution logits only: the losses supervise every pixel (no points)."""
        return self(images)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, refine: bool = True, timings: dict | None = None) -> Prediction:
        """The thresholded full-resolution logits; ``refine`` is accepted for a common signature
        and changes nothing (there is no point head), so ``refined_points`` is always 0."""
        return Prediction.from_logits(self(images, timings)["coarse"], [0] * images.shape[0])
