"""The GPU run (benchmarks/gpu_run.sh): its dry run on the CPU end to end, the data pack, the weight
shards and the report; and, on a machine with CUDA, segmenting under fp16 and bf16 autocast."""

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import line_mask, tiny, write_pair_dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_results  # noqa: E402
import make_data_pack  # noqa: E402

MiB = 2**20
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


# ---------------------------------------------------------------- the dry run, end to end

@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("GPU_RUN_ACTIVE")), reason="inside a GPU run already")
def test_dry_run_runs_every_stage_and_returns_what_the_device_tool_can(tmp_path):
    from crackrender.straight_lines import DEFAULT_MIN_LENGTH

    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_run.sh"), "--dry-run", "--out", str(out),
                           "--sizes", "64x48", "--models", "light,unet,paper"],
                          capture_output=True, text=True, env=env, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())

    models = ("pointrend-unet", "shipped", "cbprn-r50")
    expected = {"env", "tests", "pack", "synth", "train-light", "train-unet", "train-paper",
                *(f"time-{m}-64x48" for m in models)}
    assert {k: v["status"] for k, v in results["stages"].items()} == dict.fromkeys(expected, "ok")
    assert results["run"]["mode"] == "dry-run" and results["env"]["torch"] == torch.__version__
    for model in models:
        for precision in ("fp16", "bf16"):
            rec = results["timing"][model]["64x48"][precision]
            assert rec["fps"] > 0 and rec["median_s"] > 0 and isinstance(rec["refined_points"], int)
    # networks are timed without the CPU's straight-line filter; the shipped model also with it, as segment runs
    lines = {(m, v): r["straight_lines"] for m in models for v, r in results["timing"][m]["64x48"].items()}
    assert lines == {**{(m, p): 0 for m in models for p in ("fp16", "bf16")}, ("shipped", "fp16+filter"): DEFAULT_MIN_LENGTH}
    # a random-init CBPRN's heatmap sits near 0.5: every pixel is refined
    assert results["timing"]["cbprn-r50"]["64x48"]["fp16"]["refined_points"] == 64 * 48
    assert results["tests"]["failures"] == 0 and results["tests"]["errors"] == 0
    for key in ("light", "unet", "paper"):
        rec = results["train"][key]
        assert rec["global_step"] >= 1 and 0 <= rec["val"]["all"]["miou"] <= 1
        assert set(rec["val"]["per_dataset"]) >= {"cfd", "deepcrack537", "crack500"}
    # the light CBPRN and its UNet peer come back by default; the ResNet50 does not fit beside them
    assert results["train"]["light"]["weights"]["files"] and results["train"]["unet"]["weights"]["files"]
    assert results["train"]["unet"]["model"]["name"] == "unet"
    assert "files" not in results["train"]["paper"].get("weights", {})

    # what comes back fits the device tool: 8 files, 16 MiB each, 64 MiB in all, plain names
    files = sorted(p for p in out.iterdir())
    assert all(p.is_file() and re.fullmatch(r"[A-Za-z0-9._-]+", p.name) for p in files)
    assert len(files) <= 8 and sum(p.stat().st_size for p in files) <= 64 * MiB
    assert max(p.stat().st_size for p in files) <= 16 * MiB
    report = (out / "report.md").read_text()
    assert "| cbprn-r50 | 64x48 | bf16 |" in report and "| light |" in report
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = tar.getnames()
    assert "logs/train-light.log" in names and "logs/junit.xml" in names

    # the shards join into a model file that segments
    from crackrender.segment import Segmenter

    merged = gpu_results.merge_shards(out, "gpu-light", tmp_path / "light.safetensors")
    seg = Segmenter.from_checkpoint(merged, device="cpu")
    assert seg(np.full((40, 56, 3), 128, np.uint8)).mask.shape == (40, 56)


