"""Test-time views (crackrender.test_time_views): each flip undone lands on the image's own
pixels, rescaled answers come back at the image's size, the average is exact, a threshold
calibrated for the views is used with them, and `segment --flips/--scales` records the views and
refuses ones it does not know."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from crackrender.checkpoint import load_model_and_info, save_model
from crackrender.data.synthetic import render_crack_scene
from crackrender.errors import InputError
from crackrender.io import write_image
from crackrender.models.base import Prediction
from crackrender.segment import Segmenter
from crackrender.test_time_views import (FLIP_COUNTS, ViewAveraged, apply_flip, check_flips, check_scales, flip_names,
                                         undo_flip, views_label)


class ColumnRamp:
    """A model that ignores the image: its probability rises from 0 at the left edge of what it
    sees to 1 at the right, so each view's answer, undone, shows where that view put the left."""

    config = {"name": "column_ramp"}

    def __init__(self):
        self.calls = []

    def predict(self, images, **kwargs):
        self.calls.append(tuple(images.shape))
        b, _, h, w = images.shape
        prob = torch.linspace(0, 1, w).expand(b, h, w).clone()
        return Prediction(prob > 0.5, prob, [3] * b)


class Brightness:
    """A model whose probability is the image's red channel: it sees every view alike."""

    def predict(self, images, **kwargs):
        prob = images[:, 0].float()
        return Prediction(prob > 0.5, prob, [0] * images.shape[0])


@pytest.mark.parametrize("flips", FLIP_COUNTS)
def test_every_flip_undone_is_the_image_again(flips):
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7).contiguous(memory_format=torch.channels_last)
    seen = set()
    for name in flip_names(flips):
        view = apply_flip(name, x)
        assert view.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(undo_flip(name, view), x), name
        seen.add(view.numpy().tobytes())
    assert len(seen) == flips  # every view differs from the others


def test_average_over_views_is_exact():
    x = torch.zeros(1, 3, 4, 6)
    ramp = ColumnRamp()
    two = ViewAveraged(ramp, flips=2).predict(x)
    # the ramp and its mirror undone: j/5 and 1 - j/5, whose mean is 0.5 everywhere
    assert torch.allclose(two.prob, torch.full((1, 4, 6), 0.5))
    assert not two.mask.any() and two.refined_points == [6]
    eight = ViewAveraged(ramp, flips=8).predict(x)
    assert ramp.calls[-8:] == [(1, 3, 4, 6)] * 4 + [(1, 3, 6, 4)] * 4  # the transposed views are transposed
    # four views put the ramp along rows (mean 0.5 each row) and four along columns
    assert torch.allclose(eight.prob, torch.full((1, 4, 6), 0.5))
    image = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ViewAveraged(Brightness(), flips=8).predict(image).prob, image[:, 0])


def test_scaled_views_come_back_at_the_image_size():
    ramp = ColumnRamp()
    pred = ViewAveraged(ramp, flips=2, scales=(0.5, 1.0, 2.0)).predict(torch.zeros(1, 3, 10, 20))
    assert ramp.calls == [(1, 3, 5, 10)] * 2 + [(1, 3, 10, 20)] * 2 + [(1, 3, 20, 40)] * 2
    assert pred.prob.shape == (1, 10, 20) and pred.refined_points == [18]
    # each scale's ramp and its mirror still average to 0.5, whatever the resizing did
    assert torch.allclose(pred.prob, torch.full((1, 10, 20), 0.5), atol=1e-6)
    flat = torch.full((1, 3, 9, 13), 0.7)
    assert torch.allclose(ViewAveraged(Brightness(), scales=(0.6, 1.4)).predict(flat).prob, torch.full((1, 9, 13), 0.7))


@pytest.mark.parametrize("bad", [0, 3, 16, "4", 2.0, True])
def test_unknown_flip_counts_are_refused(bad):
    with pytest.raises(InputError, match="flips must be one of 1, 2, 4, 8"):
        check_flips(bad)


@pytest.mark.parametrize("bad", ["", "1,1", "0.1", "2.5", "a,b", [], None])
def test_bad_scales_are_refused(bad):
    with pytest.raises(InputError, match="scales must be"):
        check_scales(bad)


def test_segmenter_with_flips_averages_the_model_and_records_it(model_file):
    image = render_crack_scene(96, 64, seed=3).image
    plain = Segmenter.from_checkpoint(model_file, device="cpu", threshold=0.45)
    flipped = Segmenter.from_checkpoint(model_file, device="cpu", threshold=0.45, flips=4)
    mean = np.mean([np.asarray(plain(np.ascontiguousarray(im)).prob)[::sy, ::sx]
                    for im, sy, sx in ((image, 1, 1), (image[:, ::-1], 1, -1), (image[::-1], -1, 1),
                                       (image[::-1, ::-1], -1, -1))], axis=0)
    result = flipped(image)
    np.testing.assert_allclose(result.prob, mean, atol=1e-5)
    np.testing.assert_array_equal(result.mask, result.prob >= 0.45)
    assert (result.sidecar["flips"], result.sidecar["scales"]) == (4, [1.0])
    assert plain(image).sidecar["flips"] == 1
    assert result.sidecar["model"] == plain.model.config  # the sidecar still names the model


def test_a_threshold_calibrated_for_the_views_is_used_with_them(model_file, tmp_path):
    model, info = load_model_and_info(model_file)
    path = tmp_path / "calibrated.safetensors"
    save_model(path, model, info={**info, "threshold": 0.34,
                                  "view_thresholds": {views_label(2, (0.75, 1.0, 1.25)): 0.4}})
    assert Segmenter.from_checkpoint(path, device="cpu").threshold == 0.34
    assert Segmenter.from_checkpoint(path, device="cpu", flips=2, scales="0.75,1,1.25").threshold == 0.4
    assert Segmenter.from_checkpoint(path, device="cpu", flips=4).threshold == 0.34  # none for these views
    assert Segmenter.from_checkpoint(path, device="cpu", flips=2, scales=(0.75, 1, 1.25), threshold=0.5).threshold == 0.5


def _segment(*args):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", "segment", *map(str, args), "-q"],
                          capture_output=True, text=True, timeout=300)


def test_cli_refuses_unknown_views_and_writes_nothing(model_file, tmp_path):
    write_image(tmp_path / "p.jpg", render_crack_scene(64, 48, seed=1).image)
    out = tmp_path / "out"
    for bad, message in ((["--flips", "3"], "flips must be one of 1, 2, 4, 8"), (["--scales", "1,x"], "scales must be")):
        proc = _segment(tmp_path / "p.jpg", "-c", model_file, "--out", out, *bad)
        assert proc.returncode != 0
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not out.exists()
    ok = _segment(tmp_path / "p.jpg", "-c", model_file, "--out", out, "--flips", "2", "--scales", "1,1.5")
    assert ok.returncode == 0, ok.stderr
    side = json.loads((out / "p.json").read_text())
    assert (side["flips"], side["scales"]) == (2, [1.0, 1.5])
