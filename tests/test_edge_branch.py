"""CBPRN's edge-guided branch: the model without it, its map resampled to res2's grid, the fixed
guided filter, Swin blocks (window, then shifted window) that never pad inside, and the one reflect
pad at its entry."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import images, tiny
from torchvision.models.swin_transformer import SwinTransformerBlock

from crackrender.models.base import pad_to_multiple
from crackrender.models.edge_branch import EdgeGuidedBranch

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
