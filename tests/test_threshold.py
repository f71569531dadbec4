"""The decision threshold: chosen on validation data by the stated rule, carried in the model file,
used by default and overridable."""

import numpy as np
import pytest
import torch
from conftest import TINY_CBPRN

from crackrender.errors import InputError
from crackrender.threshold import (choose_filtered_threshold, choose_threshold, f1_by_threshold, model_threshold,
                                   probability_histograms)


def _biased_maps(rng, shift, n=6, size=(40, 50)):
    """Probability maps of a model whose crack pixels sit around ``0.5 + shift``, background lower."""
    out = []
    for _ in range(n):
        gt = rng.random(size) < 0.1
        prob = np.where(gt, rng.normal(0.5 + shift, 0.05, size), rng.normal(0.15, 0.05, size)).clip(0, 1)
        out.append((prob, gt))
    return out


def test_threshold_maximises_mean_f1_over_datasets():
    rng = np.random.default_rng(0)
    # dataset a needs a threshold below its cracks' 0.35; b is easy anywhere between 0.3 and 0.8
    hists = {name: sum(probability_histograms(p, g) for p, g in _biased_maps(rng, shift))
             for name, shift in (("a", -0.15), ("b", 0.25))}
    t, f1 = choose_threshold(hists)
    assert 0.2 < t < 0.3, t
    assert f1["a"] > 0.9 and f1["b"] > 0.9
    assert f1_by_threshold(hists["a"])[100] < 0.5  # at 0.5 most of a's cracks would be lost


