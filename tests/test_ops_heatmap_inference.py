"""Heatmap-guided inference (crackrender.ops.heatmap_inference): the [alpha, beta] selection rule
and the pure inference function, tested alone with point functions whose answers are known."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crackrender.errors import InputError
from crackrender.ops import heatmap_guided_inference, pixel_centers, subdivision_inference, uncertain_pixels
from crackrender.ops.heatmap_inference import check_band


# ---------------------------------------------------------------- uncertain_pixels


def test_uncertain_pixels_inclusive_bounds():
    prob = torch.tensor([[0.0, 0.3, 0.31], [0.5, 0.7, 0.71], [0.2999, 1.0, 0.69]])
    assert uncertain_pixels(prob, 0.3, 0.7).tolist() == [1, 2, 3, 4, 8]
    assert uncertain_pixels(prob.double(), 0.3, 0.7).tolist() == [1, 2, 3, 4, 8]
    rng = np.random.default_rng(0)
    p = rng.random((17, 23)).astype(np.float32)
    idx = uncertain_pixels(torch.from_numpy(p))
    assert idx.dtype == torch.long
    np.testing.assert_array_equal(idx.numpy(), np.flatnonzero((p >= np.float32(0.3)) & (p <= np.float32(0.7))))
    assert uncertain_pixels(torch.zeros(4, 4)).numel() == 0
    assert uncertain_pixels(torch.rand(4, 4), 0.0, 1.0).tolist() == list(range(16))


@pytest.mark.parametrize("alpha,beta", [(0.7, 0.3), (0.5, 0.5), (-0.1, 0.5), (0.2, 1.1)])
def test_uncertain_pixels_bad_bounds(alpha, beta):
    with pytest.raises(ValueError):
        uncertain_pixels(torch.rand(4, 4), alpha, beta)


def test_uncertain_pixels_needs_2d():
    with pytest.raises(ValueError):
        uncertain_pixels(torch.rand(1, 4, 4))


# ---------------------------------------------------------------- heatmap_guided_inference


def coarse_logits(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return 3 * torch.randn(b, 1, h, w, generator=torch.Generator().manual_seed(seed))


def position_logits(coords: torch.Tensor) -> torch.Tensor:
    """A point function whose answer encodes where it was asked: 100 + x + 10 y."""
    return 100 + coords[..., 0] + 10 * coords[..., 1]


@pytest.mark.parametrize("b,h,w", [(1, 37, 53), (3, 45, 61)])
def test_only_the_band_is_re_predicted_at_its_pixel_centres(b, h, w):
    coarse = coarse_logits(b, (h + 3) // 4, (w + 3) // 4)
    up = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    prob = torch.sigmoid(up)
    logits, counts = heatmap_guided_inference(coarse, position_logits, (h, w), alpha=0.3, beta=0.7)
    assert logits.shape == (b, 1, h, w) and logits.dtype == torch.float32
    inside = (prob >= 0.3) & (prob <= 0.7)
    assert counts == [int(inside[i].sum()) for i in range(b)] and 0 < sum(counts) < b * h * w
    assert torch.equal(logits[~inside], up[~inside])  # outside the band: the upsampled heatmap
    centres = pixel_centers(torch.arange(h * w), h, w).view(1, 1, h, w, 2).expand(b, 1, h, w, 2)
    torch.testing.assert_close(logits[inside], position_logits(centres)[inside])


def test_chunks_and_batch_padding_do_not_change_the_answer():
    coarse = coarse_logits(3, 9, 12, seed=1)
    coarse[1] = 10.0  # an image with no uncertain pixel rides along with padded points
    calls = []

    def point_fn(coords):
        calls.append(tuple(coords.shape))
        return position_logits(coords)

    whole, counts = heatmap_guided_inference(coarse, position_logits, (35, 47))
    chunked, chunked_counts = heatmap_guided_inference(coarse, point_fn, (35, 47), chunk=50)
    assert counts == chunked_counts and counts[1] == 0
    assert torch.equal(whole, chunked)
    assert all(shape[0] == 3 and shape[1] <= 50 for shape in calls) and len(calls) == -(-max(counts) // 50)
    # per image, alone, the same answer
    for i in range(3):
        alone, n = heatmap_guided_inference(coarse[i:i + 1], position_logits, (35, 47), chunk=50)
        assert n == [counts[i]] and torch.equal(alone[0], whole[i])


def test_full_band_matches_point_function_everywhere_and_empty_band_is_the_heatmap():
    coarse = coarse_logits(1, 5, 6)
    logits, counts = heatmap_guided_inference(coarse, position_logits, (17, 23), alpha=0.0, beta=1.0)
    assert counts == [17 * 23]
    centres = pixel_centers(torch.arange(17 * 23), 17, 23)[None]
    torch.testing.assert_close(logits.view(1, -1), position_logits(centres))
    flat = torch.zeros(1, 1, 5, 6) + 9.0  # probability ~1 everywhere: nothing to re-predict
    logits, counts = heatmap_guided_inference(flat, position_logits, (17, 23))
    assert counts == [0]
    torch.testing.assert_close(logits, torch.full((1, 1, 17, 23), 9.0))


def test_shaped_like_subdivision_inference():
    coarse = coarse_logits(2, 5, 6)
    for rule in (heatmap_guided_inference, subdivision_inference):
        logits, counts = rule(coarse, position_logits, (19, 21))
        assert logits.shape == (2, 1, 19, 21) and logits.dtype == torch.float32 and len(counts) == 2


@pytest.mark.parametrize("kwargs, error", [
    (dict(alpha=0.7, beta=0.3), InputError), (dict(alpha=-0.1), InputError), (dict(beta=float("nan")), InputError),
    (dict(chunk=0), InputError), (dict(out_size=(0, 5)), ValueError),
    (dict(coarse=torch.zeros(1, 2, 3, 3)), ValueError),
    (dict(point_fn=lambda c: torch.zeros(c.shape[0], 1)), ValueError),
])
def test_bad_arguments(kwargs, error):
    args = dict(coarse=coarse_logits(1, 3, 3), point_fn=position_logits, out_size=(9, 9))
    args.update(kwargs)
    with pytest.raises(error):
        heatmap_guided_inference(args.pop("coarse"), args.pop("point_fn"), args.pop("out_size"), **args)


def test_check_band():
    assert check_band(0, 1) == (0.0, 1.0)
    with pytest.raises(InputError, match=r"need 0 <= alpha < beta <= 1, got alpha=0.5, beta=0.5"):
        check_band(0.5, 0.5)
