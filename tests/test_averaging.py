"""`crackrender average`: the even mean of models' weights, written as a model file."""

import subprocess
import sys

import pytest
import torch
from conftest import TINY_CBPRN

from crackrender.averaging import average_models
from crackrender.checkpoint import load_model_and_info, read_checkpoint, save_model
from crackrender.errors import CrackRenderError
from crackrender.models import create_model


def _saved(path, seed, steps, **config):
    torch.manual_seed(seed)
    model = create_model(**{"name": "cbprn", **TINY_CBPRN, "pretrained": False, **config})
    for name, buf in model.named_buffers():
        if name.endswith("num_batches_tracked"):
            buf.fill_(steps)
        elif name.endswith("running_mean"):
            buf.normal_()  # BatchNorm statistics differ between runs too, and are averaged
    save_model(path, model, info={"threshold": 0.3})
    return read_checkpoint(path)[1]


def test_mean_of_three_models(tmp_path):
    states = [_saved(tmp_path / f"m{i}.safetensors", seed=i, steps=100 * (i + 1)) for i in range(3)]
    out = average_models([tmp_path / f"m{i}.safetensors" for i in range(3)], tmp_path / "mean.safetensors")
    _, mean, info = read_checkpoint(out)
    floats = [k for k in mean if mean[k].is_floating_point()]
    assert floats and any(not torch.equal(states[0][k], states[1][k]) for k in floats)
    for key in floats:
        torch.testing.assert_close(mean[key], sum(s[key] for s in states) / 3, rtol=0, atol=1e-6)
    counters = [k for k in mean if k.endswith("num_batches_tracked")]
    assert counters and all(int(mean[k]) == 300 for k in counters)  # the last file's
    assert "threshold" not in info and info["averaged_from"] == ["m0.safetensors", "m1.safetensors", "m2.safetensors"]
    model, loaded = load_model_and_info(out)
    assert model.config["name"] == "cbprn" and not loaded["half"]
    half = average_models([tmp_path / "m0.safetensors", tmp_path / "m1.safetensors"], tmp_path / "h.safetensors", half=True)
    assert all(t.dtype == torch.float16 for t in read_checkpoint(half)[1].values() if t.is_floating_point())


def test_refuses_other_architectures_and_single_models(tmp_path):
    _saved(tmp_path / "a.safetensors", seed=0, steps=1)
    _saved(tmp_path / "b.safetensors", seed=1, steps=1, point_hidden=48)
    with pytest.raises(CrackRenderError, match="another architecture.*point_hidden"):
        average_models([tmp_path / "a.safetensors", tmp_path / "b.safetensors"], tmp_path / "out.safetensors")
    with pytest.raises(CrackRenderError, match="two or more"):
        average_models([tmp_path / "a.safetensors"], tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_cli_writes_the_mean_and_keeps_its_inputs(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    _saved(a, seed=0, steps=1)
    _saved(b, seed=1, steps=2)
    before = a.read_bytes()
    run = lambda *args: subprocess.run([sys.executable, "-m", "crackrender.cli", "average", *map(str, args)],  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    r = run(a, a, b)
    assert r.returncode != 0 and "one of the models" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert a.read_bytes() == before
    r = run(tmp_path / "mean.safetensors", a, b, "--half")
    assert r.returncode == 0, r.stderr
    assert "calibrate" in r.stdout and read_checkpoint(tmp_path / "mean.safetensors")[2]["averaged_from"] == [a.name, b.name]
