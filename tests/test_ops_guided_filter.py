"""Guided filter (He et al.): shapes, hand cases, gradients, parity with a float64 numpy reference."""

import numpy as np
import pytest
import torch

from crackrender.ops import GuidedFilter, box_filter, guided_filter


def np_box(x: np.ndarray, r: int) -> np.ndarray:
    """Border-normalised box mean of a 2-D array from an integral image."""
    h, w = x.shape
    s = np.zeros((h + 1, w + 1))
    s[1:, 1:] = x.cumsum(0).cumsum(1)
    top, bottom = np.maximum(np.arange(h) - r, 0), np.minimum(np.arange(h) + r, h - 1) + 1
    left, right = np.maximum(np.arange(w) - r, 0), np.minimum(np.arange(w) + r, w - 1) + 1
    total = (s[bottom][:, right] - s[top][:, right] - s[bottom][:, left] + s[top][:, left])
    count = np.outer(bottom - top, right - left)
    return total / count


def np_guided(i: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    i, p = i.astype(np.float64), p.astype(np.float64)
    mi, mp = np_box(i, r), np_box(p, r)
    a = (np_box(i * p, r) - mi * mp) / (np_box(i * i, r) - mi * mi + eps)
    b = mp - a * mi
    return np_box(a, r) * i + np_box(b, r)


def step_image(noise: float = 0.02, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(1, 1, 32, 32)
    x[..., 16:] = 1.0
    return x + noise * torch.randn(x.shape, generator=g)


def test_np_box_reference_is_a_plain_window_mean():
    x = np.random.default_rng(0).random((5, 6))
    ref = np.array([[x[max(0, i - 1): i + 2, max(0, j - 1): j + 2].mean() for j in range(6)] for i in range(5)])
    np.testing.assert_allclose(np_box(x, 1), ref, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 1, 5, 3)])
def test_shapes_on_odd_sizes(shape):
    x = torch.rand(shape)
    assert box_filter(x, 2).shape == shape
    assert guided_filter(x[:, :1], x).shape == shape
    assert GuidedFilter(3, 1e-3)(x).shape == shape


def test_box_filter_radius_zero_and_normalised_border():
    x = torch.rand(1, 2, 7, 9)
    assert box_filter(x, 0) is x
    ones = torch.ones(1, 1, 4, 5)
    torch.testing.assert_close(box_filter(ones, 6), ones)  # window larger than the image
    np.testing.assert_allclose(box_filter(x.double(), 2)[0, 1].numpy(), np_box(x[0, 1].double().numpy(), 2), atol=1e-12)


@pytest.mark.parametrize("radius, h, w", [(1, 1, 1), (2, 3, 8), (3, 11, 4), (7, 5, 6), (2, 40, 33)])
def test_box_filter_matches_the_integral_image_mean(radius, h, w):
    # windows wider than the image and single-pixel sides included: every border count is hit
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(radius), dtype=torch.float64)
    got = box_filter(x, radius)
    for b in range(2):
        for c in range(3):
            np.testing.assert_allclose(got[b, c].numpy(), np_box(x[b, c].numpy(), radius), atol=1e-12)


def test_constant_image_is_unchanged():
    x = torch.full((1, 3, 21, 17), 0.37)
    torch.testing.assert_close(GuidedFilter()(x), x)
    torch.testing.assert_close(guided_filter(torch.rand(1, 1, 21, 17), x), x)


def test_step_edge_kept_and_flat_noise_reduced():
    x = step_image()
    gf = GuidedFilter(radius=2, eps=1e-2)(x)
    box = box_filter(x, 2)
    jump = lambda y: float((y[0, 0, 4:-4, 16] - y[0, 0, 4:-4, 15]).mean())
    assert jump(gf) > 0.85  # the edge stays a one-pixel step
    assert jump(box) < 0.3  # a box blur spreads it over 2r+1 pixels
    flat = (slice(None), slice(None), slice(4, -4), slice(3, 11))
    clean = torch.zeros(1, 1, 32, 32)
    clean[..., 16:] = 1.0
    noise_in = (x - clean)[flat].std()
    noise_out = (gf - clean)[flat].std()
    assert noise_out < 0.3 * noise_in


