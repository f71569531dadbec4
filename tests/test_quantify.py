"""Crack quantification: accuracy on masks of exact geometry, units and classes (reports and bad
input: tests/test_quantify_reports.py)."""

from __future__ import annotations

import numpy as np
import pytest

from crackrender.errors import InputError
from crackrender.quantify import Camera, quantify_mask
from crackrender.quantify import shapes

WIDTHS = (2, 3, 5, 8, 12, 20)
ANGLES = (0, 15, 30, 45, 60, 75, 90)


def total_length(r) -> float:
    return sum(c.length_px for c in r.cracks)


# ------------------------------------------------------------------ accuracy on exact geometry
# Widths are compared with the width the mask really has (area / true length): at 45 degrees pixel
# centres lie on diagonals 0.71 px apart, so e.g. a "3 px" band rasterises to 3.54 px.


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("angle", ANGLES)
def test_straight_crack(width, angle):
    mask, truth = shapes.straight(width, 300, angle)
    r = quantify_mask(mask)
    assert len(r.cracks) == 1 and len(r.cracks[0].branches) == 1
    c = r.cracks[0]
    digital = mask.sum() / truth["length"]
    assert abs(digital - width) < 0.6  # the rasterisation itself
    assert abs(c.length_px - truth["length"]) <= 0.02 * truth["length"]
    assert abs(c.mean_width_px - digital) <= 0.5
    assert abs(c.max_width_px - digital) <= 0.5
    assert abs(c.p90_width_px - digital) <= 0.5
    d = abs(c.orientation_deg - angle) % 180
    assert min(d, 180 - d) < 1.0
    assert c.area_px == mask.sum()


@pytest.mark.parametrize("width", WIDTHS)
def test_arc(width):
    mask, truth = shapes.arc(width, radius=150, sweep_deg=120)
    r = quantify_mask(mask)
    c = r.cracks[0]
    assert len(r.cracks) == 1 and len(c.branches) == 1
    digital = mask.sum() / truth["length"]
    assert abs(c.length_px - truth["length"]) <= 0.02 * truth["length"]
    assert abs(c.mean_width_px - digital) <= 0.5
    assert abs(c.max_width_px - digital) <= 0.5


@pytest.mark.parametrize("width", WIDTHS)
def test_tapered(width):
    mask, truth = shapes.tapered(width, 300, 20)
    c = quantify_mask(mask).cracks[0]
    assert abs(c.length_px - truth["length"]) <= 0.02 * truth["length"]
    assert abs(c.max_width_px - truth["width"]) <= 0.5
    assert abs(c.mean_width_px - truth["mean_width"]) <= 0.5
    assert c.p90_width_px < c.max_width_px


@pytest.mark.parametrize("width", WIDTHS)
def test_branching_y(width):
    mask, truth = shapes.branching(width, arm=150, fork_deg=35)
    r = quantify_mask(mask)
    assert len(r.cracks) == 1
    c = r.cracks[0]
    assert len(c.branches) == 3
    assert sorted(b.free_ends for b in c.branches) == [1, 1, 1]
    assert abs(total_length(r) - truth["length"]) <= 0.02 * truth["length"]
    assert abs(sum(b.length_px for b in c.branches) - c.length_px) < 1e-6
    assert abs(c.mean_width_px - width) <= 0.5
    assert abs(c.max_width_px - width) <= 0.5
    assert [b.id for b in c.branches] == [1, 2, 3] and all(b.crack_id == 1 for b in c.branches)


def test_closed_ring():
    size, radius = 200, 70
    yy, xx = np.mgrid[0:size, 0:size]
    rr = np.hypot(xx - 99.5, yy - 99.5)
    mask = np.abs(rr - radius) <= 3
    c = quantify_mask(mask).cracks[0]
    assert len(c.branches) == 1 and c.branches[0].free_ends == 0
    assert abs(c.length_px - 2 * np.pi * radius) <= 0.02 * 2 * np.pi * radius
    assert abs(c.mean_width_px - 6) <= 0.5


def test_instances_ids_and_small_specks():
    mask = np.zeros((200, 300), bool)
    mask[20:25, 10:290] = True  # long
    mask[100:104, 50:150] = True  # shorter
    mask[150:153, 200:205] = True  # a speck, shorter than min_length_px
    r = quantify_mask(mask, min_length_px=10)
    assert [c.id for c in r.cracks] == [1, 2]
    assert r.cracks[0].length_px > r.cracks[1].length_px
    assert r.cracks[0].bbox == (10, 20, 289, 24)
    assert r.dropped_short == 1
    assert len(quantify_mask(mask, min_length_px=0).cracks) == 3


def test_crack_across_image_border():
    mask = np.zeros((60, 100), bool)
    mask[28:33, :] = True  # crosses the whole image: its length is the image width
    c = quantify_mask(mask).cracks[0]
    assert abs(c.length_px - 100) <= 2
    assert abs(c.max_width_px - 5) <= 0.5


