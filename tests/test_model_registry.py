"""Every registered model, alike: built tiny, it predicts a full-size mask on an odd size, survives a
save/load round trip, refuses a file of another architecture; and model files made by earlier
code (tests/data/legacy_models) still load and predict exactly as they did."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crackrender.checkpoint import load_model

LEGACY = Path(__file__).resolve().parent / "data" / "legacy_models"


def _legacy_module():
    spec = importlib.util.spec_from_file_location("legacy_models_make", LEGACY / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


legacy = _legacy_module()


def assert_same_predictions(model, x: torch.Tensor, expected) -> None:
    got = legacy.predictions(model, x)
    assert sorted(got) == sorted(expected.files)
    for key in expected.files:
        assert np.array_equal(got[key], expected[key]), key


@pytest.mark.parametrize("kind", sorted(legacy.KINDS))
def test_legacy_model_file_loads_and_predicts_as_before(kind, tmp_path):
    manifest = json.loads((LEGACY / f"{kind}.json").read_text())
    path = tmp_path / f"{kind}.safetensors"
    assert legacy.write_model_file(manifest, path) == manifest["digest"]  # the very file old code wrote
    model = load_model(path)
    assert {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()} == \
        {k: tuple(v) for k, v in manifest["tensors"].items()}
    # the config round trips unchanged, so a file written now loads in old code too
    assert model.config == json.loads(manifest["metadata"]["config"])
    torch.manual_seed(0)
    assert_same_predictions(model, legacy.legacy_input(), np.load(LEGACY / f"{kind}.npz"))


def test_shipped_model_predicts_as_before():
    from crackrender.weights import default_model_path

    assert_same_predictions(load_model(default_model_path()), legacy.crack_input(), np.load(LEGACY / "shipped.npz"))
