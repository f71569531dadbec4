"""Folder evaluation: file matching, prediction kinds, errors, and the result against plain numpy."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from crackrender.errors import InputError
from crackrender.evaluate import evaluate_folders, format_table, match_files

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "deepcrack537"


def write(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    assert cv2.imwrite(str(path), arr)


def make_gt(rng, n=4, h=60, w=80):
    masks = {}
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        for _ in range(3):
            p, q = rng.integers(0, [w, h], size=(2, 2))
            cv2.line(m, tuple(map(int, p)), tuple(map(int, q)), 1, int(rng.integers(1, 4)))
        masks[f"img{i}"] = m.astype(bool)
    return masks


def ellipse(r):
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return np.abs(x) <= np.rint(np.sqrt(np.maximum(r * r - y * y, 0)))


def plain_mba(pred, gt):
    h, w = gt.shape
    accs = []
    for i in range(5):
        k = ellipse(1 + int(((h + w) / 300 - 1) / 5 * i))
        band = ndimage.binary_dilation(gt, k) & ~ndimage.binary_erosion(gt, k, border_value=1)
        accs.append(np.mean(pred[band] == gt[band]))
    return np.mean(accs)


def test_self_vs_self_is_perfect(tmp_path):
    gts = make_gt(np.random.default_rng(0))
    gts["blank"] = np.zeros((60, 80), bool)
    for k, m in gts.items():
        write(tmp_path / "gt" / f"{k}.png", m)
    result = evaluate_folders(tmp_path / "gt", tmp_path / "gt", progress=False)
    assert result["n_images"] == 5 and result["mba_skipped"] == 1
    for metric, v in result["summary"].items():
        assert v == {"per_image_mean": 1.0, "aggregate": 1.0}, metric
    assert "ods" not in result and any("ODS/OIS omitted" in n for n in result["notes"])
    json.dumps(result)  # the CLI writes it as JSON
    table = format_table(result)
    assert "mIoU" in table and "1.0000" in table and "mBA skipped: 1" in table


def test_perturbed_predictions_match_plain_numpy(tmp_path):
    rng = np.random.default_rng(1)
    gts = make_gt(rng)
    preds = {}
    for k, m in gts.items():
        write(tmp_path / "gt" / f"{k}.png", m)
        preds[k] = ndimage.binary_dilation(m) ^ (rng.random(m.shape) < 0.03)
        write(tmp_path / "pred" / f"{k}_mask.png", preds[k])  # the <stem>_mask naming
    result = evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False, boundary_d=2)
    tp = np.array([(preds[k] & gts[k]).sum() for k in gts])
    fp = np.array([(preds[k] & ~gts[k]).sum() for k in gts])
    fn = np.array([(~preds[k] & gts[k]).sum() for k in gts])
    s = result["summary"]
    assert s["iou"]["per_image_mean"] == pytest.approx(np.mean(tp / (tp + fp + fn)))
    assert s["iou"]["aggregate"] == pytest.approx(tp.sum() / (tp + fp + fn).sum())
    assert s["f1"]["aggregate"] == pytest.approx(2 * tp.sum() / (2 * tp + fp + fn).sum())
    assert s["recall"]["per_image_mean"] == pytest.approx(np.mean(tp / (tp + fn)))
    assert s["mba"]["per_image_mean"] == pytest.approx(np.mean([plain_mba(preds[k], gts[k]) for k in gts]))
    assert result["boundary_iou_d"] == 2 and all(r["kind"] == "mask" for r in result["images"])
    assert [r["name"] for r in result["images"]] == sorted(gts)


def test_matching_and_unmatched(tmp_path):
    m = np.zeros((10, 10), bool)
    m[2:5, 2:5] = True
    for name in ("a.png", "b.png", "c.png"):
        write(tmp_path / "gt" / name, m)
    for name in ("a.png", "b_mask.png", "zzz.png"):
        write(tmp_path / "pred" / name, m)
    (tmp_path / "pred" / "notes.txt").write_text("ignored")
    pairs, extra_pred, extra_gt = match_files(tmp_path / "pred", tmp_path / "gt")
    assert [(s, p.name, g.name) for s, p, g in pairs] == [("a", "a.png", "a.png"), ("b", "b_mask.png", "b.png")]
    assert extra_pred == ["zzz.png"] and extra_gt == ["c.png"]
    result = evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False)
    assert result["unmatched"] == {"pred": ["zzz.png"], "gt": ["c.png"]}
    table = format_table(result)
    assert "unmatched predictions: zzz.png" in table and "unmatched ground truths: c.png" in table
    write(tmp_path / "pred" / "a_mask.png", m)  # now two files claim ground truth a.png
    with pytest.raises(InputError, match="both match ground truth a.png"):
        match_files(tmp_path / "pred", tmp_path / "gt")


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tmp_path / "gt" / "a.png", np.zeros((4, 4), bool))
    write(tmp_path / "pred" / "other.png", np.zeros((4, 4), bool))
    with pytest.raises(InputError, match="no image files"):
        evaluate_folders(tmp_path / "empty", tmp_path / "gt", progress=False)
    with pytest.raises(InputError, match="no image files"):
        evaluate_folders(tmp_path / "gt", tmp_path / "empty", progress=False)
    with pytest.raises(InputError, match="no prediction .* matches"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False)
    with pytest.raises(InputError, match="not a folder"):
        evaluate_folders(tmp_path / "missing", tmp_path / "gt", progress=False)


def test_size_mismatch_names_file_and_sizes(tmp_path):
    write(tmp_path / "gt" / "a.png", np.zeros((6, 8), bool))
    write(tmp_path / "pred" / "a.png", np.zeros((8, 6), bool))
    with pytest.raises(InputError, match=r"pred/a.png: size 6x8 does not match ground truth .*a.png \(8x6\)"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False)


def test_non_binary_ground_truth_raises(tmp_path):
    write(tmp_path / "gt" / "a.png", np.array([[0, 128], [255, 0]], np.uint8))
    write(tmp_path / "pred" / "a.png", np.zeros((2, 2), bool))
    with pytest.raises(InputError, match="gt/a.png: not a binary mask"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False)


def test_probability_maps_give_ods_ois(tmp_path, capsys):
    gt = np.zeros((4, 8), bool)
    gt[1:3, :4] = True
    prob = np.where(gt, 160, 20).astype(np.uint8)  # crack 0.627, background 0.078
    prob[0, 0] = 120  # a background pixel at 0.47: below 0.5, above 0.4
    write(tmp_path / "gt" / "a.png", gt)
    write(tmp_path / "pred" / "a.png", prob)
    write(tmp_path / "gt" / "b.png", np.zeros((4, 8), bool))
    write(tmp_path / "pred" / "b.png", np.zeros((4, 8), bool))  # saturated map of a crack-free image
    result = evaluate_folders(tmp_path / "pred", tmp_path / "gt", threshold=0.5)
    assert "evaluating" in capsys.readouterr().err  # progress bar on stderr
    assert [r["kind"] for r in result["images"]] == ["probability", "mask"]
    assert result["summary"]["iou"]["aggregate"] == 1.0  # 0.47 < 0.5: pixel (0, 0) is background
    # Best single threshold: above 0.47 (=120/255) and at most 0.627: first is 0.48.
    assert result["ods"] == {"f1": 1.0, "threshold": pytest.approx(0.48)}
    assert result["ois"] == {"f1": 1.0}
    assert result["images"][0]["best_f1"] == 1.0
    low = evaluate_folders(tmp_path / "pred", tmp_path / "gt", threshold=0.4, progress=False)
    assert low["summary"]["iou"]["aggregate"] == pytest.approx(8 / 9)
    assert "ODS F1 1.0000 at threshold 0.48" in format_table(result)


@pytest.mark.skipif(not (DATA / "masks").is_dir(), reason=f"real data not present at {DATA} (only in the project's workspace)")
def test_deepcrack537_masks_against_themselves(tmp_path):
    for p in sorted((DATA / "masks").glob("*.png"))[:10]:
        (tmp_path / p.name).symlink_to(p)
    result = evaluate_folders(tmp_path, tmp_path, progress=False)
    assert result["n_images"] == 10
    assert result["summary"]["iou"] == {"per_image_mean": 1.0, "aggregate": 1.0}
    assert result["summary"]["mba"]["per_image_mean"] == 1.0


def test_distractor_masks_add_false_alarm_scores(tmp_path):
    gt = np.zeros((20, 50), bool)
    gt[10, :] = True
    paint = np.zeros((20, 50), bool)
    paint[:, 20:30] = True                           # 200 px, 10 of them crack
    pred = gt.copy()
    pred[:, 20] = True                               # one paint edge: 19 false positives
    write(tmp_path / "gt" / "a.png", gt)
    write(tmp_path / "pred" / "a.png", pred)
    write(tmp_path / "dis" / "a.png", paint)
    write(tmp_path / "gt" / "b.png", np.zeros((20, 50), bool))
    write(tmp_path / "pred" / "b.png", np.zeros((20, 50), bool))
    write(tmp_path / "dis" / "b.png", np.zeros((20, 50), bool))
    result = evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False, distractors_dir=tmp_path / "dis")
    fa = result["false_alarm"]
    assert fa["distractor_share_predicted"] == pytest.approx(19 / 190)
    assert fa["fp_per_mp"] == pytest.approx(19 / 2000 * 1e6)
    assert result["images"][0]["distractor_fp_px"] == 19 and result["images"][1]["distractor_px"] == 0
    json.dumps(result)
    assert "0.1000 of distractor pixels predicted crack (19 of 190); 9500.0 false-positive px per megapixel" \
        in format_table(result)
    assert "false_alarm" not in evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False)
    (tmp_path / "dis" / "b.png").unlink()
    with pytest.raises(InputError, match=r"no distractor mask for 1 of 2 images \(e.g. b;"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False, distractors_dir=tmp_path / "dis")
    write(tmp_path / "dis" / "b.png", np.zeros((10, 50), bool))
    with pytest.raises(InputError, match=r"dis/b.png: size 50x10 does not match"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt", progress=False, distractors_dir=tmp_path / "dis")