def test_mask_without_background():
    r = quantify_mask(np.ones((30, 40), bool))
    assert len(r.cracks) == 1 and r.cracks[0].area_px == 1200


def test_bump_is_not_a_branch():
    mask, _ = shapes.straight(10, 300, 0)
    r0, c0 = np.argwhere(mask).min(0)
    mask[r0 + 10:r0 + 13, c0 + 150:c0 + 153] = True  # a 3 px bump on the edge
    assert len(quantify_mask(mask).cracks[0].branches) == 1


def test_synthetic_generator_scene():
    synthetic = pytest.importorskip("crackrender.data.synthetic")
    s = synthetic.render_crack_scene(512, 512, [synthetic.CrackSpec(width=6, length=300, curvature=0.3, taper=False)],
                                     seed=2)
    r = quantify_mask(s.mask)
    assert len(r.cracks) == 1
    # the generator draws round caps: its crack is one width longer than its centre line
    assert abs(r.cracks[0].length_px - (300 + 6)) <= 0.02 * 300
    assert abs(r.cracks[0].mean_width_px - 6) <= 0.5


# ------------------------------------------------------------------ units, classes, resolution


def test_gsd_scales_linearly():
    mask, _ = shapes.straight(8, 200, 30)
    px = quantify_mask(mask).to_dict()
    mm = quantify_mask(mask, gsd=0.05).to_dict()
    assert px["units"] == "px" and mm["units"] == "mm"
    a, b = px["cracks"][0], mm["cracks"][0]
    for name in ("length", "max_width", "mean_width", "p90_width"):
        assert b[f"{name}_px"] == a[f"{name}_px"]
        assert b[f"{name}_mm"] == pytest.approx(a[f"{name}_px"] * 0.05, abs=1e-3)
        assert f"{name}_mm" not in a
    assert b["area_mm2"] == pytest.approx(a["area_px"] * 0.0025)
    assert mm["summary"]["total_length"] == pytest.approx(px["summary"]["total_length"] * 0.05, rel=1e-4)
    assert mm["resolution"]["width_uncertainty_mm"] == 0.05
    assert mm["resolution"]["min_resolvable_width_mm"] == pytest.approx(0.1)


def test_camera_gsd():
    assert Camera(focal_mm=50, pixel_um=4.0, distance_mm=2000).gsd_mm() == pytest.approx(0.16)
    mask, _ = shapes.straight(6, 200, 0)
    r = quantify_mask(mask, camera=Camera(50, 4.0, 2000))
    assert r.gsd_mm == pytest.approx(0.16)
    with pytest.raises(InputError, match="either"):
        quantify_mask(mask, gsd=0.1, camera=Camera(50, 4.0, 2000))
    with pytest.raises(InputError, match="focal"):
        quantify_mask(mask, camera=Camera(0, 4.0, 2000))


@pytest.mark.parametrize("gsd, expected", [(0.01, "<0.1"), (0.025, "0.1-0.2"), (0.04, "0.2-0.3"), (0.05, ">=0.3")])
def test_width_classes(gsd, expected):
    mask, _ = shapes.straight(6, 200, 0)  # 6 px: 0.06, 0.15, 0.24, 0.30 mm
    c = quantify_mask(mask, gsd=gsd).cracks[0]
    assert c.width_class == expected and not c.below_resolution


def test_custom_bins_and_no_classes_in_pixels():
    mask, _ = shapes.straight(6, 200, 0)
    assert quantify_mask(mask, gsd=0.05, width_bins_mm=(0.2, 0.4)).cracks[0].width_class == "0.2-0.4"
    r = quantify_mask(mask)
    assert r.cracks[0].width_class is None and r.summary()["width_classes"] is None
    with pytest.raises(InputError, match="increasing"):
        quantify_mask(mask, gsd=0.05, width_bins_mm=(0.3, 0.1))


def test_sub_resolution_flagged():
    mask = np.zeros((40, 200), bool)
    mask[20, 10:190] = True  # 1 px wide
    c = quantify_mask(mask).cracks[0]
    assert c.below_resolution and c.max_width_px < 2
    assert quantify_mask(mask, gsd=0.02).cracks[0].width_class == "<0.1"  # < 0.04 mm: certainly
    assert quantify_mask(mask, gsd=0.1).cracks[0].width_class == "unresolved"  # < 0.2 mm: either class
    wide, _ = shapes.straight(5, 200, 0)
    assert not quantify_mask(wide).cracks[0].below_resolution


@pytest.mark.parametrize("angle, axis, expected", [(0, 0, "longitudinal"), (90, 0, "transverse"), (45, 0, "diagonal"),
                                                   (90, 90, "longitudinal"), (160, 0, "longitudinal")])
def test_orientation_classes(angle, axis, expected):
    mask, _ = shapes.straight(4, 150, angle)
    c = quantify_mask(mask, member_axis_deg=axis).cracks[0]
    assert c.orientation_class == expected
