"""Synthetic crack generator: determinism, exact masks, widths, contrast, size limits, dataset writer."""

import time

import cv2
import numpy as np
import pytest

from crackrender.data.distractors import FAMILIES
from crackrender.data.synthetic import (
    CrackSpec,
    SyntheticSample,
    crack_free_scene,
    render_crack_scene,
    write_synthetic_dataset,
)


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64).mean(axis=2)


def _n_components(mask: np.ndarray) -> int:
    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return n - 1  # label 0 is the background


@pytest.mark.parametrize("surface", ["concrete", "asphalt"])
def test_same_seed_identical_different_seed_differs(surface):
    a = render_crack_scene(200, 150, seed=7, surface=surface)
    b = render_crack_scene(200, 150, seed=7, surface=surface)
    c = render_crack_scene(200, 150, seed=8, surface=surface)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert len(a.cracks) == len(b.cracks)
    for ga, gb in zip(a.cracks, b.cracks):
        assert np.array_equal(ga["polyline"], gb["polyline"])
    assert not np.array_equal(a.image, c.image)
    assert not np.array_equal(a.mask, c.mask)


def test_shapes_dtypes_and_geometry():
    s = render_crack_scene(320, 200, [CrackSpec(width=5, length=150, branches=2)], seed=3)
    assert isinstance(s, SyntheticSample)
    assert s.image.shape == (200, 320, 3) and s.image.dtype == np.uint8
    assert s.mask.shape == (200, 320) and s.mask.dtype == bool
    assert s.mask.any()
    (crack,) = s.cracks
    assert crack["width"] == 5 and crack["length"] == 150
    poly = crack["polyline"]
    assert poly.ndim == 2 and poly.shape[1] == 2
    assert np.linalg.norm(np.diff(poly, axis=0), axis=1).sum() == pytest.approx(150, rel=1e-6)
    assert len(crack["branches"]) == 2
    for br in crack["branches"]:
        # A branch starts on its parent's centre line.
        assert np.min(np.linalg.norm(poly - br["polyline"][0], axis=1)) < 1e-6
        assert br["width"] <= 5


def test_random_scene_has_cracks_and_crack_free_is_empty():
    s = render_crack_scene(256, 256, seed=1)
    assert 1 <= len(s.cracks) <= 3 and s.mask.any()
    free = crack_free_scene(256, 256, seed=1)
    assert free.image.shape == (256, 256, 3) and free.image.dtype == np.uint8
    assert not free.mask.any() and free.cracks == []
    # The background is the same with and without cracks; only mask pixels change.
    assert np.array_equal(free.image[~s.mask], s.image[~s.mask])
    assert (_grey(s.image)[s.mask] < _grey(free.image)[s.mask]).all()


@pytest.mark.parametrize("w", [1, 3, 8, 15])
def test_straight_crack_width_matches_mask(w):
    length = 300.0
    s = render_crack_scene(480, 480, [CrackSpec(width=w, length=length, curvature=0, taper=False)], seed=w)
    poly = s.cracks[0]["polyline"]
    assert np.allclose(np.diff(poly, axis=0).std(axis=0), 0, atol=1e-9)  # straight: all steps equal
    assert _n_components(s.mask) == 1
    ratio = s.mask.sum() / length
    if w >= 3:
        assert ratio == pytest.approx(w, rel=0.15)
    else:  # 1 px: still a continuous line of about one pixel per unit length
        assert 0.7 <= ratio <= 1.5


@pytest.mark.parametrize("surface", ["concrete", "asphalt"])
def test_cracks_clearly_darker(surface):
    s = render_crack_scene(256, 256, [CrackSpec(width=2, length=200), CrackSpec(width=9, length=180, branches=1)],
                           seed=4, surface=surface)
    g = _grey(s.image)
    assert g[~s.mask].mean() - g[s.mask].mean() > 20
    assert g[s.mask].std() > 1  # soft shading / natural variation, not a flat fill


