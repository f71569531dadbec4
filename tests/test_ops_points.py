"""Point coordinates (crackrender.ops.points): exact pixel-centre reads at any resolution and
dtype, and the checks of the helpers the inference rules share."""

import pytest
import torch

from crackrender.ops import pixel_centers, point_sample, upsample_logits
from crackrender.ops.points import call_point_fn, check_size


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- pixel_centers / point_sample


def test_pixel_centers_by_hand():
    c = pixel_centers(torch.tensor([0, 3, 4, 11]), 3, 4)
    expected = torch.tensor([[0.125, 1 / 6], [0.875, 1 / 6], [0.125, 0.5], [0.875, 5 / 6]])
    torch.testing.assert_close(c, expected)
    assert c.dtype == torch.float32
    assert pixel_centers(torch.zeros(0, dtype=torch.long), 3, 4).shape == (0, 2)


@pytest.mark.parametrize("shape", [(1, 3, 7, 11), (2, 5, 1, 9), (1, 2, 13, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_point_sample_reads_exact_pixel_values(shape, channels_last):
    b, c, h, w = shape
    f = torch.rand(shape, generator=gen(h * w))  # values in [0, 1): float32 coordinate rounding stays < 1e-6
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    coords = pixel_centers(torch.arange(h * w), h, w)[None].expand(b, -1, -1)
    out = point_sample(f, coords)
    assert out.shape == (b, h * w, c)
    torch.testing.assert_close(out, f.flatten(2).transpose(1, 2), atol=1e-6, rtol=0)
    nearest = point_sample(f, coords, mode="nearest")
    torch.testing.assert_close(nearest, f.flatten(2).transpose(1, 2), atol=0, rtol=0)
    # float32 rounding of the coordinates is all that separates bilinear from exact
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    coords64 = torch.stack(((cols.flatten() + 0.5) / w, (rows.flatten() + 0.5) / h), 1)[None].expand(b, -1, -1)
    exact = point_sample(f.double(), coords64)
    torch.testing.assert_close(exact, f.double().flatten(2).transpose(1, 2), atol=1e-12, rtol=0)


def test_point_sample_interpolates_between_centres_and_clamps_outside():
    f = torch.tensor([[[[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]]])  # 2 x 3
    coords = torch.tensor([[[1 / 3, 0.25], [1 / 3, 0.5], [-0.5, 0.25], [2.0, 1.5]]])
    out = point_sample(f, coords)[0, :, 0]
    torch.testing.assert_close(out, torch.tensor([1.0, 4.0, 0.0, 10.0]))


def test_point_sample_gradients():
    f = torch.randn(2, 4, 6, 5, requires_grad=True)
    coords = torch.rand(2, 7, 2, requires_grad=True)
    point_sample(f, coords).square().sum().backward()
    assert f.grad is not None and torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0
    assert coords.grad is not None and torch.isfinite(coords.grad).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda: point_sample(torch.rand(3, 5, 5), torch.rand(1, 4, 2)),
        lambda: point_sample(torch.rand(1, 3, 5, 5), torch.rand(4, 2)),
        lambda: point_sample(torch.rand(1, 3, 5, 5), torch.rand(1, 4, 3)),
        lambda: point_sample(torch.rand(2, 3, 5, 5), torch.rand(1, 4, 2)),
        lambda: point_sample(torch.rand(1, 3, 5, 5), torch.rand(1, 4, 2), mode="bicubicish"),
        lambda: pixel_centers(torch.tensor([0.5]), 3, 4),
        lambda: pixel_centers(torch.tensor([12]), 3, 4),
        lambda: pixel_centers(torch.tensor([-1]), 3, 4),
        lambda: pixel_centers(torch.tensor([[0]]), 3, 4),
        lambda: pixel_centers(torch.tensor([0]), 0, 4),
    ],
)
def test_point_sample_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_point_sample_keeps_coordinates_exact_for_half_precision_features():
    """An 8K-wide map in bf16/fp16: points must still land on their own pixel (coordinates are
    sampled in float32; in bf16 they would be off by up to ~30 px)."""
    w = 8192
    stripes = (torch.arange(w) % 2).float().view(1, 1, 1, w)  # 0/1 alternate: exact in any dtype
    index = torch.arange(1, w, 2)
    coords = pixel_centers(index, 1, w)[None]
    for dtype in (torch.bfloat16, torch.float16):
        out = point_sample(stripes.to(dtype), coords)
        assert out.dtype == dtype
        assert bool((out[0, :, 0] == 1).all()), dtype


def test_call_point_fn_wants_one_logit_per_point():
    coords = torch.rand(2, 5, 2)
    assert call_point_fn(lambda c: torch.zeros(2, 5, dtype=torch.float16), coords).dtype == torch.float32
    for wrong in (lambda c: torch.zeros(2, 4), lambda c: torch.zeros(2, 5, 1), lambda c: [0.0] * 10):
        with pytest.raises(ValueError, match=r"point_fn must return \(2, 5\) logits"):
            call_point_fn(wrong, coords)


def test_check_size_and_upsample_logits():
    assert check_size((3, 4)) == (3, 4) and check_size(torch.Size([5, 6])) == (5, 6)
    for bad in ((3,), (0, 4), (3.0, 4), "34"):
        with pytest.raises(ValueError):
            check_size(bad)
    coarse = torch.randn(2, 1, 3, 5, dtype=torch.float16)
    up = upsample_logits(coarse, (3, 5))
    assert up.dtype == torch.float32 and torch.equal(up, coarse.float())  # same size: the values themselves
    assert upsample_logits(coarse, (7, 11)).shape == (2, 1, 7, 11)
