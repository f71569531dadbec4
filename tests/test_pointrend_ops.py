"""PointRend's point selection (uncertainty-driven training points, subdivision inference) and the
padding to a multiple of 32 and cropping back that the baselines (tests/test_baselines.py) rely on."""

import pytest
import torch
import torch.nn.functional as F
from conftest import images

from crackrender.models.base import crop_to_image, pad_to_multiple
from crackrender.ops import subdivision_inference, uncertain_training_points


# --- padding ------------------------------------------------------------------------------------

def test_pad_to_multiple():
    x = images(1, 67, 93)
    padded, size = pad_to_multiple(x, 32)
    assert size == (67, 93) and padded.shape == (1, 3, 96, 96)
    assert torch.equal(padded[..., :67, :93], x)
    assert torch.equal(padded[..., 67, :93], x[..., 65, :])  # reflect: row 67 mirrors row 65
    same, _ = pad_to_multiple(images(1, 64, 96), 32)
    assert same.shape == (1, 3, 64, 96)
    tiny_img = images(1, 5, 7)  # a 27-row pad cannot reflect 5 rows: replicate
    padded, _ = pad_to_multiple(tiny_img, 32)
    assert padded.shape == (1, 3, 32, 32) and torch.equal(padded[..., 31, :7], tiny_img[..., 4, :])
    with pytest.raises(ValueError, match="multiple"):
        pad_to_multiple(x, 0)


def test_crop_to_image():
    x = torch.arange(96 * 96, dtype=torch.float32).view(1, 1, 96, 96)
    # a full-resolution map is cropped exactly
    assert torch.equal(crop_to_image(x, (67, 93), (96, 96)), x[..., :67, :93])
    # a stride-4 map keeps ceil(67/4) x ceil(93/4) cells spanning the image
    assert crop_to_image(x[..., ::4, ::4], (67, 93), (96, 96)).shape == (1, 1, 17, 24)
    assert crop_to_image(x, (96, 96), (96, 96)) is x
    # a stride-4 map of 67 rows in 96: 17 cells resampled to span the 67 rows, not 68
    ramp = torch.arange(96, dtype=torch.float32).view(1, 1, 96, 1).expand(1, 1, 96, 96)
    crop = crop_to_image(F.avg_pool2d(ramp, 4), (67, 93), (96, 96))
    centres = (torch.arange(17) + 0.5) * 67 / 17 - 0.5  # image rows at the cells' centres
    # (the first centre, 1.47, lies above the map's first cell centre, 1.5: clamped there)
    torch.testing.assert_close(crop[0, 0, 1:, 0], centres[1:])


# --- subdivision inference ----------------------------------------------------------------------

def ramp_coarse() -> torch.Tensor:
    # columns -15, -5, 5, 15: upsampled x2 (bilinear) they read -15 -12.5 -7.5 -2.5 2.5 7.5 12.5 15,
    # so columns 3 and 4 (|2.5|) are the only uncertain ones, 8 rows each
    return torch.tensor([-15.0, -5.0, 5.0, 15.0]).repeat(2, 1, 4, 1)


def test_subdivision_refines_the_most_uncertain_pixels():
    seen = []

    def truth(coords):  # crack from column 3 on: the coarse map says column 3 is background
        seen.append(coords)
        return torch.where(coords[..., 0] * 8 - 0.5 >= 3, 10.0, -10.0)

    logits, counts = subdivision_inference(ramp_coarse(), truth, (8, 8), num_points=16)
    assert counts == [16, 16] and logits.shape == (2, 1, 8, 8)
    (coords,) = seen
    cols = (coords[..., 0] * 8 - 0.5).round().long()
    rows = (coords[..., 1] * 8 - 0.5).round().long()
    for b in range(2):
        assert sorted(zip(rows[b].tolist(), cols[b].tolist())) == [(r, c) for r in range(8) for c in (3, 4)]
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:, 3:] = True
    assert torch.equal(logits[:, 0] > 0, expected.expand(2, 8, 8))  # column 3 fixed
    untouched = F.interpolate(ramp_coarse(), size=(8, 8), mode="bilinear", align_corners=False)
    keep = torch.ones(8, dtype=torch.bool)
    keep[3:5] = False
    assert torch.equal(logits[..., keep], untouched[..., keep])


def test_subdivision_steps_and_counts():
    sizes = []

    def fn(coords):
        sizes.append(coords.shape[1])
        # every point is a pixel centre of the current grid
        return torch.zeros(coords.shape[:2])

    logits, counts = subdivision_inference(torch.randn(1, 1, 4, 4), fn, (13, 21), num_points=50)
    # 4x4 -> 8x8 (50 of 64) -> 13x16 (50) -> 13x21 (50)
    assert logits.shape == (1, 1, 13, 21) and counts == [150] and sizes == [50, 50, 50]
    small, counts = subdivision_inference(torch.randn(1, 1, 2, 2), fn, (4, 4), num_points=50)
    assert counts == [16]  # fewer pixels than points: all of them
    same = torch.randn(1, 1, 6, 6)
    out, counts = subdivision_inference(same, fn, (6, 6))
    assert counts == [0] and torch.equal(out, same)
    with pytest.raises(ValueError, match="point_fn"):
        subdivision_inference(same, lambda c: torch.zeros(3), (12, 12))


# --- uncertainty-driven training points ---------------------------------------------------------

def test_uncertain_training_points_near_the_boundary():
    x = (torch.arange(64) + 0.5) / 64
    logits = (20 * (x - 0.5)).repeat(2, 1, 32, 1)  # crack boundary at x = 0.5
    g = torch.Generator().manual_seed(0)
    coords = uncertain_training_points(logits, 400, oversample=3.0, importance=0.75, generator=g)
    assert coords.shape == (2, 400, 2) and coords.min() >= 0 and coords.max() <= 1
    dist = (coords[..., 0] - 0.5).abs()
    # the 300 most uncertain of 1200 uniform points lie within ~1/8 of the boundary
    assert float(dist[:, :300].max()) < 0.16
    # the last 100 are uniform: they cover the image
    assert float(dist[:, 300:].max()) > 0.4 and 0.15 < float(dist[:, 300:].mean()) < 0.35
    again = uncertain_training_points(logits, 400, generator=torch.Generator().manual_seed(0))
    assert torch.equal(coords, again)
    uniform = uncertain_training_points(logits, 400, importance=0.0, generator=torch.Generator().manual_seed(1))
    assert float((uniform[..., 0] - 0.5).abs().mean()) > 0.2
    with pytest.raises(ValueError, match="oversample"):
        uncertain_training_points(logits, 10, oversample=0.5)
