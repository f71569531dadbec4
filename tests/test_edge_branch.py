"""CBPRN's edge-guided branch: the model without it, its map resampled to res2's grid, the fixed
guided filter, Swin blocks (window, then shifted window) that never pad inside, the one reflect
pad at its entry, and the SDPA window attention that computes torchvision's, forward and backward."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import images, tiny
from torchvision.models.swin_transformer import SwinTransformerBlock

from crackrender.models.base import pad_to_multiple
from crackrender.models.edge_branch import EdgeGuidedBranch
from crackrender.models.swin_attention import WindowAttention
from crackrender.ops.guided_filter import guided_filter, self_guided_filter

# --- the branch inside the model ----------------------------------------------------------------

def test_forward_without_edge_branch():
    m = tiny(edge=False).eval()
    assert m.edge_branch is None
    with torch.no_grad():
        out = m(images(1, 33, 47))
    assert out["coarse"].shape == (1, 1, 9, 12)
    pred = m.predict(images(1, 33, 47))
    assert pred.mask.shape == (1, 33, 47)


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_edge_features_are_resampled_to_res2(stride):
    # the branch's map must cover the whole image at res2's grid, not be cropped to it
    m = tiny(edge_stride=stride).eval()
    seen = {}
    m.fusion.register_forward_pre_hook(lambda mod, args: seen.update(feats=args[0], edge=args[1]))
    x = images(1, 37, 45)
    with torch.no_grad():
        m(x)
        # the encoder pads the image to a multiple of 32 once, for the branch too
        branch = m.edge_branch(pad_to_multiple(x, 32)[0], m.normalize)
    res2 = seen["feats"][0].shape[-2:]
    assert seen["edge"].shape[-2:] == res2
    if stride == 4:
        assert torch.equal(seen["edge"], branch)
    else:
        expected = F.interpolate(branch, size=res2, mode="bilinear", align_corners=False)
        torch.testing.assert_close(seen["edge"], expected)


# --- edge-guided branch -------------------------------------------------------------------------

@pytest.mark.parametrize("stride,window", [(4, 4), (4, 8), (8, 4), (1, 4)])
@pytest.mark.parametrize("hw", [(33, 47), (9, 9)])
def test_edge_branch_size_and_no_internal_padding(stride, window, hw):
    h, w = hw
    torch.manual_seed(0)
    branch = EdgeGuidedBranch(dim=16, num_modules=2, num_heads=2, window=window, stride=stride).eval()
    blocks = [mod for mod in branch.modules() if isinstance(mod, SwinTransformerBlock)]
    assert len(blocks) == 4
    inputs = []
    for blk in blocks:
        blk.register_forward_pre_hook(lambda mod, args: inputs.append(tuple(args[0].shape)))
    with torch.no_grad():
        out = branch(images(2, h, w))
    assert out.shape == (2, 16, math.ceil(h / stride), math.ceil(w / stride))
    assert len(inputs) == 4
    for b_, gh, gw, c in inputs:  # (B, H, W, C) token grid, already a multiple of the window
        assert (b_, c) == (2, 16)
        assert gh % window == 0 and gw % window == 0, (gh, gw, window)


def test_edge_branch_blocks_are_window_then_shifted_window():
    branch = EdgeGuidedBranch(dim=16, num_modules=3, num_heads=2, window=8)
    assert len(branch.body) == 3
    for module in branch.body:
        first, second = module.blocks
        assert type(first) is SwinTransformerBlock and type(second) is SwinTransformerBlock
        assert first.attn.window_size == [8, 8] and second.attn.window_size == [8, 8]
        assert first.attn.shift_size == [0, 0]
        assert second.attn.shift_size == [4, 4]


def test_guided_filter_is_fixed():
    branch = EdgeGuidedBranch(dim=16, num_heads=2)
    assert list(branch.guided_filter.parameters()) == []
    assert list(branch.guided_filter.buffers()) == []
    m = tiny()
    assert not any(k.startswith("edge_branch.guided_filter") for k in m.state_dict())


def test_edge_branch_reflect_pads_once_at_entry():
    # what enters the patch embedding: the filtered, normalised image, reflect-padded on the
    # bottom/right to a multiple of stride * window (here 16: 33x47 -> 48x48)
    m = tiny(window=4).eval()
    branch = m.edge_branch
    seen = []
    branch.shallow.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    x = images(1, 33, 47)
    with torch.no_grad():
        branch(x, m.normalize)
        filtered = m.normalize(branch.guided_filter(x))
    (entry,) = seen
    assert entry.shape == (1, 3, 48, 48)
    torch.testing.assert_close(entry[..., :33, :47], filtered)
    # row 33 + i mirrors row 31 - i (reflect, not replicate or zeros)
    torch.testing.assert_close(entry[..., 33, :47], filtered[..., 31, :])
    torch.testing.assert_close(entry[..., 47, :47], filtered[..., 17, :])
    torch.testing.assert_close(entry[..., :33, 47], filtered[..., :, 45])
    torch.testing.assert_close(entry, F.pad(filtered, (0, 1, 0, 15), mode="reflect"))


# --- window attention through SDPA: torchvision's block, the same function ----------------------

def _block_pair(window, shift, attn_layer, dim=16, heads=2):
    """torchvision's Swin block and one with ``attn_layer``, on the same weights. The position-bias
    table is made large (torchvision initialises it near zero) so a misplaced bias would show."""
    torch.manual_seed(0)
    reference = SwinTransformerBlock(dim, heads, [window, window], [shift, shift], mlp_ratio=2.0)
    with torch.no_grad():
        reference.attn.relative_position_bias_table.normal_(0, 1)
    fast = SwinTransformerBlock(dim, heads, [window, window], [shift, shift], mlp_ratio=2.0, attn_layer=attn_layer)
    fast.load_state_dict(reference.state_dict())  # strict: the same parameter and buffer names
    return reference, fast


@pytest.mark.parametrize("window", [4, 8])
@pytest.mark.parametrize("shifted", [False, True])
# multiples of the window, not multiples (zero padding), one window along a side (no shift there),
# smaller than one window
@pytest.mark.parametrize("hw", [(16, 24), (10, 13), (8, 24), (3, 5)])
def test_window_attention_matches_torchvision_forward_and_backward(window, shifted, hw):
    reference, fast = _block_pair(window, window // 2 if shifted else 0, WindowAttention)
    x = torch.randn(2, *hw, 16, generator=torch.Generator().manual_seed(1))
    x_ref, x_fast = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out_fast = reference(x_ref), fast(x_fast)
    torch.testing.assert_close(out_fast, out_ref, atol=1e-5, rtol=1e-5)
    with torch.inference_mode():  # inference takes another path: the split windows written in place
        torch.testing.assert_close(fast(x), out_ref.detach(), atol=1e-5, rtol=1e-5)
    grad = torch.randn(out_ref.shape, generator=torch.Generator().manual_seed(2))
    out_ref.backward(grad)
    out_fast.backward(grad)
    torch.testing.assert_close(x_fast.grad, x_ref.grad, atol=1e-5, rtol=1e-4)
    ref_params = dict(reference.named_parameters())
    for name, p in fast.named_parameters():
        assert p.grad is not None, name
        torch.testing.assert_close(p.grad, ref_params[name].grad, atol=1e-4, rtol=1e-4, msg=name)



def test_window_attention_under_bf16_autocast():
    # training may run under bf16 autocast: the bias and masks follow the scores' dtype
    reference, fast = _block_pair(4, 2, WindowAttention)
    x = torch.randn(1, 12, 12, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast(x)
    with torch.no_grad():
        expected = reference(x)
    assert out.dtype == torch.float32 and out.shape == expected.shape  # the residual stays float32
    torch.testing.assert_close(out, expected, atol=0.1, rtol=0.05)


def test_edge_branch_blocks_use_sdpa_attention_with_torchvision_state():
    branch = EdgeGuidedBranch(dim=16, num_modules=2, num_heads=2, window=4)
    blocks = [mod for mod in branch.modules() if isinstance(mod, SwinTransformerBlock)]
    assert blocks and all(type(blk.attn) is WindowAttention for blk in blocks)
    plain = SwinTransformerBlock(16, 2, [4, 4], [2, 2], mlp_ratio=2.0)
    assert list(blocks[1].state_dict()) == list(plain.state_dict())
    assert [(n, b.shape) for n, b in blocks[1].named_buffers()] == [(n, b.shape) for n, b in plain.named_buffers()]


def test_drop_path_still_drops_whole_blocks_in_training():
    branch = EdgeGuidedBranch(dim=16, num_modules=1, num_heads=2, window=4, drop_path=1.0)
    blk = branch.body[0].blocks[1]
    x = torch.randn(2, 8, 8, 16)
    assert torch.equal(blk.train()(x), x)  # p = 1: both residual branches dropped
    assert not torch.equal(blk.eval()(x), x)


def test_self_guided_filter_is_the_guided_filter_with_itself():
    x = images(1, 37, 53)
    assert torch.equal(self_guided_filter(x), guided_filter(x, x))
    # the layout it arrives in (the model's input is channels-last) changes nothing but rounding
    torch.testing.assert_close(self_guided_filter(x.contiguous(memory_format=torch.channels_last)),
                               guided_filter(x, x), atol=1e-6, rtol=0)
    half = x.to(torch.bfloat16)
    out = self_guided_filter(half, radius=3, eps=0.05)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, guided_filter(half, half, 3, 0.05))
    with pytest.raises(ValueError, match="floating point"):
        self_guided_filter(torch.zeros(1, 3, 5, 5, dtype=torch.uint8))


def test_edge_branch_still_exports():
    # exporters record torchvision's plain attention (the fused kernel's strides break their
    # decomposition); the exported program computes what the eager branch does
    torch.manual_seed(0)
    branch = EdgeGuidedBranch(dim=16, num_modules=1, num_heads=2, window=4).eval()
    x = images(1, 40, 56)
    program = torch.export.export(branch, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), branch(x), atol=1e-5, rtol=1e-5)


def test_training_after_inference_mode_call():
    """The attention caches index and mask tensors per grid; made during an inference-mode call
    (validation), they must still serve a training step after it (autograd saves them)."""
    from crackrender.models.swin_attention import _shift_mask, _window_order

    _window_order.cache_clear(), _shift_mask.cache_clear()
    branch = EdgeGuidedBranch(dim=8, num_modules=1, num_heads=2, window=4)
    x = torch.rand(1, 3, 40, 56)
    with torch.inference_mode():
        branch.eval()(x)
    branch.train()(x).sum().backward()
    assert all(p.grad is not None for p in branch.body.parameters())
