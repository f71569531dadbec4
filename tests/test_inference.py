"""Setting a model up for inference: BatchNorm folded into the conv before it (the same function up
to float rounding, for CBPRN and the UNet peer alike), only in eval mode and only where the order
of execution is known, and channels-last on CPU."""

import copy

import pytest
import torch
from conftest import images, tiny
from torch import nn

from crackrender.inference import fold_batchnorm, prepare_model
from crackrender.models import create_model


def _with_trained_statistics(model: nn.Module) -> nn.Module:
    """``model`` with BatchNorm statistics and affine parameters far from their initial values, so
    a fold that dropped or misplaced any of them changes the output."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            module.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)
    return model.eval()


def _batchnorms(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("name", ["cbprn", "unet"])
def test_prepared_model_computes_the_same_function(name):
    model = _with_trained_statistics(tiny() if name == "cbprn" else create_model("unet"))
    prepared = prepare_model(copy.deepcopy(model), "cpu")
    x = images(1, 96, 128)
    with torch.inference_mode():
        expected, got = model(x), prepared(x)
    assert len(_batchnorms(prepared)) < len(_batchnorms(model))
    # float rounding through ~20 folded layers: ~1e-4 of logits of order 1; a wrong fold is off by ~1
    torch.testing.assert_close(got["coarse"], expected["coarse"], rtol=1e-3, atol=1e-3)


def test_every_batchnorm_of_cbprn_is_folded():
    model = _with_trained_statistics(tiny())
    assert fold_batchnorm(model) == 24 and _batchnorms(model) == []


def test_a_model_in_training_keeps_its_batchnorm():
    model = tiny().train()
    before = _batchnorms(model)
    prepare_model(model, "cpu")
    assert _batchnorms(model) == before
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model)


class _ConvThenOtherBatchNorm(nn.Module):
    """Registers a conv before a BatchNorm but normalises something else with it: folding by
    registration order alone would be wrong here."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.conv(x) + self.bn(x)


def test_pairs_of_unknown_order_are_left_alone():
    model = _with_trained_statistics(nn.Sequential(_ConvThenOtherBatchNorm(), nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    x = images(1, 9, 9)
    expected = model(x)
    assert fold_batchnorm(model) == 1  # only the Sequential's own conv -> bn
    assert isinstance(model[0].bn, nn.BatchNorm2d)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


def test_a_folded_model_cannot_be_saved(tmp_path):
    # its state dict has conv biases and no BatchNorm: a file of it would not load as its architecture
    from crackrender.checkpoint import save_model
    from crackrender.errors import CrackRenderError

    model = prepare_model(tiny().eval(), "cpu")
    with pytest.raises(CrackRenderError, match="folded for inference"):
        save_model(tmp_path / "m.safetensors", model)
    assert not (tmp_path / "m.safetensors").exists()


def test_a_model_without_batchnorm_to_fold_stays_saveable(tmp_path):
    from crackrender.checkpoint import save_model

    model = tiny().eval()
    for parent in list(model.modules()):  # as a model trained without BatchNorm would be
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
    assert fold_batchnorm(model) == 0
    save_model(tmp_path / "m.safetensors", model)
    assert (tmp_path / "m.safetensors").is_file()
