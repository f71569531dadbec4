"""Torchvision's shifted-window attention, computed through ``scaled_dot_product_attention``.

Torchvision's ``shifted_window_attention`` materialises every window's attention matrix several
times (scores, + relative-position bias, + shift mask, softmax), which on CPU costs far more than
the attention itself (``docs/design.md``, "Measured costs"). :class:`WindowAttention` computes the
same function with one fused SDPA call over all windows (two more redo the shifted grid's split
last window row and column under their masks) and one gather each way instead of roll + window
partition. It subclasses torchvision's ``ShiftedWindowAttention``, so parameters, buffers,
initialisation and state-dict keys are torchvision's: every existing model file loads unchanged.

Examples:
    >>> from torchvision.models.swin_transformer import ShiftedWindowAttention
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> reference = ShiftedWindowAttention(16, [4, 4], [2, 2], num_heads=2)
    >>> fast = WindowAttention(16, [4, 4], [2, 2], num_heads=2)
    >>> _ = fast.load_state_dict(reference.state_dict())
    >>> x = torch.randn(1, 10, 13, 16)
    >>> torch.allclose(fast(x), reference(x), atol=1e-5)
    True
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.swin_transformer import ShiftedWindowAttention

__all__ = ["WindowAttention", "window_attention"]

# torchvision's shift mask adds -100 (not -inf) to the scores of token pairs from different regions
_SHIFT_MASK_VALUE = -100.0


@lru_cache(maxsize=16)
def _window_order(grid_h: int, grid_w: int, window_h: int, window_w: int, shift_h: int, shift_w: int,
                  device: torch.device) -> tuple[Tensor, Tensor]:
    """Token indices of a (grid_h, grid_w) grid in window order after the cyclic shift, and the
    inverse order. One ``index_select`` with these replaces torchvision's roll + partition copies.
    Cached tensors are made outside inference mode: one made inside it could not be saved for
    backward when the model trains after an inference call (validation, then the next step)."""
    with torch.inference_mode(False):
        return _window_order_tensors(grid_h, grid_w, window_h, window_w, shift_h, shift_w, device)


def _window_order_tensors(grid_h, grid_w, window_h, window_w, shift_h, shift_w, device) -> tuple[Tensor, Tensor]:
    order = torch.arange(grid_h * grid_w, device=device).view(grid_h, grid_w)
    if shift_h or shift_w:
        order = order.roll((-shift_h, -shift_w), (0, 1))
    order = order.view(grid_h // window_h, window_h, grid_w // window_w, window_w).permute(0, 2, 1, 3).reshape(-1)
    return order, order.argsort()


@lru_cache(maxsize=16)
def _shift_mask(window_h: int, window_w: int, shift_h: int, shift_w: int, last_row: bool, last_col: bool,
                device: torch.device) -> Tensor:
    """(N, N) additive mask of one window after the cyclic shift: -100 between tokens that come from
    different regions of the image. Only the last window row (split at ``window_h - shift_h``) and
    the last window column are split; every other window needs no mask. Made outside inference
    mode, as :func:`_window_order`'s tensors are."""
    with torch.inference_mode(False):
        return _shift_mask_tensor(window_h, window_w, shift_h, shift_w, last_row, last_col, device)


def _shift_mask_tensor(window_h, window_w, shift_h, shift_w, last_row, last_col, device) -> Tensor:
    rows = torch.arange(window_h, device=device) >= window_h - shift_h if last_row and shift_h else \
        torch.zeros(window_h, dtype=torch.bool, device=device)
    cols = torch.arange(window_w, device=device) >= window_w - shift_w if last_col and shift_w else \
        torch.zeros(window_w, dtype=torch.bool, device=device)
    region = (rows.long()[:, None] * 2 + cols.long()[None, :]).reshape(-1)
    mask = torch.zeros(region.numel(), region.numel(), device=device)
    return mask.masked_fill(region[:, None] != region[None, :], _SHIFT_MASK_VALUE)


