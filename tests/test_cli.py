"""The command line as a user runs it: exit codes, one-line errors, files written."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import line_mask, shared_dataset, write_pair_dataset


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_data_check_real_deepcrack537_reports_537_pairs():
    root = shared_dataset("deepcrack537")
    res = run("data", "check", root, "-q")
    assert res.returncode == 0, res.stderr
    assert "537 valid pairs" in res.stdout and "all pairs valid" in res.stdout


def test_data_check_lists_every_bad_file(tmp_path):
    masks = {f"s{i}": line_mask() for i in range(5)}
    root = write_pair_dataset(tmp_path / "d", masks, {"train": ["s0", "s1", "s2", "s3"], "val": ["s4", "ghost"]},
                              image_size_override={"s1": (60, 96)})
    Image.fromarray(np.array([[0, 7], [255, 0]], np.uint8)).save(root / "masks" / "s2.png")  # soft mask
    (root / "images" / "s3.png").write_bytes((root / "images" / "s3.png").read_bytes()[:60])  # truncated
    (root / "images" / "orphan.png").write_bytes((root / "images" / "s0.png").read_bytes())  # no mask
    res = run("data", "check", root, "-q")
    assert res.returncode == 1
    out = res.stdout
    assert "2 valid pairs" in out
    for needle in ("s1.png: size 96x64 differs from image s1.png 96x60", "s2.png: not a binary mask",
                   "s3.png: unreadable or truncated", "orphan.png: no mask", "'ghost' has no image"):
        assert needle in out, needle


def test_data_check_bad_folder_is_one_line_error(tmp_path):
    res = run("data", "check", tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error:")


def test_output_path_under_a_file_is_one_line_error(tmp_path):
    (tmp_path / "afile").write_text("keep")
    res = run("data", "synth", tmp_path / "afile" / "syn", "--n", "2", "--width", "64", "--height", "64")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error:"), res.stderr
    assert "Not a directory" in res.stderr
    assert (tmp_path / "afile").read_text() == "keep"


def test_synth_then_evaluate_self_gives_perfect_scores(tmp_path):
    assert run("data", "synth", tmp_path / "syn", "--n", "4", "--width", "160", "--height", "120").returncode == 0
    assert run("data", "check", tmp_path / "syn", "-q").returncode == 0
    out = tmp_path / "eval.json"
    res = run("evaluate", tmp_path / "syn" / "masks", tmp_path / "syn" / "masks", "--json", out, "-q")
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text())
    for key in ("iou", "miou", "mba"):
        assert result["summary"][key]["per_image_mean"] == 1.0, key
    assert result["summary"]["iou"]["aggregate"] == 1.0


def test_evaluate_error_keeps_existing_json(tmp_path):
    gt = write_pair_dataset(tmp_path / "gt", {"a": line_mask()}) / "masks"
    pred = tmp_path / "pred"
    pred.mkdir()
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(pred / "a.png")  # wrong size
    out = tmp_path / "eval.json"
    out.write_text('{"kept": true}')
    res = run("evaluate", pred, gt, "--json", out, "-q")
    assert res.returncode == 2 and "a.png" in res.stderr and res.stderr.count("\n") == 1
    assert json.loads(out.read_text()) == {"kept": True}


def test_quantify_command_writes_reports_and_keeps_them_on_error(tmp_path):
    assert run("data", "synth", tmp_path / "syn", "--n", "2", "--width", "200", "--height", "150").returncode == 0
    out = tmp_path / "report"
    res = run("quantify", tmp_path / "syn" / "masks", "--image", tmp_path / "syn" / "images", "--gsd", "0.1",
              "--out", out, "-q")
    assert res.returncode == 0, res.stderr
    assert "syn_00000:" in res.stdout and " mm" in res.stdout
    for name in ("syn_00000.json", "syn_00000_cracks.csv", "syn_00000.geojson", "syn_00000_overlay.png",
                 "syn_00000_report.html", "summary.html", "summary.json"):
        assert (out / name).is_file(), name
    data = json.loads((out / "syn_00000.json").read_text())
    assert data["summary"]["count"] >= 1 and data["summary"]["units"] == "mm"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for bad in (["--gsd", "-1"], ["--focal-mm", "8"]):  # invalid scale: nothing may be touched
        res = run("quantify", tmp_path / "syn" / "masks", *bad, "--out", out, "-q")
        assert res.returncode == 2 and res.stderr.startswith("error:") and res.stderr.count("\n") == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    res = run("quantify", tmp_path / "syn" / "images", "--out", tmp_path / "r2", "-q")  # photos are not masks
    assert res.returncode == 2 and "not a binary mask" in res.stderr


# --- a bad model setting, in every command that builds or loads a model ---------------------------

def _bad_model_file(path, **bad):
    """A model file whose config holds a bad setting; the weights never get read."""
    import torch
    from safetensors.torch import save_file

    from crackrender.checkpoint import FORMAT

    config = {"name": "cbprn", "backbone": "resnet18", **bad}
    save_file({"unused": torch.zeros(1)}, str(path), metadata={"format": FORMAT, "config": json.dumps(config)})
    return path


def _assert_one_line_error(res, *needles):
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr[-2000:]
    for needle in needles:
        assert needle in res.stderr, res.stderr


def test_train_with_a_bad_model_setting_is_one_line(tmp_path):
    config = "configs/demo_synthetic.yaml"
    repo = Path(__file__).resolve().parents[1]
    for override, needle in (("model.alpha=0.9", "need 0 <= alpha < beta <= 1"),
                             ("model.edge_dims=8", "has no setting 'edge_dims'; did you mean edge_dim?"),
                             ("model.name=segnet", "unknown model 'segnet'")):
        res = run("train", repo / config, override, f"out={tmp_path / 'runs'}", cwd=tmp_path)
        _assert_one_line_error(res, needle)
    assert not (tmp_path / "runs").exists()


def test_segment_with_a_bad_model_setting_is_one_line(tmp_path):
    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(tmp_path / "img.png")
    res = run("segment", tmp_path / "img.png", "--alpha", "0.9", "--out", tmp_path / "o", "-q")
    _assert_one_line_error(res, "cbprn-light.safetensors", "need 0 <= alpha < beta <= 1, got alpha=0.9, beta=0.7")
    bad = _bad_model_file(tmp_path / "bad.safetensors", backbone="resnet7")
    res = run("segment", tmp_path / "img.png", "-c", bad, "--out", tmp_path / "o", "-q")
    _assert_one_line_error(res, "bad.safetensors", "unknown backbone 'resnet7'")


def test_demo_with_a_bad_model_setting_is_one_line(tmp_path):
    bad = _bad_model_file(tmp_path / "bad.safetensors", point_layers=0)
    res = run("demo", "--width", "64", "--height", "64", "-c", bad, "--out", tmp_path / "demo")
    _assert_one_line_error(res, "bad.safetensors", "point_layers must be a positive int, got 0")


def test_tables_with_a_bad_model_setting_is_one_line(tmp_path, monkeypatch, capsys):
    import shutil

    import pytest

    from crackrender import cli
    from crackrender.paper import configs

    bad = tmp_path / "paper"
    shutil.copytree(configs.CONFIG_DIR, bad)
    (bad / "conv-decoder.yaml").write_text("name: conv-decoder\nmodel: {name: conv_decoder, decoder_dim: 0}\n")
    monkeypatch.setattr(configs, "CONFIG_DIR", bad)
    data = tmp_path / "data"
    for name in ("cfd", "deepcrack537", "crack500"):
        (data / name).mkdir(parents=True)
    monkeypatch.setattr(sys, "argv", ["crackrender", "tables", "1", "--quick", "--rows", "conv", "--data-root",
                                      str(data), "--out", str(tmp_path / "o"), "--device", "cpu", "-q"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    # tables logs its progress on stderr; the error is its last line, alone
    log, _, error = capsys.readouterr().err.rpartition("error: ")
    assert exit_info.value.code == 2 and "Traceback" not in log and error.count("\n") == 1, log + error
    assert error.startswith("model 'conv_decoder': decoder_dim must be a positive int, got 0")