@pytest.mark.parametrize("args, message", [
    (["--train-minutes", "0"], "--train-minutes must be a positive number"),
    (["--budget-s", "ten"], "--budget-s must be whole seconds"),
    (["--frobnicate"], "unknown option --frobnicate"),
    (["--models", "light,resnet"], "--models: unknown model resnet"),
    (["--return", "light,paper"], "--return: paper is not trained"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_run.sh"), *args, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}")
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_run_is_never_overwritten(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_run.sh"), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "holds an earlier run" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"] and (tmp_path / "results.json").read_text() == "{}"


# ---------------------------------------------------------------- weight shards

def _model_file(tmp_path):
    from crackrender.checkpoint import save_model

    return save_model(tmp_path / "model.safetensors", tiny(), info={"epoch": 3})


def test_shards_join_back_into_the_same_float16_weights(tmp_path, monkeypatch):
    from crackrender.checkpoint import load_model, read_checkpoint

    monkeypatch.setattr(gpu_results, "SHARD_BYTES", 6 * MiB)  # the tiny CBPRN's ResNet18: 22 MiB in float16
    out = tmp_path / "out"
    out.mkdir()
    rec = gpu_results.write_shards(_model_file(tmp_path), out, "gpu-tiny")
    assert len(rec["files"]) >= 4 and rec["dtype"] == "float16"
    assert all(p.stat().st_size <= 6 * MiB + 64 * 1024 for p in out.iterdir())
    merged = gpu_results.merge_shards(out, "gpu-tiny", tmp_path / "merged.safetensors")
    config, state, info = read_checkpoint(merged)
    _, original, _ = read_checkpoint(tmp_path / "model.safetensors")
    assert config == tiny().config and info == {"epoch": 3} and set(state) == set(original)
    for key, value in original.items():
        expected = value.half() if value.is_floating_point() else value
        assert state[key].dtype == expected.dtype and torch.equal(state[key], expected), key
    load_model(merged)


def test_shards_that_do_not_fit_are_not_written(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(gpu_results, "RETURN_TOTAL_BYTES", gpu_results.TEXT_RESERVE + MiB)
    rec = gpu_results.write_shards(_model_file(tmp_path), out, "gpu-tiny")
    assert "not_returned" in rec and "does not fit" in rec["not_returned"]
    assert list(out.iterdir()) == []


def test_merge_names_a_missing_shard(tmp_path, monkeypatch):
    from crackrender.errors import InputError

    monkeypatch.setattr(gpu_results, "SHARD_BYTES", 6 * MiB)
    out = tmp_path / "out"
    out.mkdir()
    files = gpu_results.write_shards(_model_file(tmp_path), out, "gpu-tiny")["files"]
    (out / files[-1]).unlink()
    with pytest.raises(InputError, match=f"incomplete shards of gpu-tiny: {len(files)} of {len(files)} missing"):
        gpu_results.merge_shards(out, "gpu-tiny", tmp_path / "merged.safetensors")
    assert not (tmp_path / "merged.safetensors").exists()


# ---------------------------------------------------------------- report

def test_travel_counts_the_kept_checkpoints_and_says_to_leave_them_behind():
    rec = gpu_results.travel_bytes([])
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "checkpoints"], capture_output=True,
                             check=True).stdout.decode().split("\0")
    kept = sum((REPO / p).stat().st_size for p in tracked if p and (REPO / p).is_file())
    assert rec["checkpoints_mib"] == round(kept / MiB, 1) <= rec["tree_mib"]
    over = {"total_mib": 80.0, "checkpoints_mib": 30.0, "limit_mib": 64}
    assert "move its files out" in gpu_results.travel_hint(over)
    assert "make the pack smaller" in gpu_results.travel_hint({**over, "checkpoints_mib": 10.0})


def test_report_gives_ratios_to_pointrend_unet_at_the_same_size_and_precision():
    run = {"fps": 4.0, "median_s": 0.25, "peak_mib": 300.0, "refined_points": 10, "stages_s": {"total": 0.25}}
    base = {**run, "fps": 2.0, "peak_mib": 100.0}
    timing = {"pointrend-unet": {"64x48": {"fp16": base}}, "shipped": {"64x48": {"fp16": run, "bf16": {"error": "x"}}}}
    rows = [line for line in gpu_results.timing_table(timing) if line.startswith("| shipped")]
    assert rows[0].split("|")[6].strip() == "2.00" and rows[0].split("|")[8].strip() == "3.00"
    assert "error: x" in rows[1]


# ---------------------------------------------------------------- the data pack

def _source(tmp_path):
    # a wide 64x160 train image with a 3-px crack, and a val image of another size
    masks = {"a": line_mask(64, 160, thickness=3), "b": line_mask(64, 160, row=20), "v": line_mask(48, 72)}
    return write_pair_dataset(tmp_path / "src" / "set1", masks, {"train": ["a", "b"], "val": ["v"]})


def test_pack_shrinks_training_images_keeps_val_native_and_records_itself(tmp_path):
    from crackrender.data.datasets import CrackDataset
    from crackrender.io import read_image, read_mask

    _source(tmp_path)
    rec = make_data_pack.build_pack(tmp_path / "src", tmp_path / "pack", ["set1"], train_per_dataset=None,
                                    val_per_dataset=None, side=32, quality=80, val_quality=90, max_mb=1,
                                    progress=False)
    pack = tmp_path / "pack" / "set1"
    assert rec["datasets"]["set1"]["train"] == 2 and rec["datasets"]["set1"]["val"] == 1
    assert read_image(pack / "images" / "a.jpg").shape == (32, 80, 3)  # short side 32, aspect kept
    mask = read_mask(pack / "masks" / "a.png")
    assert mask.shape == (32, 80) and mask[:, 10:70].any(axis=0).all()  # the crack survives halving
    assert read_image(pack / "images" / "v.jpg").shape == (48, 72, 3)
    assert json.loads((tmp_path / "pack" / "PACK.json").read_text())["datasets"]["set1"]["val"] == 1
    assert len(CrackDataset(pack, "train")) == 2  # the project's loader reads it as a dataset


def test_pack_over_its_size_fails_and_leaves_the_earlier_pack(tmp_path):
    from crackrender.errors import CrackRenderError

    _source(tmp_path)
    kwargs = dict(train_per_dataset=None, val_per_dataset=None, side=None, quality=95, val_quality=95, progress=False)
    make_data_pack.build_pack(tmp_path / "src", tmp_path / "pack", ["set1"], max_mb=1, **kwargs)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "pack").rglob("*"))
    with pytest.raises(CrackRenderError, match="--max-mb"):
        make_data_pack.build_pack(tmp_path / "src", tmp_path / "pack", ["set1"], max_mb=0.001, **kwargs)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "pack").rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no half-built folder left


