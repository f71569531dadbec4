"""CBPRN's encoder: ResNet + edge-guided branch, fused into the enhanced crack feature map at
stride 4. Shared by CBPRN and the conventional-decoder baseline, which take its options
(:class:`EncoderOptions`) as keyword arguments of their own."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from crackrender.checks import in_range, non_negative_int, positive_int
from crackrender.models.backbone import ResNetFeatures
from crackrender.models.base import Stopwatch, check_images, pad_to_multiple
from crackrender.models.edge_branch import EdgeGuidedBranch
from crackrender.models.heads import EnhancedFeatureFusion


@dataclass(frozen=True)
class EncoderOptions:
    """The encoder's settings; each field is a keyword argument (and a config key) of every model
    built on :class:`EnhancedEncoder`, with the paper's value (or DESIGN.md's reading) as default.

    Examples:
        >>> EncoderOptions(backbone="resnet18").edge_dim
        60
        >>> EncoderOptions(edge_dim=0)
        Traceback (most recent call last):
        crackrender.errors.InputError: edge_dim must be a positive int, got 0
    """

    backbone: str = "resnet50"
    pretrained: bool = False
    edge: bool = True  # ablation switch: False is the paper's network without its edge-guided branch
    edge_dim: int = 60
    edge_modules: int = 3
    edge_heads: int = 6
    window: int = 8
    edge_stride: int = 4
    edge_mlp_ratio: float = 2.0
    gf_radius: int = 2
    gf_eps: float = 1e-2
    fpn_dim: int = 128
    feature_dim: int = 128

    def __post_init__(self):
        for name in ("edge_dim", "edge_modules", "edge_heads", "window", "edge_stride", "fpn_dim", "feature_dim"):
            positive_int(getattr(self, name), name)
        in_range(self.edge_mlp_ratio, "edge_mlp_ratio", 0, open_low=True)
        non_negative_int(self.gf_radius, "gf_radius")
        in_range(self.gf_eps, "gf_eps", 0, open_low=True)


class EnhancedEncoder:
    """A mixin for SegmentationModel: ``_build_encoder`` makes the parts, ``_encode`` runs them. The
    attribute names (backbone, edge_branch, fusion) are CBPRN's state-dict keys, so keep them."""

    # SegmentationModel records these fields as settings of the models that mix this in
    option_group = EncoderOptions
    # ResNet halves the size five times, rounding up: a side that is not a multiple of 32 would
    # give deeper maps that cover more than the image, stretched over it by the fusion
    pad_multiple = 32

    def _build_encoder(self, options: EncoderOptions) -> None:
        o = options
        self.backbone = ResNetFeatures(name=o.backbone, pretrained=o.pretrained)
        self.edge_branch = EdgeGuidedBranch(
            dim=o.edge_dim, num_modules=o.edge_modules, num_heads=o.edge_heads, window=o.window, stride=o.edge_stride,
            mlp_ratio=o.edge_mlp_ratio, gf_radius=o.gf_radius, gf_eps=o.gf_eps) if o.edge else None
        self.fusion = EnhancedFeatureFusion(backbone_channels=self.backbone.channels,
                                            edge_channels=o.edge_dim if o.edge else 0,
                                            fpn_dim=o.fpn_dim, out_dim=o.feature_dim)

    def _encode(self, images: torch.Tensor, watch: Stopwatch, fine: dict | None = None
                ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """ResNet features res2..res5 and the edge features on res2's grid (None without the
        branch), of the image reflect-padded on the bottom/right to a multiple of 32. A ``fine``
        dict receives the full-resolution maps: "stem" (stride 2) and "image" (normalised), both
        of the padded image."""
        check_images(images)
        images, _ = pad_to_multiple(images, self.pad_multiple)
        x = self.normalize(images)
        with watch("backbone", images.device):
            if fine is None:
                feats = self.backbone(x)
            else:
                feats, fine["stem"] = self.backbone.forward_with_stem(x)
                fine["image"] = x
        edge = None
        if self.edge_branch is not None:
            with watch("edge_branch", images.device):
                edge = self.edge_branch(images, self.normalize)
                if edge.shape[-2:] != feats[0].shape[-2:]:
                    # edge_stride != 4: resample to res2's grid (a crop would fail at stride 8 and
                    # keep only the top-left corner at stride 2)
                    edge = F.interpolate(edge, size=feats[0].shape[-2:], mode="bilinear", align_corners=False)
        return feats, edge
