"""Beyond the paper (issue 14.3): a point head that also reads full-resolution inputs, and training
points drawn from the heatmap's own [alpha, beta] band."""

import pytest
import torch
from conftest import TINY_CBPRN

from crackrender.checkpoint import load_model, load_state, save_model
from crackrender.errors import CrackRenderError, InputError
from crackrender.models import create_model
from crackrender.models.cbprn import HEATMAP_BAND
from crackrender.ops import band_training_points, pixel_centers, uncertain_pixels


def _pair():
    torch.manual_seed(0)
    plain = create_model("cbprn", **TINY_CBPRN).eval()
    fine = create_model("cbprn", **TINY_CBPRN, point_fine=True).eval()
    return plain, fine


def test_fine_head_starts_as_the_plain_one_and_loads_its_file(tmp_path):
    plain, fine = _pair()
    path = save_model(tmp_path / "plain.safetensors", plain)
    with pytest.raises(CrackRenderError, match="missing"):
        load_state(fine, plain.state_dict())  # a strict load refuses the new parameter
    assert load_state(fine, plain.state_dict(), extensions=True) == ["point_head.extra.weight"]
    x = torch.rand(1, 3, 45, 61)  # odd size: the stride-2 maps are cropped like the others
    a, b = plain.predict(x, alpha=0.0, beta=1.0), fine.predict(x, alpha=0.0, beta=1.0)
    assert b.mask.shape == (1, 45, 61)
    torch.testing.assert_close(a.prob, b.prob, rtol=0, atol=0)  # zero projection: the same answers
    # once trained, the full-resolution inputs change the answer, and the file round-trips
    with torch.no_grad():
        fine.point_head.extra.weight.normal_()
    c = fine.predict(x, alpha=0.0, beta=1.0)
    assert not torch.equal(c.prob, b.prob)
    again = load_model(save_model(tmp_path / "fine.safetensors", fine))
    torch.testing.assert_close(again.predict(x, alpha=0.0, beta=1.0).prob, c.prob)
    assert load_model(path).config["point_fine"] is False


def test_fine_inputs_are_read_at_the_point():
    _, fine = _pair()
    x = torch.rand(1, 3, 45, 61)
    with torch.no_grad():
        out = fine(x)
    assert out["stem"].shape[-2:] == (32, 32) and out["image"].shape[-2:] == (64, 64)
    # the pixel's own colour comes back exactly (normalised), at pixel centres of the image
    coords = pixel_centers(torch.tensor([0, 61 * 44 + 60]), 45, 61)[None]
    from crackrender.ops import point_sample

    at = point_sample(out["image"], coords * torch.tensor(out["fine_extent"]))
    expected = fine.normalize(x)[0, :, [0, 44], [0, 60]].T
    torch.testing.assert_close(at[0], expected)


def test_band_share_draws_that_share_from_the_heatmaps_band():
    torch.manual_seed(1)
    model = create_model("cbprn", **TINY_CBPRN, band_share=0.5).train()
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 30:34] = 1
    images = torch.rand(2, 3, 64, 64)
    out = model.training_outputs(images, masks, generator=torch.Generator().manual_seed(0))
    n = round(64 * 64 / 20)
    assert out["point_logits"].shape == (2, n)
    strata = out["point_strata"]
    assert int((strata == HEATMAP_BAND).sum(1)[0]) == round(n * 0.5)
    # every band point lies where the heatmap's probability is in [alpha, beta]
    prob = torch.sigmoid(torch.nn.functional.interpolate(out["coarse"].detach().float(), size=(64, 64),
                                                         mode="bilinear", align_corners=False))
    for b in range(2):
        band = set(uncertain_pixels(prob[b, 0], model.alpha, model.beta).tolist())
        if band:
            assert (strata[b] == HEATMAP_BAND).any()


def test_band_points_fall_back_and_check_their_input():
    confident = torch.full((1, 1, 8, 8), 9.0)
    assert band_training_points(confident, 5) == [None]
    with pytest.raises(ValueError):
        band_training_points(torch.zeros(8, 8), 5)


@pytest.mark.parametrize("bad", [{"point_fine": 1}, {"band_share": 1.0}, {"band_share": -0.1}])
def test_bad_settings(bad):
    with pytest.raises(InputError):
        create_model("cbprn", **TINY_CBPRN, **bad)


def test_the_shipped_v2_model_uses_the_fine_point_head():
    """v2, the shipped model (MODEL.md), was trained with the head that reads the stem and the colour."""
    from crackrender.weights import default_model_path

    model = load_model(default_model_path())
    assert model.config["point_fine"] is True and model.config["band_share"] > 0
    pred = model.predict(torch.rand(1, 3, 45, 61))
    assert pred.mask.shape == (1, 45, 61) and torch.isfinite(pred.prob).all()
