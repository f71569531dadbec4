"""Boundary-guided training sampling (crackrender.ops.boundary_sampling): the label's boundary
band, the quota rule, the stratified sampler on real masks, and Table 1's uniform sampler."""

import math

import numpy as np
import pytest
import torch
from conftest import shared_dataset
from scipy import ndimage

from crackrender.errors import InputError
from crackrender.io import read_mask
from crackrender.ops import (
    BACKGROUND,
    BAND,
    INTERIOR,
    label_boundary_band,
    sample_training_points,
    stratum_quotas,
    uniform_training_points,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def np_band(mask: np.ndarray, k: int) -> np.ndarray:
    """Independent band: scipy erosion (outside the image counts as crack), then a square dilation."""
    edge = mask & ~ndimage.binary_erosion(mask, np.ones((3, 3), bool), border_value=1)
    if k == 0:
        return edge
    return ndimage.binary_dilation(edge, np.ones((2 * k + 1, 2 * k + 1), bool))


def to_pixels(coords: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.round(coords[:, 1] * h - 0.5).astype(int)
    cols = np.round(coords[:, 0] * w - 0.5).astype(int)
    return rows, cols


# ---------------------------------------------------------------- label_boundary_band


def test_band_of_a_full_height_stripe():
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[:, 8:11] = True  # width 3, touching the top and bottom borders
    edge = torch.zeros(20, 20, dtype=torch.bool)
    edge[:, [8, 10]] = True  # the middle column has crack on both sides, the border is no edge
    assert torch.equal(label_boundary_band(mask, 0), edge)
    band = torch.zeros(20, 20, dtype=torch.bool)
    band[:, 6:13] = True  # 2 px of background on each side, the whole stripe in between
    assert torch.equal(label_boundary_band(mask, 2), band)
    assert torch.equal(label_boundary_band(mask[None, None].float(), 2), band[None, None])


def test_band_of_a_wide_stripe_leaves_an_interior():
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[:, 5:12] = True  # width 7: edges at columns 5 and 11
    band = label_boundary_band(mask, 2)
    expected = torch.zeros(20, 20, dtype=torch.bool)
    expected[:, 3:8] = True
    expected[:, 9:14] = True  # the width-5 bands of both sides; column 8 is the interior
    assert torch.equal(band, expected)


def test_band_of_a_square():
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[5:10, 5:10] = True
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[4:11, 4:11] = True
    expected[7, 7] = False  # two pixels from the ring of edge pixels
    assert torch.equal(label_boundary_band(mask, 1), expected)


def test_band_empty_for_all_zero_and_all_one_masks():
    assert not label_boundary_band(torch.zeros(2, 1, 9, 13), 2).any()
    assert not label_boundary_band(torch.ones(9, 13, dtype=torch.bool), 2).any()  # the border is not an edge
    assert label_boundary_band(torch.ones(9, 13), 0).dtype == torch.bool


@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_band_matches_scipy_on_random_masks(k):
    rng = np.random.default_rng(k)
    masks = ndimage.binary_opening(rng.random((3, 31, 45)) > 0.6, np.ones((1, 2, 2)))
    ours = label_boundary_band(torch.from_numpy(masks)[:, None], k)[:, 0].numpy()
    for m, o in zip(masks, ours):
        np.testing.assert_array_equal(o, np_band(m, k))


@pytest.mark.parametrize(
    "call",
    [
        lambda: label_boundary_band(torch.zeros(1, 8, 8)),
        lambda: label_boundary_band(torch.zeros(1, 2, 8, 8)),
        lambda: label_boundary_band(torch.zeros(8, 8), -1),
        lambda: label_boundary_band(np.zeros((8, 8))),
    ],
)
def test_band_bad_input(call):
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------- stratum_quotas


def test_quotas_by_hand():
    assert stratum_quotas([100, 100, 100], 10) == [3, 4, 3]
    assert stratum_quotas([100, 100, 100], 11) == [3, 5, 3]  # 3.3, 4.4, 3.3: the 0.4 remainder wins
    assert stratum_quotas([100, 100, 100], 12) == [4, 5, 3]  # 3.6, 4.8, 3.6: tie to the lower index
    assert stratum_quotas([0, 0, 5], 7) == [0, 0, 7]  # crack-free
    assert stratum_quotas([5, 0, 0], 7) == [7, 0, 0]  # all crack, no edge
    assert stratum_quotas([0, 10, 10], 70) == [0, 40, 30]  # 0.4 : 0.3
    assert stratum_quotas([5, 0, 5], 11) == [6, 0, 5]
    assert stratum_quotas([10, 0, 30], 8, ratios=(0, 1, 0)) == [2, 0, 6]  # no weighted stratum: by size
    assert stratum_quotas([0, 0, 0], 0) == [0, 0, 0]


def test_quotas_sum_and_proportion_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(500):
        sizes = [int(s) * int(rng.random() > 0.3) for s in rng.integers(1, 1000, 3)]
        if sum(sizes) == 0:
            sizes[2] = 1
        ratios = rng.random(3) + 0.01
        n = int(rng.integers(0, 5000))
        q = stratum_quotas(sizes, n, ratios)
        assert sum(q) == n
        live = [r if s else 0.0 for r, s in zip(ratios, sizes)]
        for qi, wi in zip(q, live):
            share = n * wi / sum(live)
            assert math.floor(share) <= qi <= math.floor(share) + 1  # largest remainder: floor or one more
            if wi == 0:
                assert qi == 0


@pytest.mark.parametrize(
    "args",
    [([0, 0, 0], 5, (0.3, 0.4, 0.3)), ([1, 1], 5, (0.3, 0.4, 0.3)), ([1, 1, 1], -1, (0.3, 0.4, 0.3)),
     ([1, -1, 1], 5, (0.3, 0.4, 0.3)), ([1, 1, 1], 5, (0, 0, 0)), ([1, 1, 1], 5, (0.5, -0.1, 0.6))],
)
def test_quotas_bad_input(args):
    with pytest.raises(ValueError):
        stratum_quotas(*args)


# ---------------------------------------------------------------- sample_training_points


def check_sample(mask: np.ndarray, seed: int = 0, k: int = 2) -> tuple:
    """Run the sampler on one (H, W) numpy mask and check every stated property."""
    h, w = mask.shape
    coords, labels, strata = sample_training_points(torch.from_numpy(mask)[None, None], k=k, generator=gen(seed))
    n = round(h * w / 20)
    assert coords.shape == (1, n, 2) and labels.shape == (1, n) and strata.shape == (1, n)
    assert coords.dtype == torch.float32 and labels.dtype == torch.float32 and strata.dtype == torch.long
    c, lab, s = coords[0].numpy(), labels[0].numpy(), strata[0].numpy()
    rows, cols = to_pixels(c, h, w)
    # the coordinates are exact pixel centres
    np.testing.assert_allclose(c[:, 0], (cols + 0.5) / w, atol=1e-6)
    np.testing.assert_allclose(c[:, 1], (rows + 0.5) / h, atol=1e-6)
    np.testing.assert_array_equal(lab, mask[rows, cols].astype(np.float32))
    band = np_band(mask, k)
    sizes = [int((mask & ~band).sum()), int(band.sum()), int((~mask & ~band).sum())]
    counts = [int((s == sid).sum()) for sid in (INTERIOR, BAND, BACKGROUND)]
    assert counts == stratum_quotas(sizes, n, (0.3, 0.4, 0.3))
    if all(sizes):
        for count, ratio in zip(counts, (0.3, 0.4, 0.3)):
            assert abs(count - n * ratio) <= 1
    at = (rows, cols)
    assert band[at][s == BAND].all()
    assert (mask[at] & ~band[at])[s == INTERIOR].all()
    assert (~mask[at] & ~band[at])[s == BACKGROUND].all()
    return coords, labels, strata


def real_masks() -> list[np.ndarray]:
    paths = sorted((shared_dataset("deepcrack537") / "masks").glob("*.png"))[:3]
    paths += sorted((shared_dataset("cfd") / "masks").glob("*.png"))[:2]
    if len(paths) < 5:
        pytest.skip("../shared/data not present: fewer than 5 masks in deepcrack537/cfd")
    return [read_mask(p) for p in paths]


def test_sampler_on_real_masks():
    masks = real_masks()
    for mask in masks:
        assert mask.any() and not mask.all()
        check_sample(mask)
    a = sample_training_points(torch.from_numpy(masks[0])[None, None], generator=gen(3))
    b = sample_training_points(torch.from_numpy(masks[0])[None, None], generator=gen(3))
    c = sample_training_points(torch.from_numpy(masks[0])[None, None], generator=gen(4))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], c[0])


