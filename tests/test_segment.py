"""`crackrender segment`: whole images in, same-size masks, sidecars, overlays and measurements out."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TINY_CBPRN

from crackrender.checkpoint import save_model
from crackrender.data.synthetic import render_crack_scene
from crackrender.io import read_image, read_mask, write_image
from crackrender.models import create_model
from crackrender.inference import image_to_tensor
from crackrender.segment import ResultWriter, Segmenter, overlay

TINY = TINY_CBPRN


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    for i, (w, h) in enumerate([(97, 61), (128, 80)]):
        write_image(folder / f"p{i}.jpg", render_crack_scene(w, h, seed=i).image)
    return folder


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_python_api_matches_model_predict(model_file):
    seg = Segmenter.from_checkpoint(model_file, device="cpu")
    image = render_crack_scene(90, 70, seed=5).image
    result = seg(image)
    assert result.mask.shape == (70, 90) and result.mask.dtype == bool
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    direct = seg.model.predict(x)
    np.testing.assert_allclose(result.prob, direct.prob[0].numpy(), atol=1e-5)
    assert result.refined_points == direct.refined_points[0]
    assert {"backbone", "edge_branch", "heatmap", "point_refinement", "total"} <= set(result.timings)
    # the sidecar travels with the in-memory result; no file was read, so no image path
    side = result.sidecar
    assert side["image"] is None and (side["width"], side["height"]) == (90, 70)
    assert side["crack_pixels"] == int(result.mask.sum()) and side["refined_points"] == result.refined_points
    assert side["checkpoint"] == str(model_file) and side["dtype"] == "float32"
    lean = seg(image, source="scene.png", keep_prob=False)
    assert lean.prob is None and lean.sidecar["image"] == "scene.png"
    np.testing.assert_array_equal(lean.mask, result.mask)


def test_image_to_tensor_is_the_permuted_scaled_image_channels_last():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    x = image_to_tensor(image)
    assert x.shape == (1, 3, 5, 7) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(x[0, 2].numpy(), image[..., 2] / 255, rtol=1e-6)


def test_result_writer_writes_what_it_is_asked_and_checks_first(model_file, tmp_path):
    seg = Segmenter.from_checkpoint(model_file, device="cpu")
    image = render_crack_scene(64, 48, seed=2).image
    writer = ResultWriter(tmp_path / "w", overlay=True)
    side = writer.write("a", image, seg(image, source="a.jpg", keep_prob=False))
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["a.json", "a.png", "a_overlay.jpg"]
    assert json.loads((tmp_path / "w" / "a.json").read_text()) == side
    assert side["files"] == {"mask": "a.png", "overlay": "a_overlay.jpg"} and side["image"] == "a.jpg"
    # a probability map asked for but not kept is a caller's mistake, caught before writing it
    with pytest.raises(ValueError, match="keep_prob"):
        ResultWriter(tmp_path / "p", prob=True).write("a", image, seg(image, keep_prob=False))
    # a bad GSD or a file in the folder's place fails when the writer is made
    (tmp_path / "file").write_text("x")
    from crackrender.errors import InputError

    with pytest.raises(InputError, match="not a folder"):
        ResultWriter(tmp_path / "file")
    with pytest.raises(InputError, match="GSD"):
        ResultWriter(tmp_path / "g", quantify=True, gsd=0)
    assert not (tmp_path / "g").exists()


def test_demo_scores_the_mask_it_writes(model_file, tmp_path):
    from crackrender.demo import run_demo
    from crackrender.metrics import confusion, scores

    summary = run_demo(tmp_path / "d", width=96, height=80, seed=1, checkpoint=model_file, device="cpu")
    pred, truth = read_mask(tmp_path / "d" / "scene.png"), read_mask(tmp_path / "d" / "truth.png")
    assert summary["accuracy"]["iou"] == round(scores(confusion(pred, truth))["iou"], 4)
    assert summary["segment"]["crack_pixels"] == int(pred.sum())
    side = json.loads((tmp_path / "d" / "scene.json").read_text())
    assert side["image"].endswith("scene.png") and side["quantify"] == summary["measured"]


def test_segment_folder_writes_masks_sidecars_and_pictures(model_file, photos, tmp_path):
    out = tmp_path / "out"
    r = _cli("segment", photos, "--checkpoint", model_file, "--out", out, "--prob", "--overlay", "--quiet")
    assert r.returncode == 0, r.stderr
    for stem in ("p0", "p1"):
        image = read_image(photos / f"{stem}.jpg")
        mask = read_mask(out / f"{stem}.png")
        assert mask.shape == image.shape[:2]  # same size as the input
        side = json.loads((out / f"{stem}.json").read_text())
        assert (side["width"], side["height"]) == (image.shape[1], image.shape[0])
        assert side["crack_pixels"] == int(mask.sum())
        assert side["refined_points"] >= 0 and side["alpha"] == 0.3 and side["beta"] == 0.7
        assert side["timings_s"]["total"] > 0 and side["model"]["backbone"] == "resnet18"
        assert read_image(out / f"{stem}_overlay.jpg").shape == image.shape
        prob = read_image(out / f"{stem}_prob.png")
        assert prob.shape[:2] == image.shape[:2]
        # the probability map and the mask agree (8-bit rounding aside)
        agree = (prob[..., 0] > 128) == mask
        assert agree.mean() > 0.99


def test_alpha_beta_change_the_refined_count(model_file, photos, tmp_path):
    wide = _cli("segment", photos / "p0.jpg", "-c", model_file, "--out", tmp_path / "a", "--alpha", "0", "--beta", "1")
    assert wide.returncode == 0, wide.stderr
    side = json.loads((tmp_path / "a" / "p0.json").read_text())
    assert side["refined_points"] == 97 * 61  # every pixel re-predicted


def test_quantify_flag_measures_segmented_cracks(model_file, photos, tmp_path):
    out = tmp_path / "q"
    r = _cli("segment", photos, "-c", model_file, "--out", out, "--quantify", "--gsd", "0.2", "-q")
    assert r.returncode == 0, r.stderr
    side = json.loads((out / "p0.json").read_text())
    assert side["quantify"]["units"] == "mm"
    assert (out / "quantify" / "p0_report.html").is_file() and (out / "quantify" / "summary.json").is_file()


def test_bad_inputs_fail_clearly_and_keep_output(model_file, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "p0.png"
    keep.write_bytes(b"earlier result")
    # a model file that is not one: one line, exit 2, nothing written or destroyed
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a model")
    r = _cli("segment", photos, "-c", bogus, "--out", out)
    assert r.returncode == 2 and r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert keep.read_bytes() == b"earlier result"
    # a model of another architecture
    other = tmp_path / "other.safetensors"
    save_model(other, create_model("cbprn", **{**TINY, "feature_dim": 24}))
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(other), "pt") as f:
        meta = f.metadata()
    meta["config"] = meta["config"].replace('"feature_dim": 24', '"feature_dim": 32')
    save_file(load_file(str(other)), str(other), metadata=meta)
    r = _cli("segment", photos, "-c", other, "--out", out)
    assert r.returncode == 2 and "does not match" in r.stderr
    # an unreadable image among good ones: the good ones are still written, exit 2
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    r = _cli("segment", photos, "-c", model_file, "--out", tmp_path / "partial", "-q")
    assert r.returncode == 2 and "1 of 3 images could not be read" in r.stderr
    assert (tmp_path / "partial" / "p0.png").is_file() and (tmp_path / "partial" / "p1.png").is_file()
    # a bad GSD is refused before any image is segmented
    r = _cli("segment", photos, "-c", model_file, "--out", tmp_path / "gsd", "--quantify", "--gsd", "-1")
    assert r.returncode == 2 and "GSD" in r.stderr and not (tmp_path / "gsd").exists()
    # alpha above beta
    r = _cli("segment", photos / "p0.jpg", "-c", model_file, "--out", out, "--alpha", "0.8", "--beta", "0.2")
    assert r.returncode == 2 and "alpha" in r.stderr and r.stderr.count("\n") == 1
    # empty folder, missing input
    (tmp_path / "empty").mkdir()
    r = _cli("segment", tmp_path / "empty", "-c", model_file, "--out", out)
    assert r.returncode == 2 and "no images" in r.stderr
    r = _cli("segment", tmp_path / "nope.jpg", "-c", model_file, "--out", out)
    assert r.returncode == 2 and "no such file" in r.stderr


def test_split_segments_only_the_listed_images(model_file, tmp_path):
    from conftest import line_mask, write_pair_dataset

    root = write_pair_dataset(tmp_path / "ds", {f"m{i}": line_mask(row=20 + 5 * i) for i in range(3)},
                              splits={"test": ["m0", "m2"], "val": ["m1"]})
    r = _cli("segment", root, "--split", "test", "-c", model_file, "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["m0.png", "m2.png"]
    r = _cli("segment", root, "--split", "train", "-c", model_file, "--out", tmp_path / "out")
    assert r.returncode == 2 and "no split file train.txt" in r.stderr and r.stderr.count("\n") == 1
    (root / "val.txt").write_text("m1\nghost\n")
    r = _cli("segment", root, "--split", "val", "-c", model_file, "--out", tmp_path / "out")
    assert r.returncode == 2 and "'ghost'" in r.stderr


def test_overlay_tints_only_crack_pixels():
    image = np.full((4, 5, 3), 100, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    out = overlay(image, mask)
    assert (out[~mask] == 100).all() and out[1, 2, 0] > 100 and out[1, 2, 1] < 100