def window_attention(x: Tensor, qkv_weight: Tensor, proj_weight: Tensor, relative_position_bias: Tensor,
                     window_size: list[int], num_heads: int, shift_size: list[int], attention_dropout: float = 0.0,
                     dropout: float = 0.0, qkv_bias: Tensor | None = None, proj_bias: Tensor | None = None,
                     training: bool = True) -> Tensor:
    """torchvision's ``shifted_window_attention`` (Swin v1: no logit scale) for (B, H, W, C) ``x``,
    with the same arguments and result up to float rounding: zero padding to a multiple of the
    window, no shift along a side that holds a single window, -100 shift masks."""
    b, h, w, c = x.shape
    wh, ww = window_size
    pad_b, pad_r = -h % wh, -w % ww
    if pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    gh, gw = h + pad_b, w + pad_r
    sh = shift_size[0] if wh < gh else 0
    sw = shift_size[1] if ww < gw else 0
    nh, nw, n = gh // wh, gw // ww, wh * ww

    order, inverse = _window_order(gh, gw, wh, ww, sh, sw, x.device)
    windows = x.reshape(b, gh * gw, c).index_select(1, order)  # (B, nW * N, C), window after window
    qkv = F.linear(windows, qkv_weight, qkv_bias).view(b * nh * nw, n, 3, num_heads, c // num_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B * nW, heads, N, head_dim)
    bias = relative_position_bias.to(q.dtype)  # (1, heads, N, N)
    p = attention_dropout if training else 0.0
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
    if sh or sw:
        out = _redo_split_windows(out, q, k, v, bias, p, (b, nh, nw), window_size, (sh, sw))
    out = out.transpose(1, 2).reshape(b, nh * nw * n, c)
    out = F.linear(out, proj_weight, proj_bias)
    out = F.dropout(out, p=dropout, training=training)
    out = out.index_select(1, inverse).view(b, gh, gw, c)
    return out[:, :h, :w].contiguous() if pad_b or pad_r else out


def _redo_split_windows(out: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor, p: float,
                        grid: tuple[int, int, int], window_size: list[int], shift: tuple[int, int]) -> Tensor:
    """``out`` with the last window row and column recomputed under their shift masks (all windows
    were first computed with the bias alone: the split ones are few, so redoing them costs less
    than a per-window mask over the whole grid)."""
    b, nh, nw = grid
    (wh, ww), (sh, sw) = window_size, shift
    out = out.view(b, nh, nw, *out.shape[1:])

    def redo(rows: slice, cols: slice, masks: Tensor) -> Tensor:
        # masks (1 or windows in the strip, 1, N, N) broadcast over heads; the result (b, rows, cols, ...)
        qs, ks, vs = (t.view(b, nh, nw, *t.shape[1:])[:, rows, cols] for t in (q, k, v))
        strip = qs.shape[:3]
        mask = bias + masks.to(bias.dtype)
        if mask.shape[0] > 1:
            mask = mask.repeat(b, 1, 1, 1)
        part = F.scaled_dot_product_attention(qs.flatten(0, 2), ks.flatten(0, 2), vs.flatten(0, 2),
                                              attn_mask=mask, dropout_p=p)
        return part.view(*strip, *part.shape[1:])

    if sh:  # the last window row, split between rows (its corner is redone below when sw > 0)
        mask = _shift_mask(wh, ww, sh, sw, True, False, q.device)
        out = _put(out, redo(slice(nh - 1, nh), slice(None), mask[None, None]), dim=1, start=nh - 1)
    if sw:  # the last window column, split between columns; its corner also between rows
        masks = torch.stack([_shift_mask(wh, ww, sh, sw, i == nh - 1, True, q.device) for i in range(nh)])
        out = _put(out, redo(slice(None), slice(nw - 1, nw), masks[:, None]), dim=2, start=nw - 1)
    return out.flatten(0, 2)


def _put(out: Tensor, part: Tensor, dim: int, start: int) -> Tensor:
    """``out`` with ``part`` written from ``start`` along ``dim``: out of place where autograd
    records (it needs the attention's output as it was), in place otherwise (inference)."""
    if torch.is_grad_enabled() and (out.requires_grad or part.requires_grad):
        return out.slice_scatter(part, dim=dim, start=start)
    out.narrow(dim, start, part.shape[dim]).copy_(part)
    return out


def _exporting() -> bool:
    """True while torch.export, an ONNX export or a TorchScript trace records the model. Exported
    graphs keep torchvision's plain ops: the fused CPU attention's output strides differ from those
    of the decomposition the exporters swap in, and the reshape recorded after it then fails."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


class WindowAttention(ShiftedWindowAttention):
    """Drop-in for torchvision's ``ShiftedWindowAttention`` (pass it as a ``SwinTransformerBlock``'s
    ``attn_layer``): the same parameters and buffers, forward through :func:`window_attention`
    (torchvision's own forward while the model is exported)."""

    def forward(self, x: Tensor) -> Tensor:
        if _exporting():
            return super().forward(x)
        return window_attention(
            x, self.qkv.weight, self.proj.weight, self.get_relative_position_bias(), self.window_size,
            self.num_heads, self.shift_size, attention_dropout=self.attention_dropout, dropout=self.dropout,
            qkv_bias=self.qkv.bias, proj_bias=self.proj.bias, training=self.training)
