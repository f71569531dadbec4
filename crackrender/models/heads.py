"""Fusion into the enhanced crack feature map, the heatmap head and the point head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EnhancedFeatureFusion(nn.Module):
    """res2 + FPN top-down context from res3..res5 + edge-branch features, all at stride 4,
    concatenated and mixed by a 3x3 conv: the paper's "enhanced crack feature map"."""

    def __init__(self, backbone_channels: list[int], edge_channels: int, fpn_dim: int = 128, out_dim: int = 128):
        super().__init__()
        c2, c3, c4, c5 = backbone_channels
        self.lateral2 = nn.Conv2d(c2, fpn_dim, 1)
        self.lateral = nn.ModuleList(nn.Conv2d(c, fpn_dim, 1) for c in (c3, c4, c5))
        self.context = conv_bn_relu(fpn_dim, fpn_dim)
        self.fuse = nn.Sequential(conv_bn_relu(2 * fpn_dim + edge_channels, out_dim), conv_bn_relu(out_dim, out_dim))
        self.out_channels = out_dim

    def forward(self, feats: list[torch.Tensor], edge: torch.Tensor | None) -> torch.Tensor:
        c2, c3, c4, c5 = feats
        top = self.lateral[2](c5)
        for lateral, c in ((self.lateral[1], c4), (self.lateral[0], c3)):
            top = lateral(c) + F.interpolate(top, size=c.shape[-2:], mode="bilinear", align_corners=False)
        context = F.interpolate(self.context(top), size=c2.shape[-2:], mode="bilinear", align_corners=False)
        parts = [self.lateral2(c2), context]
        if edge is not None:
            parts.append(edge)
        return self.fuse(torch.cat(parts, dim=1))


class HeatmapHead(nn.Sequential):
    """Two conv modules: 3x3 conv-BN-ReLU, then a 1x1 conv to the crack logit."""

    def __init__(self, in_dim: int, hidden: int = 64):
        super().__init__(conv_bn_relu(in_dim, hidden), nn.Conv2d(hidden, 1, 1))


class PointHead(nn.Module):
    """Shared MLP over points, as PointRend's: fine features + the coarse logit in, the coarse
    logit re-appended to every hidden layer, one logit out. ``nn.Linear`` on (P, C) is 1.8x
    faster on CPU than ``Conv1d`` (docs/design.md, "Measured costs"); it is a stack of 1x1 convs all the same."""

    def __init__(self, in_dim: int, hidden: int = 256, num_layers: int = 3, extra_dim: int = 0):
        super().__init__()
        dims = [in_dim] + [hidden] * num_layers
        self.layers = nn.ModuleList(nn.Linear(d + 1, hidden) for d in dims[:-1])
        self.predictor = nn.Linear(hidden + 1, 1)
        # extra per-point inputs join the first layer through their own projection, zero at start:
        # a head extended this way computes what the head without them did, so its weights
        # fine-tune from a model file made without them
        self.extra = None
        if extra_dim:
            self.extra = nn.Linear(extra_dim, hidden, bias=False)
            nn.init.zeros_(self.extra.weight)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """fine (..., C), coarse (..., 1), extra (..., E) when built with extra_dim -> logits (...)."""
        if (extra is None) != (self.extra is None):
            raise ValueError("extra inputs must be given exactly when the head was built with extra_dim")
        x = fine
        for i, layer in enumerate(self.layers):
            y = layer(torch.cat([x, coarse], dim=-1))
            x = F.relu(y + self.extra(extra) if i == 0 and extra is not None else y)
        return self.predictor(torch.cat([x, coarse], dim=-1)).squeeze(-1)