def test_sampler_batch_and_float_mask():
    rng = np.random.default_rng(1)
    masks = np.zeros((2, 1, 30, 40), bool)
    masks[0, 0, 10:20, 3:37] = True
    masks[1, 0] = rng.random((30, 40)) > 0.7
    coords, labels, strata = sample_training_points(torch.from_numpy(masks), generator=gen(0))
    assert coords.shape == (2, 60, 2)
    for i in range(2):
        rows, cols = to_pixels(coords[i].numpy(), 30, 40)
        np.testing.assert_array_equal(labels[i].numpy(), masks[i, 0][rows, cols])
    again = sample_training_points(torch.from_numpy(masks).float(), generator=gen(0))
    for x, y in zip((coords, labels, strata), again):
        assert torch.equal(x, y)


def test_sampler_crack_free_and_all_crack():
    n = round(48 * 64 / 20)
    _, labels, strata = sample_training_points(torch.zeros(1, 1, 48, 64), generator=gen(0))
    assert labels.shape == (1, n) and (strata == BACKGROUND).all() and (labels == 0).all()
    _, labels, strata = sample_training_points(torch.ones(1, 1, 48, 64, dtype=torch.bool), generator=gen(0))
    assert (strata != BACKGROUND).all() and (labels == 1).all()
    check_sample(np.zeros((48, 64), bool))


