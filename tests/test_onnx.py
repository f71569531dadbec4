"""ONNX export and the onnxruntime backend (issue 13): the exported graphs, parity with PyTorch,
the Segmenter and command line on top, INT8, and the one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import images, shared_dataset, tiny

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from crackrender.checkpoint import save_model  # noqa: E402
from crackrender.deploy import OnnxCBPRN, export_onnx, onnx_segmenter  # noqa: E402
from crackrender.deploy.files import point_head_path  # noqa: E402
from crackrender.errors import CrackRenderError, InputError  # noqa: E402
from crackrender.segment import Segmenter  # noqa: E402

# DeepCrack537 test images the fast parity test uses: every 8th of the 237, fixed
DEEPCRACK_SUBSET = slice(0, None, 8)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    """A tiny CBPRN with point_fine (so the stem and image maps are exported too), saved with a
    threshold of 0.55, and its export."""
    folder = tmp_path_factory.mktemp("tiny")
    model = tiny(point_fine=True).eval()
    torch.nn.init.normal_(model.point_head.extra.weight, std=0.05)  # zero at init: make it count
    source = save_model(folder / "tiny.safetensors", model, info={"threshold": 0.55})
    network, points = export_onnx(source, folder / "tiny.onnx", progress=False)
    return {"model": model, "source": source, "network": network, "points": points, "folder": folder}


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory):
    return export_onnx(None, tmp_path_factory.mktemp("shipped") / "cbprn.onnx", progress=False)[0]


def test_export_writes_a_checked_self_describing_pair_with_dynamic_sizes(tiny_files):
    import onnx

    assert tiny_files["points"] == point_head_path(tiny_files["network"])
    metas = []
    for path in (tiny_files["network"], tiny_files["points"]):
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        assert {o.domain: o.version for o in proto.opset_import}[""] == 18
        metas.append({p.key: p.value for p in proto.metadata_props})
    net, head = metas
    assert net["crackrender.graph"] == "network" and head["crackrender.graph"] == "point_head"
    assert net["crackrender.pair"] == head["crackrender.pair"]
    assert json.loads(net["crackrender.config"]) == tiny_files["model"].config
    assert float(net["crackrender.threshold"]) == 0.55 and net["crackrender.precision"] == "fp32"
    image = onnx.load(str(tiny_files["network"])).graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in image] == [True, False, True, True]  # batch, 3, height, width
    assert not list(tiny_files["folder"].glob(".*.tmp"))


@pytest.mark.parametrize("size", [(70, 90), (97, 41)])
def test_onnx_predict_matches_pytorch(tiny_files, size):
    x = images(1, *size, seed=3)
    ref = tiny_files["model"].predict(x)
    onnx_model = OnnxCBPRN(tiny_files["network"])
    got = onnx_model.predict(x)
    assert got.refined_points == ref.refined_points and ref.refined_points[0] > 0
    assert torch.allclose(got.prob, ref.prob, atol=1e-4)
    assert iou(got.mask, ref.mask) >= 0.999
    # the band can be moved at run time, as with the PyTorch model
    assert onnx_model.predict(x, alpha=0.45, beta=0.55).refined_points == \
        tiny_files["model"].predict(x, alpha=0.45, beta=0.55).refined_points


def test_onnx_segmenter_tiles_and_thresholds_like_pytorch(tiny_files):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    tiling = dict(tile=96, overlap=32)
    ref = Segmenter(tiny_files["model"], torch.device("cpu"), threshold=0.55, **tiling)(image)
    seg = onnx_segmenter(tiny_files["network"], **tiling)
    got = seg(image)
    assert seg.threshold == 0.55  # the exported model file's own
    assert got.sidecar["tiles"] == ref.sidecar["tiles"] > 1
    assert got.refined_points == ref.refined_points
    assert iou(got.mask, ref.mask) >= 0.999 and np.abs(got.prob - ref.prob).max() < 1e-3
    assert got.sidecar["checkpoint"] == str(tiny_files["network"]) and got.sidecar["alpha"] == 0.3


def test_onnx_segmenter_averages_test_time_views_like_pytorch(tiny_files):
    image = np.random.default_rng(1).integers(0, 256, (72, 120, 3), dtype=np.uint8)  # transposed views: 120x72
    views = dict(flips=8, scales=(1.0, 1.5))
    ref = Segmenter(tiny_files["model"], torch.device("cpu"), threshold=0.55, **views)(image)
    got = onnx_segmenter(tiny_files["network"], **views)(image)
    assert got.sidecar["flips"] == 8 and got.refined_points == ref.refined_points
    assert iou(got.mask, ref.mask) >= 0.999 and np.abs(got.prob - ref.prob).max() < 1e-3


def test_segment_cli_runs_the_onnxruntime_backend(tiny_files, tmp_path):
    from crackrender.io import read_mask, write_image

    rng = np.random.default_rng(1)
    write_image(tmp_path / "a.png", rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
    res = run_cli("segment", tmp_path / "a.png", "--out", tmp_path / "out", "-c", tiny_files["network"],
                  "--backend", "onnxruntime", "-q")
    assert res.returncode == 0, res.stderr
    sidecar = json.loads((tmp_path / "out" / "a.json").read_text())
    assert sidecar["checkpoint"] == str(tiny_files["network"]) and sidecar["threshold"] == 0.55
    assert read_mask(tmp_path / "out" / "a.png").shape == (64, 80)
    res = run_cli("segment", tmp_path / "a.png", "--out", tmp_path / "out2", "-c", tiny_files["source"],
                  "--backend", "onnxruntime", "-q")
    assert res.returncode == 2 and "needs an exported .onnx model" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out2" / "a.png").exists()


def test_export_cli_refuses_what_it_cannot_export_and_leaves_nothing(tmp_path):
    from crackrender.models import create_model

    unet = save_model(tmp_path / "unet.safetensors", create_model("unet"))
    for model, needle in ((tmp_path / "missing.safetensors", "not found"), (unet, "supports CBPRN only")):
        res = run_cli("export", model, tmp_path / "out.onnx", "-q")
        assert res.returncode == 2 and needle in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    res = run_cli("export", tmp_path / "out.txt", "-q")
    assert res.returncode == 2 and "must end in .onnx" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet.safetensors"]


def test_backend_refuses_a_mismatched_or_swapped_pair(tiny_files, tmp_path):
    import shutil

    with pytest.raises(CrackRenderError, match="not the .points.onnx|expected 'network'"):
        OnnxCBPRN(tiny_files["points"])
    # a network whose point head comes from another export (another pair token)
    import onnx

    from crackrender.deploy.files import set_metadata

    shutil.copy(tiny_files["network"], tmp_path / "m.onnx")
    head = onnx.load(str(tiny_files["points"]))
    set_metadata(head, {"crackrender.pair": "0123456789abcdef"})
    onnx.save(head, str(tmp_path / "m.points.onnx"))
    with pytest.raises(CrackRenderError, match="another export"):
        OnnxCBPRN(tmp_path / "m.onnx")
    (tmp_path / "m.points.onnx").unlink()
    with pytest.raises(CrackRenderError, match="not found"):
        OnnxCBPRN(tmp_path / "m.onnx")


def test_min_side_is_enforced(tiny_files):
    model = OnnxCBPRN(tiny_files["network"])
    model.min_side = 33  # the shipped model's: window 8 at stride 4
    with pytest.raises(InputError, match="at least 33 px"):
        model.predict(images(1, 32, 64))


def test_int8_export_runs_close_to_float(tiny_files, tmp_path):
    import onnx

    from crackrender.data.synthetic import write_synthetic_dataset

    root = write_synthetic_dataset(tmp_path / "calib", 4, size=(96, 64), seed=0)
    network, _ = export_onnx(tiny_files["source"], tmp_path / "q.onnx", int8=True, calibration=[root],
                             calibration_images=4, progress=False)
    meta = {p.key: p.value for p in onnx.load(str(network)).metadata_props}
    assert meta["crackrender.precision"] == "int8"
    ops = {n.op_type for n in onnx.load(str(network)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x = images(1, 64, 96, seed=5)
    fp32, int8 = OnnxCBPRN(tiny_files["network"]).predict(x), OnnxCBPRN(network).predict(x)
    assert float((int8.prob - fp32.prob).abs().mean()) < 0.05


def test_int8_needs_calibration_images(tiny_files, tmp_path):
    with pytest.raises(CrackRenderError, match="calibration"):
        export_onnx(tiny_files["source"], tmp_path / "q.onnx", int8=True)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_shipped_model_parity_on_a_2048x1536_scene(shipped_onnx):
    from crackrender.data.synthetic import render_crack_scene

    scene = render_crack_scene(2048, 1536, seed=0)
    ref = Segmenter.from_checkpoint(None, device="cpu")(scene.image, keep_prob=False)
    got = onnx_segmenter(shipped_onnx)(scene.image, keep_prob=False)
    assert ref.mask.sum() > 1000  # the scene has cracks the model finds
    assert iou(got.mask, ref.mask) >= 0.999


@pytest.mark.slow
def test_shipped_model_deepcrack537_metrics_within_a_tenth_of_a_point(shipped_onnx):
    from crackrender.io import read_image, read_mask
    from crackrender.metrics import MetricAccumulator

    root = shared_dataset("deepcrack537")
    stems = (root / "test.txt").read_text().split()[DEEPCRACK_SUBSET]
    segs = {"torch": Segmenter.from_checkpoint(None, device="cpu"), "onnx": onnx_segmenter(shipped_onnx)}
    accs = {k: MetricAccumulator() for k in segs}
    for stem in stems:
        image, gt = read_image(root / "images" / f"{stem}.jpg"), read_mask(root / "masks" / f"{stem}.png")
        for name, seg in segs.items():
            accs[name].add(stem, seg(image, keep_prob=False).mask, gt)
    ref, got = (accs[k].summary()["metrics"] for k in segs)
    for metric in ("iou", "miou", "f1", "mba"):
        for kind in ("aggregate", "per_image_mean"):
            assert abs(got[metric][kind] - ref[metric][kind]) <= 0.001, (metric, kind)