def test_module_is_fixed():
    m = GuidedFilter(radius=3, eps=1e-3)
    assert len(list(m.parameters())) == 0
    assert len(list(m.buffers())) == 0
    assert m.state_dict() == {}
    assert "radius=3" in repr(m) and "eps=0.001" in repr(m)
    y = m(torch.rand(1, 3, 9, 11))
    assert not y.requires_grad


def test_gradients_reach_the_input():
    src = torch.rand(1, 2, 13, 15, requires_grad=True)
    guide = torch.rand(1, 1, 13, 15, requires_grad=True)
    guided_filter(guide, src).square().sum().backward()
    for t in (src, guide):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    x = torch.rand(1, 3, 11, 9, requires_grad=True)
    GuidedFilter()(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("radius,eps", [(1, 1e-3), (2, 1e-2), (4, 0.1)])
def test_parity_with_numpy_reference(radius, eps):
    rng = np.random.default_rng(radius)
    guide = rng.random((2, 1, 19, 23))
    src = rng.random((2, 3, 19, 23))
    ours = guided_filter(torch.from_numpy(guide).float(), torch.from_numpy(src).float(), radius, eps)
    per_channel = GuidedFilter(radius, eps)(torch.from_numpy(src).float())
    for b in range(2):
        for c in range(3):
            ref = np_guided(guide[b, 0], src[b, c], radius, eps)
            np.testing.assert_allclose(ours[b, c].numpy(), ref, atol=1e-5)
            ref_self = np_guided(src[b, c], src[b, c], radius, eps)
            np.testing.assert_allclose(per_channel[b, c].numpy(), ref_self, atol=1e-5)


def test_channelwise_guide_and_float64():
    rng = np.random.default_rng(7)
    guide, src = rng.random((1, 2, 9, 12)), rng.random((1, 2, 9, 12))
    out = guided_filter(torch.from_numpy(guide), torch.from_numpy(src), 2, 1e-2)
    assert out.dtype == torch.float64
    for c in range(2):
        np.testing.assert_allclose(out[0, c].numpy(), np_guided(guide[0, c], src[0, c], 2, 1e-2), atol=1e-12)


def test_low_precision_input_computed_in_float32():
    x = torch.rand(1, 3, 17, 19)
    ref = GuidedFilter()(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = GuidedFilter()(x.bfloat16())
    assert out.dtype == torch.bfloat16
    # only the bf16 rounding of input and output remains
    torch.testing.assert_close(out.float(), ref, atol=1e-2, rtol=0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: guided_filter(torch.rand(1, 8, 8), torch.rand(1, 8, 8)),  # 3-D
        lambda: guided_filter(torch.rand(1, 1, 8, 8), torch.rand(1, 3, 8, 7)),  # H, W differ
        lambda: guided_filter(torch.rand(1, 2, 8, 8), torch.rand(1, 3, 8, 8)),  # channels differ
        lambda: guided_filter(torch.rand(2, 1, 8, 8), torch.rand(1, 3, 8, 8)),  # batch differs
        lambda: guided_filter(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), eps=0),
        lambda: guided_filter(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), eps=-1e-3),
        lambda: guided_filter(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), radius=-1),
        lambda: guided_filter(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), radius=1.5),
        lambda: guided_filter(torch.ones(1, 1, 8, 8, dtype=torch.uint8), torch.rand(1, 1, 8, 8)),
        lambda: box_filter(torch.rand(8, 8), 1),
        lambda: GuidedFilter(eps=0.0),
        lambda: GuidedFilter(radius=-2),
        lambda: GuidedFilter()(torch.rand(3, 8, 8)),
    ],
)
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
