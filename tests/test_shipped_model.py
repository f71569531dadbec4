"""The model shipped inside the package (MODEL.md): loads offline, segments synthetic cracks well,
drives `segment` with no model argument and `demo`, and reproduces its model card's numbers."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_dataset

from crackrender.checkpoint import read_checkpoint
from crackrender.data.synthetic import render_crack_scene
from crackrender.io import read_mask, write_image
from crackrender.metrics import confusion, scores
from crackrender.segment import Segmenter
from crackrender.weights import default_model_path

ROOT = Path(__file__).resolve().parents[1]
# Measured with the shipped weights (v5) on these three scenes: aggregate crack IoU 0.851 (0.938, 0.911,
# 0.729; v4 0.850, v3 0.845, v2 0.844). The floor leaves room for CPU/BLAS differences, not for a worse model.
SYNTHETIC_IOU_FLOOR = 0.78


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter.from_checkpoint(device="cpu")


def test_shipped_file_is_small_half_precision_safetensors():
    path = default_model_path()
    assert path.suffix == ".safetensors" and path.stat().st_size < 30e6
    config, state, info = read_checkpoint(path)
    floats = [t for t in state.values() if t.is_floating_point()]
    assert floats and all(t.dtype.itemsize == 2 for t in floats)
    assert config["name"] == "cbprn" and "deepcrack537_test" in info


def test_shipped_model_segments_synthetic_cracks(segmenter):
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for seed, surface in ((0, "concrete"), (1, "asphalt"), (2, "concrete")):
        scene = render_crack_scene(768, 576, seed=seed, surface=surface)
        result = segmenter(scene.image)
        assert result.mask.shape == scene.mask.shape
        for k, v in confusion(result.mask, scene.mask).items():
            counts[k] += v
    assert scores(counts)["iou"] >= SYNTHETIC_IOU_FLOOR


def test_shipped_model_with_its_calibrated_test_time_scales():
    # MODEL.md, "Test-time views": the scales recommended there come with their own threshold in the
    # file, chosen on the val splits; on these scenes they measured crack IoU 0.829 (0.907, 0.905, 0.696)
    scales = (0.75, 1.0, 1.25)
    info = read_checkpoint(default_model_path())[2]
    seg = Segmenter.from_checkpoint(device="cpu", scales=scales)
    assert seg.threshold == info["view_thresholds"]["flips=1 scales=0.75,1,1.25"] != info["threshold"]
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for seed, surface in ((0, "concrete"), (1, "asphalt"), (2, "concrete")):
        scene = render_crack_scene(768, 576, seed=seed, surface=surface)
        result = seg(scene.image)
        assert result.sidecar["scales"] == list(scales)
        for k, v in confusion(result.mask, scene.mask).items():
            counts[k] += v
    assert scores(counts)["iou"] >= SYNTHETIC_IOU_FLOOR


def test_segment_without_checkpoint_uses_shipped_model(tmp_path):
    scene = render_crack_scene(320, 240, seed=3)
    write_image(tmp_path / "photo.jpg", scene.image)
    r = _cli("segment", "photo.jpg", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    mask = read_mask(tmp_path / "crackrender-out" / "photo.png")
    assert mask.shape == scene.mask.shape and mask.any()
    sidecar = json.loads((tmp_path / "crackrender-out" / "photo.json").read_text())
    assert Path(sidecar["checkpoint"]) == default_model_path()


def test_demo_writes_pictures_report_and_scores(tmp_path):
    out = tmp_path / "demo"
    r = _cli("demo", "--out", out, "--width", 640, "--height", 480, "--seed", 4)
    assert r.returncode == 0, r.stderr
    assert "crack IoU" in r.stdout
    summary = json.loads((out / "demo.json").read_text())
    for name in summary["files"].values():
        assert (out / name).is_file(), name
    assert summary["accuracy"]["iou"] >= 0.70  # measured 0.829 on this scene (v5 and v4; v3 0.827, v2 0.816, v1 0.745)
    assert summary["measured"]["units"] == "mm" and summary["measured"]["count"] >= 1
    errors = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(out / "scene_errors.png"))
    assert errors.shape == (480, 640, 3) and (errors == (0, 200, 0)).all(axis=2).any()


def test_demo_refuses_a_file_as_output_folder(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    r = _cli("demo", "--out", target, "--width", 128, "--height", 128)
    assert r.returncode == 2 and "not a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert target.read_text() == "keep me"
    r = _cli("demo", "--out", tmp_path / "d", "--surface", "wood", "--width", 128, "--height", 128)
    assert r.returncode == 2 and "unknown surface 'wood'" in r.stderr and r.stderr.count("error:") == 1
    assert "Traceback" not in r.stderr and not (tmp_path / "d").exists()


def test_missing_shipped_model_is_a_one_line_error(monkeypatch):
    import crackrender.weights as weights
    from crackrender.errors import CrackRenderError

    monkeypatch.setattr(weights, "DEFAULT_MODEL_NAME", "absent.safetensors")
    with pytest.raises(CrackRenderError, match="--checkpoint"):
        weights.default_model_path()


def test_benchmarks_name_the_shipped_model_shipped(segmenter):
    from crackrender.weights import model_label, model_path

    # 'shipped' (what the benchmarks take) loads the same file as no model argument
    assert model_path("shipped") is None and model_path(None) is None
    assert Segmenter.from_checkpoint(model_path("shipped")).source == segmenter.source
    assert model_path("runs/shipped") == Path("runs/shipped")  # a file of that name is a file
    assert model_label("shipped") == "shipped" and model_label(Path("runs/v3.safetensors")) == "v3.safetensors"


@pytest.mark.slow
def test_evaluate_reproduces_model_card_deepcrack537_test(tmp_path):
    """`segment` + `evaluate` on the official test split give the model card's numbers (0.5 pt)."""
    root = shared_dataset("deepcrack537")
    pred = tmp_path / "pred"
    r = _cli("segment", root, "--split", "test", "--out", pred, "-q")
    assert r.returncode == 0, r.stderr
    r = _cli("evaluate", pred, root / "masks", "--json", tmp_path / "eval.json")
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["n_images"] == len((root / "test.txt").read_text().split())
    summary = result["summary"]
    card = read_checkpoint(default_model_path())[2]["deepcrack537_test"]
    model_card = (ROOT / "MODEL.md").read_text()
    # the card's convention: dataset-aggregate mIoU, IoU and Dice; mBA as CascadePSP's per-image mean
    got = {k: summary[k]["aggregate"] for k in ("miou", "iou", "f1")} | {"mba": summary["mba"]["per_image_mean"]}
    for key in ("miou", "iou", "f1", "mba"):
        assert abs(got[key] - card[key]) <= 0.005, (key, got[key], card[key])
        # MODEL.md prints the same numbers the file carries
        assert re.search(rf"\b{card[key] * 100:.1f}\b", model_card), key
