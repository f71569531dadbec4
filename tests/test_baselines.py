"""The paper's baselines: PointRend guided by five coarse networks (Table 3), CBPRN's encoder with a
conventional decoder (Table 1) and CBPRN's ablation switches. PointRend's point selection and the
padding to a multiple of 32: tests/test_pointrend_ops.py."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_CBPRN, images, line_mask
from test_models import no_network, torch_home  # noqa: F401  (fixtures: offline torch hub)

from crackrender.checkpoint import load_state
from crackrender.errors import CrackRenderError
from crackrender.models import create_model
from crackrender.models.coarse_nets import COARSE_KINDS, PooledBatchNorm
from crackrender.ops import SUBDIVISION_POINTS, label_boundary_band
from crackrender.train.losses import segmentation_losses

TINY_POINTREND = dict(backbone="resnet18", point_hidden=32, train_points=64, subdivision_points=256)
TINY_DECODER = {k: v for k, v in TINY_CBPRN.items() if k not in ("heatmap_dim", "point_hidden")}
STRIDES = {"fcn": 32, "unet": 1, "deeplabv3plus": 4, "pspnet": 8, "refinenet": 4}


def pointrend(coarse: str, **overrides):
    torch.manual_seed(0)
    return create_model("pointrend", coarse=coarse, **{**TINY_POINTREND, **overrides})


def masks_for(b: int, h: int, w: int) -> torch.Tensor:
    return torch.stack([torch.from_numpy(line_mask(h, w, row=h // 2 + i, thickness=7)) for i in range(b)])[:, None].float()


def assert_grads(module, name: str) -> None:
    grads = [p.grad for p in module.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), name
    assert sum(float(g.abs().sum()) for g in grads) > 0, name


# --- registry -----------------------------------------------------------------------------------

def test_pointrend_defaults():
    c = create_model("pointrend", backbone="resnet18").config
    assert c == dict(name="pointrend", coarse="unet", backbone="resnet18", pretrained=False, point_hidden=256,
                     point_layers=3, train_points=2048, oversample=3.0, importance=0.75,
                     subdivision_points=SUBDIVISION_POINTS, coarse_long_edge=None, pad_multiple=32)


# --- PointRend with each coarse network ---------------------------------------------------------

@pytest.mark.parametrize("kind", COARSE_KINDS)
def test_pointrend_trains_and_predicts(kind):
    m = pointrend(kind).train()
    x, masks = images(2, 64, 96), masks_for(2, 64, 96)
    out = m.training_outputs(x, masks, generator=torch.Generator().manual_seed(0))
    s = STRIDES[kind]
    assert out["coarse"].shape == (2, 1, 64 // s, 96 // s)
    assert out["point_logits"].shape == (2, 64) and out["point_labels"].shape == (2, 64)
    assert set(out["point_labels"].unique().tolist()) <= {0.0, 1.0}
    terms = segmentation_losses(out, masks, {})
    assert all(torch.isfinite(v) for v in terms.values()) and "points" in terms
    terms["loss"].backward()
    assert_grads(m.point_head, "point_head")
    assert_grads(m.coarse_net, "coarse_net")

    m.eval()
    x = images(1, 67, 93, seed=3)
    timings = {}
    pred = m.predict(x, timings=timings)
    assert pred.mask.shape == (1, 67, 93) and pred.mask.dtype == torch.bool
    assert torch.equal(pred.mask, pred.prob > 0.5) and set(timings) == {"coarse", "point_refinement"}
    coarse = m.predict(x, refine=False)
    assert coarse.refined_points == [0] and coarse.mask.shape == (1, 67, 93)
    if s == 1:  # UNet's coarse mask is already full size: nothing to subdivide
        assert pred.refined_points == [0]
        torch.testing.assert_close(pred.prob, coarse.prob, rtol=0, atol=1e-6)
    else:
        assert pred.refined_points[0] > 0 and not torch.equal(pred.prob, coarse.prob)


def test_pointrend_point_labels_are_the_mask_at_the_points(monkeypatch):
    m = pointrend("pspnet")
    seen = []
    original = m.point_logits
    monkeypatch.setattr(m, "point_logits", lambda out, coords: seen.append(coords) or original(out, coords))
    masks = masks_for(1, 67, 93)  # odd size: padded inside, labels still from the unpadded mask
    with torch.no_grad():
        out = m.training_outputs(images(1, 67, 93), masks, generator=torch.Generator().manual_seed(2))
    (coords,) = seen
    rows = (coords[0, :, 1] * 67).long().clamp(max=66)
    cols = (coords[0, :, 0] * 93).long().clamp(max=92)
    assert torch.equal(out["point_labels"][0], masks[0, 0, rows, cols])
    assert out["coarse"].shape == (1, 1, math.ceil(67 / 8), math.ceil(93 / 8))


def test_deeplab_trains_on_a_batch_of_one():
    m = pointrend("deeplabv3plus").train()
    pooled = [mod for mod in m.modules() if isinstance(mod, PooledBatchNorm)]
    assert len(pooled) == 1
    before = pooled[0].running_mean.clone()
    out = m.training_outputs(images(1, 64, 64), masks_for(1, 64, 64), generator=torch.Generator().manual_seed(0))
    segmentation_losses(out, masks_for(1, 64, 64), {})["loss"].backward()
    assert torch.equal(pooled[0].running_mean, before)  # no batch statistics from one value
    m.training_outputs(images(2, 64, 64), masks_for(2, 64, 64))
    assert not torch.equal(pooled[0].running_mean, before)  # ordinary BatchNorm otherwise


def test_coarse_long_edge(monkeypatch):
    m = pointrend("pspnet", coarse_long_edge=64).eval()
    inputs = []
    m.coarse_net.register_forward_pre_hook(lambda mod, args: inputs.append(tuple(args[0].shape[-2:])))
    pred = m.predict(images(1, 70, 150))
    assert inputs == [(32, 64)]  # 70x150 -> 30x64, padded to 32x64
    assert pred.mask.shape == (1, 70, 150)
    # 4x8 coarse cells -> 8x16 (all 128) -> 16x32 -> 32x64 -> 64x128 -> 70x150 (256 each)
    assert pred.refined_points == [128 + 4 * 256]
    m.predict(images(1, 40, 60))
    assert inputs[-1] == (64, 64)  # never scaled up


@pytest.mark.parametrize("kind", ["fcn", "unet"])
def test_pretrained_offline_fails(kind, torch_home, no_network, monkeypatch):  # noqa: F811
    import segmentation_models_pytorch.encoders as smp_encoders

    def offline(*args, **kwargs):
        raise OSError("offline")

    monkeypatch.setattr(smp_encoders, "hf_hub_download", offline)
    with pytest.raises(CrackRenderError, match="pretrained: false") as info:
        pointrend(kind, pretrained=True)
    assert "offline" in str(info.value) and "\n" not in str(info.value)


# --- CBPRN's conventional-decoder baseline and ablation switches --------------------------------

def test_conv_decoder():
    torch.manual_seed(0)
    m = create_model("conv_decoder", **TINY_DECODER).train()
    x, masks = images(2, 67, 93), masks_for(2, 67, 93)
    out = m.training_outputs(x, masks)
    assert set(out) == {"coarse"} and out["coarse"].shape == (2, 1, 67, 93)
    terms = segmentation_losses(out, masks, {})
    assert set(terms) == {"heatmap_bce", "heatmap_dice", "loss"} and torch.isfinite(terms["loss"])
    terms["loss"].backward()
    for part in ("backbone", "edge_branch", "fusion", "decoder"):
        assert_grads(getattr(m, part), part)
    pred = m.eval().predict(images(1, 67, 93))
    assert pred.mask.shape == (1, 67, 93) and pred.mask.dtype == torch.bool and pred.refined_points == [0]
    # CBPRN's encoder, under CBPRN's state-dict keys; no heatmap or point head
    cbprn_keys = {k for k in create_model("cbprn", **TINY_CBPRN).state_dict() if not k.startswith(("heatmap", "point"))}
    assert {k for k in m.state_dict() if not k.startswith("decoder.")} == cbprn_keys


def cbprn(**overrides):
    torch.manual_seed(0)
    return create_model("cbprn", **{**TINY_CBPRN, **overrides})


def test_cbprn_uniform_sampling():
    m = cbprn(sampling="uniform")
    masks = masks_for(2, 40, 60)
    with torch.no_grad():
        out = m.training_outputs(images(2, 40, 60), masks, generator=torch.Generator().manual_seed(0))
    assert out["point_logits"].shape == (2, 120) and "point_strata" not in out
    # uniform: the crack share of the labels follows the crack's area (7 of 40 rows), not 0.3 + band
    share = float(out["point_labels"].mean())
    assert abs(share - float(masks.mean())) < 0.1
    assert torch.isfinite(segmentation_losses(out, masks, {})["loss"])


def test_cbprn_band_k0_samples_the_edge(monkeypatch):
    m = cbprn(band_k=0)
    seen = []
    original = m.point_logits
    monkeypatch.setattr(m, "point_logits", lambda out, coords: seen.append(coords) or original(out, coords))
    masks = masks_for(1, 40, 60)
    with torch.no_grad():
        out = m.training_outputs(images(1, 40, 60), masks, generator=torch.Generator().manual_seed(0))
    (coords,) = seen
    band = coords[0, out["point_strata"][0] == 1]
    rows, cols = (band[:, 1] * 40 - 0.5).round().long(), (band[:, 0] * 60 - 0.5).round().long()
    assert len(rows) > 0 and label_boundary_band(masks, 0)[0, 0, rows, cols].all()


def test_cbprn_coarse_mask_guidance_and_refine_off():
    m = cbprn(guidance="coarse_mask", subdivision_points=100).eval()
    x = images(2, 67, 93)
    pred = m.predict(x)
    # stride-4 heatmap 17x24 -> 34x48 -> 67x93: 100 points per step
    assert pred.mask.shape == (2, 67, 93) and pred.refined_points == [200, 200]
    off = m.predict(x, refine=False)
    with torch.no_grad():
        heat = torch.sigmoid(F.interpolate(m(x)["coarse"], size=(67, 93), mode="bilinear", align_corners=False))[:, 0]
    assert off.refined_points == [0, 0] and torch.equal(off.mask, heat > 0.5)
    assert not torch.equal(pred.prob, off.prob)


def test_cbprn_config_without_new_switches_loads(tmp_path):
    # a model file written before the ablation switches existed
    old = {k: v for k, v in cbprn().config.items() if k not in ("sampling", "guidance", "subdivision_points")}
    rebuilt = create_model(**old)
    assert (rebuilt.sampling, rebuilt.guidance) == ("boundary", "heatmap")
    load_state(rebuilt, cbprn().state_dict())


def test_baselines_go_through_segment_and_evaluate(tmp_path):
    """The same commands as CBPRN: `segment -c` a baseline's model file, then `evaluate`."""
    import json
    import subprocess
    import sys

    from conftest import write_pair_dataset

    from crackrender.checkpoint import save_model

    root = write_pair_dataset(tmp_path / "ds", {"a": line_mask(67, 93), "b": line_mask(64, 96, row=40)},
                              splits={"test": ["a", "b"]})
    for name, model in (("pointrend", pointrend("pspnet")), ("conv_decoder", create_model("conv_decoder", **TINY_DECODER))):
        path = save_model(tmp_path / f"{name}.safetensors", model)
        out = tmp_path / f"pred-{name}"
        run = [sys.executable, "-m", "crackrender.cli"]
        r = subprocess.run([*run, "segment", root, "--split", "test", "-c", path, "--out", out, "-q"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        sidecar = json.loads((out / "a.json").read_text())
        assert sidecar["model"]["name"] == name and (sidecar["width"], sidecar["height"]) == (93, 67)
        r = subprocess.run([*run, "evaluate", out, root / "masks", "--json", tmp_path / f"{name}.json"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert json.loads((tmp_path / f"{name}.json").read_text())["n_images"] == 2
