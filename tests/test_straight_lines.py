"""The straight-line filter: long straight strokes (joints, paint and shadow edges) leave the mask,
wandering cracks stay, and segment applies it by default with a setting to turn it off."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from crackrender.data.synthetic import CrackSpec, render_crack_scene
from crackrender.errors import InputError
from crackrender.io import write_image
from crackrender.models.base import Prediction
from crackrender.segment import Segmenter
from crackrender.straight_lines import DEFAULT_MIN_LENGTH, check_min_length, drop_straight_lines, straight_lines


def _line_mask(size, angle_deg, length, width, centre=None):
    mask = np.zeros((size, size), np.uint8)
    c = np.array(centre or (size / 2, size / 2))
    d = np.array([np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))]) * length / 2
    cv2.line(mask, tuple(int(v) for v in c - d), tuple(int(v) for v in c + d), 1, thickness=width)
    return mask.astype(bool)


@pytest.mark.parametrize("angle", [0, 4, 13, 45, 71, 90])
def test_a_long_straight_stroke_is_dropped_at_any_angle(angle):
    joint = _line_mask(800, angle, 700, 5)
    assert drop_straight_lines(joint).sum() == 0
    assert len(straight_lines(joint)) >= 1


def test_short_or_turned_off_lines_are_kept():
    short = _line_mask(800, 30, DEFAULT_MIN_LENGTH * 0.7, 5)
    np.testing.assert_array_equal(drop_straight_lines(short), short)
    long = _line_mask(800, 30, 700, 5)
    np.testing.assert_array_equal(drop_straight_lines(long, 0), long)
    assert drop_straight_lines(long, 600).sum() == 0 and drop_straight_lines(long, 750).sum() == long.sum()
    empty = np.zeros((50, 60), bool)
    assert not drop_straight_lines(empty).any()


def test_wandering_cracks_are_kept_whole():
    # the generator's cracks (the same kind the demo and the synthetic training sets draw)
    for seed in range(8):
        crack = render_crack_scene(1024, 768, seed=seed).mask > 0
        assert crack.any()
        np.testing.assert_array_equal(drop_straight_lines(crack), crack)


def test_a_crack_crossing_a_joint_keeps_all_but_the_crossing():
    crack = render_crack_scene(800, 800, [CrackSpec(width=4, length=700)], seed=3).mask > 0
    cols = np.flatnonzero(crack.any(0))
    x = int(cols[len(cols) // 2])  # a vertical joint where the crack runs
    joint = np.zeros_like(crack)
    joint[:, x - 3:x + 3] = True
    joint &= ~crack
    kept = drop_straight_lines(crack | joint)
    assert not (kept & joint).any()
    crossing = np.zeros_like(crack)
    crossing[:, x - 8:x + 8] = True  # the joint's band: its half-width, the margin, rounding
    assert (crack & crossing).any() and (kept & crack).sum() >= (crack & ~crossing).sum()


def test_wide_strokes_are_dropped_over_their_width():
    band = _line_mask(900, 20, 800, 21)  # an expansion joint predicted 21 px wide
    assert drop_straight_lines(band).sum() == 0


@pytest.mark.parametrize("bad", [-1, 10, 49, 120.5, "long", None])
def test_bad_lengths_are_refused(bad):
    with pytest.raises(InputError, match="straight-line length"):
        check_min_length(bad)
    with pytest.raises(InputError, match="straight-line length"):
        Segmenter(DarkModel(), torch.device("cpu"), straight_lines=bad)


class DarkModel:
    """A stand-in backend: crack where the image is dark."""

    def predict(self, x, timings=None):
        return Prediction.from_logits((0.5 - x.mean(1)[:, None]) * 40, [0])


def test_segment_drops_joints_by_default_and_keeps_them_on_request(tmp_path):
    crack = render_crack_scene(900, 700, [CrackSpec(width=5, length=600)], seed=1).mask > 0
    joint = np.zeros_like(crack)
    joint[:, 448:453] = True  # a sawn joint, top to bottom
    image = np.full((700, 900, 3), 200, np.uint8)
    image[crack | joint] = 40
    seg = Segmenter(DarkModel(), torch.device("cpu"), tile=512, overlap=64)  # tiles: lines are found per tile
    result = seg(image)
    assert result.sidecar["straight_lines"] == DEFAULT_MIN_LENGTH
    assert not (result.mask & joint & ~crack).any()
    assert (result.mask & crack).sum() >= 0.95 * crack.sum()
    raw = Segmenter(DarkModel(), torch.device("cpu"), tile=512, overlap=64, straight_lines=0)(image)
    np.testing.assert_array_equal(raw.mask, crack | joint)


def test_cli_refuses_a_bad_length_in_one_line(tmp_path):
    write_image(tmp_path / "photos" / "p.png", render_crack_scene(64, 64, seed=0).image)
    r = subprocess.run([sys.executable, "-m", "crackrender.cli", "segment", str(tmp_path / "photos"),
                        "--straight-lines", "7", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert "straight-line length" in r.stderr and not (tmp_path / "out").exists()