def test_sampler_thin_crack_reuses_pixels():
    mask = np.zeros((40, 60), bool)
    mask[20, 10:50] = True  # 1-px crack: the whole crack is band, interior empty
    _, _, strata = check_sample(mask)
    assert not (strata == INTERIOR).any()


def test_sampler_num_points_and_ratios():
    mask = torch.zeros(1, 1, 30, 30, dtype=torch.bool)
    mask[..., 8:22, 8:22] = True
    coords, _, strata = sample_training_points(mask, num_points=100, ratios=(0.5, 0.0, 0.5), generator=gen(0))
    assert coords.shape == (1, 100, 2)
    assert [int((strata == s).sum()) for s in range(3)] == [50, 0, 50]
    coords, labels, strata = sample_training_points(mask, num_points=0)
    assert coords.shape == (1, 0, 2) and labels.shape == (1, 0) and strata.shape == (1, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: sample_training_points(torch.zeros(1, 8, 8)),
        lambda: sample_training_points(torch.zeros(1, 2, 8, 8)),
        lambda: sample_training_points(torch.zeros(1, 1, 0, 8)),
        lambda: sample_training_points(torch.zeros(1, 1, 8, 8), num_points=-1),
        lambda: sample_training_points(torch.zeros(1, 1, 8, 8), ratios=(0.5, 0.5)),
        lambda: sample_training_points(torch.zeros(1, 1, 8, 8), point_ratio=0),
    ],
)
def test_sampler_bad_input(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sampler_on_cuda_with_cpu_generator():
    mask = torch.zeros(1, 1, 30, 40, dtype=torch.bool)
    mask[..., 10:20, 5:35] = True
    cpu = sample_training_points(mask, generator=gen(0))
    cuda = sample_training_points(mask.cuda(), generator=gen(0))
    assert all(t.device.type == "cuda" for t in cuda)
    for x, y in zip(cpu, cuda):
        assert torch.equal(x, y.cpu())


# ---------------------------------------------------------------- uniform_training_points


def test_uniform_sampler_labels_are_the_mask_at_pixel_centres():
    masks = torch.from_numpy(np.stack([np.eye(30, 40, dtype=bool), np.zeros((30, 40), bool)]))[:, None]
    coords, labels = uniform_training_points(masks.float() * 0.9, 1 / 20, gen(0))  # soft mask: binarised at 0.5
    assert coords.shape == (2, 60, 2) and labels.shape == (2, 60) and labels.dtype == torch.float32
    for i in range(2):
        rows, cols = to_pixels(coords[i].numpy(), 30, 40)
        np.testing.assert_array_equal(labels[i].numpy(), masks[i, 0].numpy()[rows, cols].astype(np.float32))
    assert not labels[1].any()
    again, _ = uniform_training_points(masks, 1 / 20, gen(0))
    assert torch.equal(coords, again)  # same generator, same points


@pytest.mark.parametrize("call", [lambda: uniform_training_points(torch.zeros(1, 8, 8)),
                                  lambda: uniform_training_points(torch.zeros(1, 1, 8, 8), 0),
                                  lambda: uniform_training_points(torch.zeros(1, 1, 0, 8))])
def test_uniform_sampler_bad_input(call):
    with pytest.raises(ValueError):
        call()


def test_strata_ratios_are_checked_as_settings():
    with pytest.raises(InputError, match="ratios must hold 3 values"):
        sample_training_points(torch.zeros(1, 1, 8, 8), ratios=(0.5, 0.5))
    with pytest.raises(InputError, match="must not be all zero"):
        sample_training_points(torch.zeros(1, 1, 8, 8), ratios=(0, 0, 0))