def test_pack_names_an_unknown_dataset(tmp_path):
    _source(tmp_path)
    assert make_data_pack.main(["--data", str(tmp_path / "src"), "--datasets", "nope", "--out",
                                str(tmp_path / "pack"), "--no-progress"]) == 2
    assert not (tmp_path / "pack").exists()


# ---------------------------------------------------------------- on a GPU (the run's tests stage)

@needs_cuda
@pytest.mark.parametrize("model", ["shipped", "cbprn-r50", "pointrend-unet"])
def test_cuda_autocast_segments_with_every_table3_model(model):
    import gpu_bench

    device = torch.device("cuda")
    net, threshold = gpu_bench.build_model(model, device)
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    for precision in ("fp16", "bf16"):
        result = gpu_bench.FixedPrecisionSegmenter(net, device, gpu_bench.PRECISIONS[precision], threshold)(image)
        assert result.mask.shape == (96, 128) and result.mask.dtype == bool
        assert np.isfinite(result.prob).all() and result.sidecar["dtype"] == {"fp16": "float16", "bf16": "bfloat16"}[precision]


@needs_cuda
def test_cuda_segment_agrees_with_cpu_float32():
    from crackrender.data.synthetic import render_crack_scene
    from crackrender.segment import Segmenter

    image = render_crack_scene(320, 240, seed=3).image
    reference = Segmenter.from_checkpoint(None, device="cpu")(image).mask
    for bf16 in (False, True):  # CUDA's default fp16 autocast, then bf16
        mask = Segmenter.from_checkpoint(None, device="cuda", bf16=bf16)(image).mask
        iou = (mask & reference).sum() / (mask | reference).sum()
        assert (mask != reference).mean() < 0.005 and iou > 0.9, f"bf16={bf16}: crack IoU {iou:.3f} against the CPU"