def test_width_range_controls_random_widths():
    s = render_crack_scene(300, 300, seed=5, n_cracks=3, width_range=(2.0, 4.0))
    assert len(s.cracks) == 3
    assert all(2.0 <= c["width"] <= 4.0 for c in s.cracks)
    assert render_crack_scene(64, 64, seed=5, n_cracks=0).mask.sum() == 0


def test_large_scene():
    # One 8192x6144 scene: ~1-2 s and < 1.5 GB peak on a 2-core CPU; the bound is loose for slow CI runners.
    t0 = time.perf_counter()
    s = render_crack_scene(8192, 6144, seed=0)
    elapsed = time.perf_counter() - t0
    assert s.image.shape == (6144, 8192, 3) and s.mask.shape == (6144, 8192)
    assert s.mask.any()
    assert elapsed < 15, f"8192x6144 scene took {elapsed:.1f} s"


@pytest.mark.parametrize(
    "call",
    [
        lambda: render_crack_scene(64, 64, surface="marble"),
        lambda: render_crack_scene(15, 64),
        lambda: render_crack_scene(64, 16385),
        lambda: render_crack_scene(64, 64, width_range=(0.1, 4.0)),
        lambda: render_crack_scene(64, 64, width_range=(2.0, 80.0)),
        lambda: render_crack_scene(64, 64, width_range=(6.0, 2.0)),
        lambda: render_crack_scene(64, 64, n_cracks=-1),
        lambda: CrackSpec(width=0.2, length=10),
        lambda: CrackSpec(width=65, length=10),
        lambda: CrackSpec(width=3, length=0),
        lambda: crack_free_scene(64, 64, surface="wood"),
        lambda: write_synthetic_dataset("unused", 0),
    ],
)
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def test_write_synthetic_dataset(tmp_path):
    root = write_synthetic_dataset(tmp_path / "syn", 10, size=(96, 64), seed=3)
    assert root == tmp_path / "syn"
    images = sorted(p.name for p in (root / "images").iterdir())
    masks = sorted(p.name for p in (root / "masks").iterdir())
    stems = [f"syn_{i:05d}" for i in range(10)]
    assert images == [f"{s}.jpg" for s in stems] and masks == [f"{s}.png" for s in stems]  # no temp files left
    for name in masks:
        m = cv2.imread(str(root / "masks" / name), cv2.IMREAD_UNCHANGED)
        assert m.dtype == np.uint8 and m.shape == (64, 96)
        assert set(np.unique(m)) <= {0, 255} and (m == 255).any()
    img = cv2.imread(str(root / "images" / images[0]), cv2.IMREAD_COLOR)
    assert img.shape == (64, 96, 3)
    train = (root / "train.txt").read_text().split()
    val = (root / "val.txt").read_text().split()
    assert train == sorted(train) and val == sorted(val)
    assert len(train) == 8 and len(val) == 2
    assert not set(train) & set(val) and sorted(train + val) == stems
    # Deterministic: same seed rewrites identical masks.
    again = write_synthetic_dataset(tmp_path / "again", 10, size=(96, 64), seed=3)
    for name in masks:
        assert (root / "masks" / name).read_bytes() == (again / "masks" / name).read_bytes()


def test_distractors_off_by_default_and_drawn_under_the_cracks():
    plain = render_crack_scene(160, 120, seed=2)
    assert plain.distractors == () and plain.distractor_mask.shape == (120, 160) and not plain.distractor_mask.any()
    for off in ("none", [], ""):
        assert np.array_equal(render_crack_scene(160, 120, seed=2, distractors=off).image, plain.image)
    busy = render_crack_scene(160, 120, seed=2, distractors="all")
    assert busy.distractors == tuple(FAMILIES) and busy.distractor_mask.any()
    assert np.array_equal(busy.mask, plain.mask) and not (busy.distractor_mask & busy.mask).any()