def _joint_and_crack(size=(300, 400)):
    """A wavy crack whose 3 px core is predicted 0.8 and its edges 0.5, beside a straight 5 px joint
    at 0.6 that is background."""
    import cv2

    h, w = size
    xs = np.arange(20, w - 20)
    curve = np.stack([xs, (h // 2 + 60 * np.sin(xs / 25)).astype(int)], 1).reshape(-1, 1, 2).astype(np.int32)
    full, core, joint = (np.zeros(size, np.uint8) for _ in range(3))
    cv2.polylines(full, [curve], False, 1, thickness=5)
    cv2.polylines(core, [curve], False, 1, thickness=3)
    cv2.line(joint, (10, 30), (w - 10, 30), 1, thickness=5)
    prob = np.full(size, 0.05)
    prob[full > 0], prob[core > 0], prob[joint > 0] = 0.5, 0.8, 0.6
    return prob, full > 0


def test_threshold_is_chosen_for_what_segment_outputs_after_the_straight_line_filter():
    prob, gt = _joint_and_crack()
    # before the filter the joint costs more than the crack's edges: the rule keeps it out, and them
    t0, f1 = choose_threshold({"a": probability_histograms(prob, gt)})
    assert 0.6 < t0 <= 0.8 and f1["a"] < 0.9
    # segment drops the joint whatever the threshold, so the edges can come in
    t, f1, at_half = choose_filtered_threshold([("a", prob, gt)], t0, 200)
    assert t <= 0.5 and f1["a"] > 0.99 and at_half["a"] > 0.99
    # a filter too long to see the joint leaves the choice where it was
    t, f1, _ = choose_filtered_threshold([("a", prob, gt)], t0, 1000)
    assert t == pytest.approx(t0) and f1["a"] < 0.9


def test_histograms_refuse_mismatched_sizes():
    with pytest.raises(InputError, match="differ in size"):
        probability_histograms(np.zeros((3, 4)), np.zeros((4, 3), bool))


@pytest.mark.parametrize("bad", [0, 1, -0.2, "x", None])
def test_bad_thresholds_are_one_line_errors(bad):
    with pytest.raises(InputError, match="threshold"):
        model_threshold({"threshold": bad})


def test_calibrated_file_carries_its_threshold_and_segment_uses_it(tmp_path):
    from crackrender.checkpoint import read_checkpoint, save_model
    from crackrender.data.synthetic import write_synthetic_dataset
    from crackrender.models import create_model
    from crackrender.segment import Segmenter
    from crackrender.threshold import calibrate

    torch.manual_seed(0)
    plain = save_model(tmp_path / "plain.safetensors", create_model("cbprn", **TINY_CBPRN))
    data = write_synthetic_dataset(tmp_path / "syn", 4, size=(64, 48), seed=2, splits={"val": 1.0})
    record = calibrate(plain, [(data, "val")], tmp_path / "calibrated.safetensors", progress=False)
    _, _, info = read_checkpoint(tmp_path / "calibrated.safetensors")
    assert info["threshold"] == record["threshold"] and "mean" in info["threshold_rule"]
    assert "straight-line filter" in info["threshold_rule"] and info["threshold_straight_lines"] == 200
    assert set(info["threshold_val_f1"]) == {"syn"} and 0 < info["threshold_before_filter"] < 1
    assert abs(info["threshold"] - info["threshold_before_filter"]) <= 0.15 or info["threshold"] == 0.5
    unfiltered = calibrate(plain, [(data, "val")], tmp_path / "unfiltered.safetensors", progress=False, straight_lines=0)
    assert unfiltered["threshold"] == info["threshold_before_filter"] and "threshold_before_filter" not in unfiltered

    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    old = Segmenter.from_checkpoint(plain)
    assert old.threshold == 0.5  # a file made before thresholds keeps 0.5
    new = Segmenter.from_checkpoint(tmp_path / "calibrated.safetensors")
    assert new.threshold == record["threshold"]
    result = new(image)
    np.testing.assert_array_equal(result.mask, result.prob >= record["threshold"])
    assert result.sidecar["threshold"] == record["threshold"]
    forced = Segmenter.from_checkpoint(tmp_path / "calibrated.safetensors", threshold=0.9)(image)
    np.testing.assert_array_equal(forced.mask, forced.prob >= 0.9)


def test_calibrating_for_test_time_views_records_their_own_threshold(tmp_path):
    from crackrender.checkpoint import read_checkpoint, save_model
    from crackrender.data.datasets import CrackDataset
    from crackrender.data.synthetic import write_synthetic_dataset
    from crackrender.models import create_model
    from crackrender.segment import Segmenter
    from crackrender.threshold import calibrate, choose_threshold, probability_histograms

    torch.manual_seed(0)
    model = tmp_path / "model.safetensors"
    save_model(model, create_model("cbprn", **TINY_CBPRN), info={"threshold": 0.42})
    data = write_synthetic_dataset(tmp_path / "syn", 4, size=(64, 48), seed=2, splits={"val": 1.0})
    views = dict(flips=2, scales=(1.0, 1.5))
    record = calibrate(model, [(data, "val")], tmp_path / "views.safetensors", progress=False, **views)
    _, _, info = read_checkpoint(tmp_path / "views.safetensors")
    assert info["threshold"] == 0.42  # the plain threshold stays
    assert info["view_thresholds"] == {"flips=2 scales=1,1.5": record["threshold"]}
    # the one the rule picks from the averaged probabilities
    seg = Segmenter.from_checkpoint(model, **views)
    ds = CrackDataset(data, "val")
    hist = sum(probability_histograms(seg(ds.load(i)[0]).prob_float(), ds.load(i)[1]) for i in range(len(ds)))
    assert record["threshold"] == choose_threshold({"syn": hist})[0]
    assert Segmenter.from_checkpoint(tmp_path / "views.safetensors", **views).threshold == record["threshold"]
    assert Segmenter.from_checkpoint(tmp_path / "views.safetensors").threshold == 0.42


def test_calibrate_and_segment_threshold_on_the_command_line(tmp_path):
    import json
    import subprocess
    import sys

    from crackrender.checkpoint import save_model
    from crackrender.data.synthetic import write_synthetic_dataset
    from crackrender.models import create_model

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=600)

    torch.manual_seed(0)
    plain = save_model(tmp_path / "plain.safetensors", create_model("cbprn", **TINY_CBPRN))
    data = write_synthetic_dataset(tmp_path / "syn", 3, size=(64, 48), seed=2, splits={"val": 1.0})
    done = cli("calibrate", tmp_path / "cal.safetensors", "--val", data, "-c", plain, "-q")
    assert done.returncode == 0, done.stderr[-1500:]
    assert "threshold" in done.stdout and (tmp_path / "cal.safetensors").is_file()
    bad = cli("calibrate", tmp_path / "x.safetensors", "--val", tmp_path / "nowhere", "-c", plain)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "nowhere" in bad.stderr
    assert not (tmp_path / "x.safetensors").exists()
    seg = cli("segment", data / "images", "-c", tmp_path / "cal.safetensors", "--threshold", "0.9", "--out",
              tmp_path / "pred", "-q")
    assert seg.returncode == 0, seg.stderr[-1500:]
    sidecar = json.loads(next((tmp_path / "pred").glob("*.json")).read_text())
    assert sidecar["threshold"] == 0.9
    refused = cli("segment", data / "images", "-c", plain, "--threshold", "1.5", "--out", tmp_path / "p2", "-q")
    assert refused.returncode == 2 and "threshold" in refused.stderr and not (tmp_path / "p2").exists()
