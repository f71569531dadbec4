"""Edge-guided branch: a fixed guided filter on the input, then a SwinIR-style encoder."""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.models.swin_transformer import SwinTransformerBlock

from crackrender.errors import InputError
from crackrender.models.base import pad_to_multiple
from crackrender.models.swin_attention import WindowAttention
from crackrender.ops import GuidedFilter


class SwinResidualModule(nn.Module):
    """SwinIR's RSTB: a window and a shifted-window Swin block, a 3x3 conv, and a skip."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float = 2.0, drop_path: float = 0.0):
        super().__init__()
        self.blocks = nn.Sequential(
            SwinTransformerBlock(dim, num_heads, [window, window], [0, 0], mlp_ratio=mlp_ratio,
                                 stochastic_depth_prob=drop_path, attn_layer=WindowAttention),
            SwinTransformerBlock(dim, num_heads, [window, window], [window // 2, window // 2],
                                 mlp_ratio=mlp_ratio, stochastic_depth_prob=drop_path, attn_layer=WindowAttention),
        )
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's blocks take (B, H, W, C); a channels-last NCHW tensor permutes for free
        y = self.blocks(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv(y)


class EdgeGuidedBranch(nn.Module):
    """Guided filter -> patch embedding at ``stride`` -> ``num_modules`` residual Swin modules ->
    conv, with SwinIR's long skip. Output (B, dim, ceil(H/stride), ceil(W/stride)).

    The input is reflect-padded once so the token grid is a multiple of the window, so the Swin
    blocks never pad internally (zero padding would put false edges at the border).
    """

    def __init__(self, dim: int = 60, num_modules: int = 3, num_heads: int = 6, window: int = 8,
                 stride: int = 4, mlp_ratio: float = 2.0, drop_path: float = 0.0,
                 gf_radius: int = 2, gf_eps: float = 1e-2):
        super().__init__()
        if dim % num_heads:
            raise InputError(f"edge dim {dim} must be divisible by edge heads {num_heads}")
        self.stride, self.window = stride, window
        self.guided_filter = GuidedFilter(gf_radius, gf_eps)
        self.shallow = nn.Conv2d(3, dim, kernel_size=stride, stride=stride) if stride > 1 else nn.Conv2d(3, dim, 3, padding=1)
        self.body = nn.Sequential(*[SwinResidualModule(dim, num_heads, window, mlp_ratio, drop_path)
                                    for _ in range(num_modules)])
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1)
        self.out_channels = dim

    def forward(self, images: torch.Tensor, normalize=None) -> torch.Tensor:
        """``images`` in [0, 1]; ``normalize`` maps the filtered image to the network's input range."""
        h, w = images.shape[-2:]
        x = self.guided_filter(images)
        if normalize is not None:
            x = normalize(x)
        x, _ = pad_to_multiple(x, self.stride * self.window)
        shallow = self.shallow(x).contiguous(memory_format=torch.channels_last)
        deep = self.conv_after_body(self.body(shallow))
        out = shallow + deep
        return out[:, :, : math.ceil(h / self.stride), : math.ceil(w / self.stride)]
