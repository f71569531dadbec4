"""Model files: safetensors round trip with the config in the metadata, float16 storage, no code
execution on load, clear mismatch errors, inference overrides, Lightning .ckpt files, atomic
writes."""

import json
import os
import pickle
import urllib.error

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import TINY_CBPRN

from crackrender.checkpoint import FORMAT, load_model, load_state, read_checkpoint, save_model
from crackrender.errors import CrackRenderError
from crackrender.models import create_model

TINY = TINY_CBPRN


def tiny(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    m = create_model("cbprn", **{**TINY, **overrides})
    with torch.no_grad():  # one train-mode pass so BatchNorm statistics are not the identity
        m.train()(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed + 1)))
    return m.eval()


@pytest.fixture(scope="module")
def model():
    return tiny()


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 3, 41, 53, generator=torch.Generator().manual_seed(9))


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("models") / "model.safetensors", model, info={"epoch": 3})


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


class RunsCode:
    """Unpickling this creates ``marker``: proof that a loader executed pickled code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_runs_code_would_be_noticed(tmp_path):
    # control: an unsafe load of RunsCode really does leave the marker behind
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(RunsCode(marker))).close()
    assert marker.exists()


# --- round trip ---------------------------------------------------------------------------------

def test_round_trip(model, saved, image):
    loaded = load_model(saved)
    assert not loaded.training
    assert loaded.config == {**model.config, "pretrained": False}
    assert_same_state(model, loaded)
    a, b = model.predict(image), loaded.predict(image)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.prob, b.prob)
    assert a.refined_points == b.refined_points


def test_metadata_carries_the_config(model, saved):
    with safe_open(str(saved), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == FORMAT
    assert json.loads(meta["config"]) == model.config
    assert json.loads(meta["info"]) == {"epoch": 3}
    assert keys == set(model.state_dict())
    config, state, info = read_checkpoint(saved)
    assert config == model.config and info == {"epoch": 3} and set(state) == keys


def test_half_storage(model, saved, image, tmp_path):
    path = save_model(tmp_path / "half.safetensors", model, half=True)
    own = model.state_dict()
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            t = f.get_tensor(key)
            assert t.dtype == (torch.float16 if own[key].is_floating_point() else own[key].dtype), key
    ratio = path.stat().st_size / saved.stat().st_size
    assert 0.45 < ratio < 0.55, ratio
    loaded = load_model(path)
    assert all(v.dtype == own[k].dtype for k, v in loaded.state_dict().items())  # back to float32
    a, b = model.predict(image), loaded.predict(image)
    assert (a.prob - b.prob).abs().max() < 0.02
    assert (a.mask == b.mask).float().mean() > 0.99


# --- loading never executes code ----------------------------------------------------------------

def test_pickle_named_safetensors_is_rejected(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.safetensors"
    torch.save({"weights": RunsCode(marker)}, path)
    with pytest.raises(CrackRenderError, match="not a readable safetensors"):
        load_model(path)
    (tmp_path / "plain.safetensors").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(CrackRenderError, match="not a readable safetensors"):
        load_model(tmp_path / "plain.safetensors")
    assert not marker.exists()


def test_missing_file(tmp_path):
    with pytest.raises(CrackRenderError, match="not found"):
        load_model(tmp_path / "nope.safetensors")


def test_safetensors_without_config_is_rejected(model, tmp_path):
    path = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    with pytest.raises(CrackRenderError, match="no crackrender model config"):
        load_model(path)


# --- mismatches ---------------------------------------------------------------------------------

def test_config_that_lies_about_the_backbone(model, tmp_path):
    path = tmp_path / "lie.safetensors"
    config = {**model.config, "backbone": "resnet34"}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": FORMAT, "config": json.dumps(config), "info": "{}"})
    with pytest.raises(CrackRenderError, match="does not match") as info:
        load_model(path)
    message = str(info.value)
    assert "\n" not in message and "resnet34" in message and "missing" in message


@pytest.mark.parametrize("damage", ["missing", "shape", "unexpected"])
def test_load_state_mismatch_is_one_line(model, damage):
    target = tiny(seed=1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    state = dict(model.state_dict())
    if damage == "missing":
        del state["point_head.predictor.weight"]
    elif damage == "shape":
        state["heatmap_head.1.weight"] = torch.zeros(2, 16, 1, 1)
    else:
        state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CrackRenderError, match="does not match") as info:
        load_state(target, state, source="x.safetensors")
    message = str(info.value)
    assert "\n" not in message and message.startswith("x.safetensors")
    assert {"missing": "1 missing", "shape": "1 wrong shape", "unexpected": "1 unexpected"}[damage] in message
    # nothing was loaded
    assert all(torch.equal(v, before[k]) for k, v in target.state_dict().items())


# --- overrides ----------------------------------------------------------------------------------

def test_inference_overrides(model, saved):
    loaded = load_model(saved, alpha=0.2, beta=0.8, point_chunk=99)
    assert (loaded.alpha, loaded.beta, loaded.point_chunk) == (0.2, 0.8, 99)
    assert (loaded.config["alpha"], loaded.config["beta"]) == (0.2, 0.8)
    assert_same_state(model, loaded)


def test_architecture_override_fails(saved):
    with pytest.raises(CrackRenderError, match="does not match"):
        load_model(saved, feature_dim=64)


def test_pretrained_config_never_downloads(model, tmp_path, monkeypatch):
    # weights come from the file: a model trained from ImageNet weights loads offline
    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    path = tmp_path / "pre.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    config = {**model.config, "pretrained": True}
    save_file(state, str(path), metadata={"format": FORMAT, "config": json.dumps(config), "info": "{}"})
    assert_same_state(model, load_model(path))


# --- Lightning .ckpt ----------------------------------------------------------------------------

def test_lightning_ckpt(model, image, tmp_path):
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()},
                "hyper_parameters": {"config": {"model": model.config}}, "epoch": 1, "global_step": 5}, path)
    config, state, info = read_checkpoint(path)
    assert config == model.config and info == {"epoch": 1, "global_step": 5}
    loaded = load_model(path)
    assert_same_state(model, loaded)
    assert torch.equal(loaded.predict(image).prob, model.predict(image).prob)


def test_ckpt_with_pickled_object_is_refused(model, tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {"model": model.config}},
                "callback": RunsCode(marker)}, path)
    with pytest.raises(CrackRenderError, match="not a crackrender training checkpoint"):
        load_model(path)
    assert not marker.exists()


def test_ckpt_without_state_dict_is_refused(model, tmp_path):
    path = tmp_path / "odd.ckpt"
    torch.save({"hyper_parameters": {"config": {"model": model.config}}}, path)
    with pytest.raises(CrackRenderError, match="not a crackrender training checkpoint"):
        load_model(path)


# --- atomic writes ------------------------------------------------------------------------------

class FailingState(dict):
    """A state dict whose iteration breaks after a few tensors."""

    def items(self):
        for i, item in enumerate(super().items()):
            if i == 5:
                raise RuntimeError("disk on fire")
            yield item


def test_failed_save_keeps_the_old_file(model, tmp_path, monkeypatch):
    path = save_model(tmp_path / "model.safetensors", model)
    old = path.read_bytes()
    other = tiny(seed=2)
    monkeypatch.setattr(other, "state_dict", lambda: FailingState(other.__class__.state_dict(other)))
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_model(path, other)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_failed_rename_keeps_the_old_file(model, tmp_path, monkeypatch):
    path = save_model(tmp_path / "model.safetensors", model)
    old = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        save_model(path, tiny(seed=2))
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert_same_state(model, load_model(path))
