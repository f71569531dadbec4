"""Table 1's first row: CBPRN's encoder with a conventional decoder (conv + x2 upsampling to
full resolution) and dense supervision on every pixel, instead of the heatmap + point head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crackrender.models.base import Prediction, SegmentationModel, Stopwatch
from crackrender.models.cbprn import EnhancedEncoder
from crackrender.models.heads import conv_bn_relu
from crackrender.ops.sampling import positive_int


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
    """CBPRN's encoder (same keywords and defaults) + :class:`UpsamplingDecoder` (``decoder_dim``).

    Examples:
        >>> model = ConvDecoderNet(backbone="resnet18", edge_dim=16, edge_heads=2, window=4).eval()
        >>> out = model.predict(torch.rand(1, 3, 67, 93))
        >>> tuple(out.mask.shape), out.refined_points
        ((1, 67, 93), [0])
    """

    name = "conv_decoder"

    def __init__(self, *, backbone: str = "resnet50", pretrained: bool = False,
                 edge: bool = True, edge_dim: int = 60, edge_modules: int = 3, edge_heads: int = 6,
                 window: int = 8, edge_stride: int = 4, edge_mlp_ratio: float = 2.0,
                 gf_radius: int = 2, gf_eps: float = 1e-2,
                 fpn_dim: int = 128, feature_dim: int = 128, decoder_dim: int = 64):
        super().__init__(dict(backbone=backbone, pretrained=pretrained, edge=edge, edge_dim=edge_dim,
                              edge_modules=edge_modules, edge_heads=edge_heads, window=window,
                              edge_stride=edge_stride, edge_mlp_ratio=edge_mlp_ratio, gf_radius=gf_radius,
                              gf_eps=gf_eps, fpn_dim=fpn_dim, feature_dim=feature_dim, decoder_dim=decoder_dim))
        positive_int(decoder_dim, "decoder_dim")
        self._build_encoder(backbone, pretrained, edge, edge_dim, edge_modules, edge_heads, window, edge_stride,
                            edge_mlp_ratio, gf_radius, gf_eps, fpn_dim, feature_dim)
        self.decoder = UpsamplingDecoder(feature_dim, decoder_dim)

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
        prob = torch.sigmoid(self(images, timings)["coarse"][:, 0].float())
        return Prediction(prob > 0.5, prob, [0] * images.shape[0])
