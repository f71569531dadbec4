"""CBPRN through the registry: the paper's defaults, shapes on odd sizes, gradients, training
points, the [alpha, beta] inference rule, torchvision's pretrained-weights path, and the config round
trip. The edge branch (fixed guided filter, Swin blocks that never pad): tests/test_edge_branch.py."""

import math
import urllib.error
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from conftest import TINY_CBPRN, images, line_mask, tiny

from crackrender.errors import CrackRenderError, InputError
from crackrender.models import CBPRN, create_model
from crackrender.models.base import pad_to_multiple
from crackrender.ops import pixel_centers
from crackrender.train.losses import segmentation_losses

TINY = TINY_CBPRN


@pytest.fixture(scope="module")
def model() -> CBPRN:
    m = tiny()
    with torch.no_grad():  # one train-mode pass so BatchNorm statistics are not the identity
        m.train()(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    return m.eval()


def masks_for(b: int, h: int, w: int) -> torch.Tensor:
    # thick enough (>= 2k+3) to have an interior beyond the k=2 band
    return torch.stack([torch.from_numpy(line_mask(h, w, row=h // 2 + i, thickness=9 + 2 * i)) for i in range(b)])[:, None]


# --- registry and defaults --------------------------------------------------------------------

def test_defaults_are_the_papers():
    m = create_model("cbprn")
    c = m.config
    assert c["name"] == "cbprn" and c["backbone"] == "resnet50"
    assert (c["alpha"], c["beta"], c["band_k"]) == (0.3, 0.7, 2)
    assert c["strata_ratios"] == [0.3, 0.4, 0.3]
    assert c["point_ratio"] == pytest.approx(1 / 20)
    assert (c["point_layers"], c["point_hidden"]) == (3, 256)
    # the ablation switches (tests/test_baselines.py) default to the paper's method
    assert (c["sampling"], c["guidance"]) == ("boundary", "heatmap")
    # the modules follow the config, not just the dict
    assert m.backbone.channels == [256, 512, 1024, 2048]
    assert len(m.point_head.layers) == 3 and all(l.out_features == 256 for l in m.point_head.layers)
    assert (m.alpha, m.beta, m.band_k, m.strata_ratios) == (0.3, 0.7, 2, (0.3, 0.4, 0.3))


@pytest.mark.parametrize("alpha,beta", [(0.7, 0.3), (0.5, 0.5), (-0.1, 0.7), (0.3, 1.1)])
def test_bad_alpha_beta(alpha, beta):
    with pytest.raises(InputError, match="alpha"):
        create_model("cbprn", backbone="resnet18", alpha=alpha, beta=beta)


def test_config_round_trip(model):
    rebuilt = create_model(**model.config)
    a, b = model.state_dict(), rebuilt.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    assert rebuilt.config == model.config


# --- forward shapes -----------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [4, 8])
@pytest.mark.parametrize("window", [4, 8])
@pytest.mark.parametrize("size", [(1, 33, 47), (2, 70, 90)])
def test_forward_odd_sizes(size, stride, window):
    b, h, w = size
    m = tiny(edge_stride=stride, window=window).eval()
    with torch.no_grad():
        out = m(images(b, h, w))
    grid = (math.ceil(h / 4), math.ceil(w / 4))
    assert out["coarse"].shape == (b, 1, *grid)
    assert out["features"].shape == (b, TINY["feature_dim"], *grid)
    assert torch.isfinite(out["coarse"]).all() and torch.isfinite(out["features"]).all()


# --- gradients and training outputs -------------------------------------------------------------

def test_gradients_reach_every_part():
    m = tiny().train()
    x, masks = images(2, 40, 56), masks_for(2, 40, 56)
    out = m.training_outputs(x, masks, generator=torch.Generator().manual_seed(0))
    loss = segmentation_losses(out, masks, {})["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    for part in ("backbone", "edge_branch", "fusion", "heatmap_head", "point_head"):
        params = list(getattr(m, part).named_parameters())
        assert params, part
        for name, p in params:
            assert p.grad is not None, f"{part}.{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{part}.{name}"
        assert sum(float(p.grad.abs().sum()) for _, p in params) > 0, part


def capture_coords(m, monkeypatch) -> list:
    seen = []
    original = m.point_logits

    def spy(out, coords):
        seen.append(coords.detach().clone())
        return original(out, coords)

    monkeypatch.setattr(m, "point_logits", spy)
    return seen


@pytest.mark.parametrize("h,w", [(33, 47), (40, 56)])
def test_training_points(model, monkeypatch, h, w):
    seen = capture_coords(model, monkeypatch)
    masks = masks_for(2, h, w)
    with torch.no_grad():
        out = model.training_outputs(images(2, h, w), masks, generator=torch.Generator().manual_seed(3))
    n = round(h * w / 20)
    assert out["point_logits"].shape == (2, n)
    assert out["point_labels"].shape == (2, n) and out["point_strata"].shape == (2, n)
    (coords,) = seen
    cols = (coords[..., 0] * w - 0.5).round().long()
    rows = (coords[..., 1] * h - 0.5).round().long()
    for b in range(2):
        at_points = masks[b, 0, rows[b], cols[b]].float()
        assert torch.equal(out["point_labels"][b], at_points)
    # 0.3 interior : 0.4 band : 0.3 background
    for b in range(2):
        counts = [int((out["point_strata"][b] == s).sum()) for s in range(3)]
        assert all(abs(c - r * n) <= 1 for c, r in zip(counts, (0.3, 0.4, 0.3))), counts
        labels = out["point_labels"][b]
        assert labels[out["point_strata"][b] == 0].all() and not labels[out["point_strata"][b] == 2].any()


def test_training_points_follow_the_generator(model, monkeypatch):
    seen = capture_coords(model, monkeypatch)
    x, masks = images(2, 33, 47), masks_for(2, 33, 47)
    with torch.no_grad():
        a = model.training_outputs(x, masks, generator=torch.Generator().manual_seed(7))
        b = model.training_outputs(x, masks, generator=torch.Generator().manual_seed(7))
        model.training_outputs(x, masks, generator=torch.Generator().manual_seed(8))
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])
    assert torch.equal(a["point_labels"], b["point_labels"])
    assert torch.equal(a["point_logits"], b["point_logits"])


# --- predict ------------------------------------------------------------------------------------

def coarse_prob(m, x) -> torch.Tensor:
    with torch.no_grad():
        coarse = m(x)["coarse"]
    up = F.interpolate(coarse.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return torch.sigmoid(up)[:, 0]


@pytest.mark.parametrize("size", [(1, 33, 47), (2, 70, 90)])
def test_predict_refines_only_the_uncertain_band(model, size):
    b, h, w = size
    x = images(b, h, w, seed=5)
    cp = coarse_prob(model, x)
    # a band that is neither empty nor everything, whatever the random init produced
    alpha, beta = (float(v) for v in torch.quantile(cp.flatten()[::7], torch.tensor([0.3, 0.7])))
    pred = model.predict(x, alpha=alpha, beta=beta)
    assert pred.mask.shape == (b, h, w) and pred.mask.dtype == torch.bool
    assert pred.prob.shape == (b, h, w) and pred.prob.dtype == torch.float32
    assert float(pred.prob.min()) >= 0 and float(pred.prob.max()) <= 1
    assert torch.equal(pred.mask, pred.prob > 0.5)
    inside = (cp >= alpha) & (cp <= beta)
    assert pred.refined_points == [int(inside[i].sum()) for i in range(b)]
    assert 0 < sum(pred.refined_points) < b * h * w
    # outside [alpha, beta]: the thresholded heatmap, untouched
    assert torch.equal(pred.mask[~inside], cp[~inside] > 0.5)
    torch.testing.assert_close(pred.prob[~inside], cp[~inside])
    # inside: the point head's answer, not the heatmap's
    assert not torch.allclose(pred.prob[inside], cp[inside], atol=1e-4)


def test_predict_default_thresholds_are_the_models(model):
    x = images(1, 33, 47, seed=6)
    cp = coarse_prob(model, x)
    pred = model.predict(x)
    assert pred.refined_points == [int(((cp >= 0.3) & (cp <= 0.7)).sum())]


def test_predict_full_band_refines_every_pixel(model):
    x = images(2, 33, 47, seed=2)
    pred = model.predict(x, alpha=0.0, beta=1.0)
    assert pred.refined_points == [33 * 47, 33 * 47]
    # every pixel is the point head's prediction at its centre
    with torch.no_grad():
        out = model(x)
        coords = pixel_centers(torch.arange(33 * 47), 33, 47)[None]
        one = {"features": out["features"][1:], "coarse": out["coarse"][1:], "extent": out["extent"]}
        expected = torch.sigmoid(model.point_logits(one, coords)).view(33, 47)
    torch.testing.assert_close(pred.prob[1], expected)


def test_predict_chunking_does_not_change_the_answer(model):
    x = images(2, 35, 41, seed=4)
    small = model.predict(x, alpha=0.0, beta=1.0, chunk=7)
    big = model.predict(x, alpha=0.0, beta=1.0, chunk=65536)
    assert small.refined_points == big.refined_points
    # a different GEMM blocking may move the last bit, nothing more
    torch.testing.assert_close(small.prob, big.prob, rtol=0, atol=1e-6)
    flipped = small.mask != big.mask
    assert ((big.prob[flipped] - 0.5).abs() < 1e-6).all()


@pytest.mark.parametrize("bad", [torch.rand(3, 33, 47), torch.rand(1, 1, 33, 47), torch.rand(1, 4, 33, 47),
                                 torch.zeros(1, 3, 33, 47, dtype=torch.uint8)])
def test_predict_rejects_bad_input(model, bad):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)|float"):
        model.predict(bad)


# --- pretrained weights (docs/design.md, "Pretrained weights") ---------------------------------

@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME that torch.hub really uses (set_dir, if called before, overrides it)."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.delenv("TORCH_HUB", raising=False)
    hub = home / "hub"
    previous = torch.hub.get_dir()
    if Path(previous) != hub:
        torch.hub.set_dir(str(hub))
        yield hub
        torch.hub.set_dir(previous)
    else:
        yield hub


@pytest.fixture
def no_network(monkeypatch):
    calls = []

    def offline(url, dst, *args, **kwargs):
        calls.append((url, dst))
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return calls


def test_pretrained_loads_the_cached_file(torch_home, no_network):
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    torch.manual_seed(123)
    state = torchvision.models.resnet18().state_dict()
    target = torch_home / "checkpoints" / Path(weights.url).name
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    torch.manual_seed(0)  # a random init would differ from the file
    m = create_model("cbprn", **{**TINY, "pretrained": True})
    assert no_network == []
    assert m.config["pretrained"] is True
    assert torch.equal(m.backbone.stem[0].weight, state["conv1.weight"])
    assert torch.equal(m.backbone.res5[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert torch.equal(m.backbone.stem[1].running_var, state["bn1.running_var"])


def test_pretrained_offline_fails_clearly(torch_home, no_network):
    name = Path(torchvision.models.ResNet18_Weights.DEFAULT.url).name
    with pytest.raises(CrackRenderError) as info:
        create_model("cbprn", **{**TINY, "pretrained": True})
    message = str(info.value)
    assert len(no_network) == 1 and no_network[0][0] == torchvision.models.ResNet18_Weights.DEFAULT.url
    assert name in message and str(torch_home / "checkpoints") in message
    assert "offline" in message and "pretrained: false" in message
    assert not (torch_home / "checkpoints" / name).exists()


@pytest.mark.parametrize("name", ["cbprn", "conv_decoder"])
def test_sides_not_multiple_of_32_are_padded_not_stretched(name):
    """ResNet rounds up at every stride-2 step: unpadded, its deeper maps would cover more than the
    image and be stretched over it. The output must equal that of the image reflect-padded to a
    multiple of 32, cropped back (sides a multiple of 4, so the crop is exact)."""
    extra = {} if name == "cbprn" else {"decoder_dim": 16}
    m = create_model(name, **{k: v for k, v in TINY_CBPRN.items() if name == "cbprn" or k in (
        "backbone", "edge_dim", "edge_heads", "edge_modules", "window", "fpn_dim", "feature_dim")}, **extra).eval()
    x = images(1, 68, 92, seed=11)
    padded, _ = pad_to_multiple(x, 32)
    kwargs = {"alpha": 0.0, "beta": 1.0} if name == "cbprn" else {}
    with torch.no_grad():
        alone, framed = m.predict(x, **kwargs), m.predict(padded, **kwargs)
    framed_prob = framed.prob[..., :68, :92]
    # within two pixels of the bottom/right border, bilinear reads of the cropped maps clamp at the
    # image's last cell where the padded run reads the cell beyond it: a rounding-size difference
    torch.testing.assert_close(alone.prob[..., :-2, :-2], framed_prob[..., :-2, :-2], rtol=0, atol=1e-5)
    torch.testing.assert_close(alone.prob, framed_prob, rtol=0, atol=2e-3)
