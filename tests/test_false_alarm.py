"""False-alarm score on hand-made masks, and the benchmark's commands as a user runs them."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from crackrender.errors import InputError
from crackrender.false_alarm import false_alarm_counts, false_alarm_scores


def run(*args):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_counts_on_hand_made_masks():
    gt = np.zeros((10, 10), bool)
    gt[:, 4] = True                                  # a vertical crack, 10 px
    paint = np.zeros((10, 10), bool)
    paint[2:4, :] = True                             # a paint band, 20 px, 2 of them crack
    pred = np.zeros((10, 10), bool)
    pred[:, 4] = True                                # the crack, found
    pred[2, :] = True                                # one paint edge called crack: 9 background px
    pred[9, 9] = True                                # one stray pixel elsewhere
    c = false_alarm_counts(pred, gt, paint)
    assert c == {"distractor_px": 18, "distractor_fp_px": 9, "fp_px": 10, "image_px": 100}
    assert false_alarm_counts(gt, gt, paint)["fp_px"] == 0
    s = false_alarm_scores([c, false_alarm_counts(gt, gt, paint)])
    assert s["distractor_share_predicted"] == pytest.approx(9 / 36)
    assert s["fp_per_mp"] == pytest.approx(10 / 200 * 1e6)
    assert s["n_images"] == 2 and s["image_px"] == 200
    # 0/255 uint8 masks count like bools
    assert false_alarm_counts(pred.astype(np.uint8) * 255, gt, paint.astype(np.uint8)) == c


def test_no_distractors_and_bad_input():
    empty = np.zeros((4, 4), bool)
    s = false_alarm_scores([false_alarm_counts(empty, empty, empty)])
    assert s["distractor_share_predicted"] is None and s["fp_per_mp"] == 0
    with pytest.raises(InputError, match="mask shapes differ"):
        false_alarm_counts(empty, empty, np.zeros((4, 5), bool))
    with pytest.raises(InputError, match="no images"):
        false_alarm_scores([])


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED) > 0


def test_falsealarm_command_then_evaluate_with_distractors(tmp_path):
    root = tmp_path / "fa"
    res = run("data", "falsealarm", root, "--n", "4", "--width", "160", "--height", "96", "--seed", "1")
    assert res.returncode == 0, res.stderr
    assert "wrote 4 false-alarm scenes (2 with cracks)" in res.stdout
    stems = (root / "test.txt").read_text().split()
    assert len(stems) == 4
    for folder, ext in (("images", ".jpg"), ("masks", ".png"), ("distractors", ".png")):
        assert sorted(p.name for p in (root / folder).iterdir()) == [s + ext for s in stems]
    # A "model" that calls every distractor pixel crack: share 1, FP = all distractor pixels.
    pred = tmp_path / "pred"
    pred.mkdir()
    n_distractor = 0
    for s in stems:
        gt, dis = read(root / "masks" / f"{s}.png"), read(root / "distractors" / f"{s}.png")
        n_distractor += int((dis & ~gt).sum())
        cv2.imwrite(str(pred / f"{s}.png"), (gt | dis).astype(np.uint8) * 255)
    out = tmp_path / "eval.json"
    res = run("evaluate", pred, root / "masks", "--distractors", root / "distractors", "--json", out, "-q")
    assert res.returncode == 0, res.stderr
    fa = json.loads(out.read_text())["false_alarm"]
    assert fa["distractor_share_predicted"] == 1.0
    assert fa["fp_per_mp"] == pytest.approx(n_distractor / (4 * 160 * 96 / 1e6))
    assert f"1.0000 of distractor pixels predicted crack ({n_distractor} of {n_distractor})" in res.stdout
    assert f"{fa['fp_per_mp']:.1f} false-positive px per megapixel" in res.stdout
    # The ground truth as the prediction: no false alarm at all.
    res = run("evaluate", root / "masks", root / "masks", "--distractors", root / "distractors", "-q")
    assert res.returncode == 0 and "0.0000 of distractor pixels predicted crack" in res.stdout
    assert "0.0 false-positive px per megapixel" in res.stdout


def test_commands_refuse_bad_options_in_one_line(tmp_path):
    for args in (("data", "falsealarm", tmp_path / "x", "--n", "0"),
                 ("data", "falsealarm", tmp_path / "x", "--width", "8"),
                 ("data", "synth", tmp_path / "y", "--distractors", "paint,lasers"),
                 ("data", "synth", tmp_path / "y", "--negatives", "2"),
                 ("data", "synth", tmp_path / "y", "--crack-widths", "4"),
                 ("data", "synth", tmp_path / "y", "--crack-widths", "4,90"),
                 ("data", "synth", tmp_path / "y", "--crack-widths", "9,4")):
        res = run(*args)
        assert res.returncode == 2, args
        assert res.stderr.startswith("error:") and res.stderr.strip().count("\n") == 0, res.stderr


def test_synth_command_with_distractors_and_negatives(tmp_path):
    res = run("data", "synth", tmp_path / "syn", "--n", "6", "--width", "128", "--height", "96",
              "--distractors", "paint_lines,sawn_joints", "--negatives", "0.5")
    assert res.returncode == 0, res.stderr
    masks = [read(p) for p in sorted((tmp_path / "syn" / "masks").iterdir())]
    assert sum(not m.any() for m in masks) == 3
    assert len(list((tmp_path / "syn" / "distractors").iterdir())) == 6
    assert run("data", "check", tmp_path / "syn", "-q").returncode == 0


def test_synth_command_draws_cracks_as_wide_as_asked(tmp_path):
    """Wide cracks (issue 15): a set drawn at 12-16 px has masks far wider than the default 1-8 px."""
    from crackrender.quantify import quantify_mask

    def widest(folder):
        return max(c.max_width_px for p in sorted((folder / "masks").iterdir()) for c in quantify_mask(read(p) > 0).cracks)

    for name, extra in (("thin", ()), ("wide", ("--crack-widths", "12,16"))):
        res = run("data", "synth", tmp_path / name, "--n", "3", "--width", "192", "--height", "160", *extra)
        assert res.returncode == 0, res.stderr
    assert widest(tmp_path / "thin") <= 9 < 11 <= widest(tmp_path / "wide")
