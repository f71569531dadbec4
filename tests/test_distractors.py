"""Distractors (hard negatives): every family deterministic by seed, changing only what it reports,
never touching the crack mask; scenes and datasets with distractors; the copy-paste augmentation."""

import cv2
import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from crackrender.data.distractors import FAMILIES, apply_distractors, choose_families, parse_families
from crackrender.data.paste import PasteDistractors
from crackrender.data.synthetic import crack_free_scene, render_crack_scene, write_false_alarm_set, write_synthetic_dataset

W, H = 192, 144
# A pixel outside the touched mask changes by at most ~4% coverage times a full swing (about 10 levels).
UNTOUCHED_MAX_CHANGE = 12.0


def background(seed=0, surface="concrete"):
    return crack_free_scene(W, H, seed=seed, surface=surface).image.astype(np.float32)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_deterministic_changes_image_and_reports_what_it_touched(name):
    for surface in ("concrete", "asphalt"):
        bg = background(1, surface)
        a, ta = FAMILIES[name](bg.copy(), np.random.default_rng(5))
        b, tb = FAMILIES[name](bg.copy(), np.random.default_rng(5))
        assert np.array_equal(a, b) and np.array_equal(ta, tb), "same seed, same drawing"
        assert a.shape == bg.shape and ta.shape == (H, W) and ta.dtype == bool
        change = np.abs(a - bg).max(axis=2)
        assert ta.any() and change.max() > 20, "it draws something visible"
        assert change[~ta].max(initial=0) <= UNTOUCHED_MAX_CHANGE, "changes beyond the touched mask"
    others = [FAMILIES[name](background(1).copy(), np.random.default_rng(s))[0] for s in (6, 7, 8)]
    assert any(not np.array_equal(o, a) for o in others), "other seeds, other drawings"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_at_density_zero_draws_nothing(name):
    bg = background(2)
    out, touched = FAMILIES[name](bg.copy(), np.random.default_rng(0), 0.0)
    assert np.array_equal(out, bg) and not touched.any()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_scene_with_family_keeps_its_cracks(name):
    plain = render_crack_scene(W, H, seed=3, n_cracks=2)
    s = render_crack_scene(W, H, seed=3, n_cracks=2, distractors=name)
    assert np.array_equal(s.mask, plain.mask), "distractors must not move or relabel cracks"
    assert s.distractors == (name,) and s.distractor_mask.any()
    assert not (s.distractor_mask & s.mask).any(), "a distractor pixel is background"
    assert not np.array_equal(s.image, plain.image)
    assert s.image.dtype == np.uint8 and s.image.shape == (H, W, 3)
    again = render_crack_scene(W, H, seed=3, n_cracks=2, distractors=name)
    assert np.array_equal(again.image, s.image) and np.array_equal(again.distractor_mask, s.distractor_mask)


def test_crack_crossing_paint_stays_a_dark_crack():
    s = render_crack_scene(480, 360, seed=0, n_cracks=3, width_range=(4, 8), distractors="paint_lines",
                           distractor_density=3)
    grey = s.image.astype(float).mean(axis=2)
    paint = s.distractor_mask & (grey > 200)
    near_paint = cv2.dilate(paint.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    crossing = s.mask & near_paint
    assert crossing.sum() > 20, "the test scene should have a crack through paint"
    assert grey[paint].mean() - grey[crossing].mean() > 60


def test_parse_and_choose_families():
    assert parse_families("all") == tuple(FAMILIES)
    assert parse_families(None) == parse_families("none") == parse_families("") == ()
    assert parse_families(["stains", " kerbs ", "stains"]) == ("kerbs", "stains")  # layer order: kerbs lie below stains
    with pytest.raises(ValueError, match=r"^unknown distractor families paint, zebra; expected all, none") as e:
        parse_families("paint,zebra")
    assert "\n" not in str(e.value)
    rng = np.random.default_rng(0)
    for _ in range(20):
        picked = choose_families(rng, list(FAMILIES), 3)
        assert 1 <= len(picked) <= 3 and set(picked) <= set(FAMILIES)
    assert choose_families(rng, []) == ()


@pytest.mark.parametrize("call, message", [
    (lambda: apply_distractors(np.zeros((8, 8)), np.random.default_rng(0), ["stains"]), "RGB image"),
    (lambda: apply_distractors(np.zeros((8, 8, 3)), np.random.default_rng(0), ["stains"], -1), "density"),
    (lambda: render_crack_scene(64, 64, distractors="lasers"), "unknown distractor family lasers"),
    (lambda: write_synthetic_dataset("unused", 2, negatives=1.5), "negatives"),
])
def test_bad_input_is_a_one_line_value_error(call, message):
    with pytest.raises(ValueError, match=message) as e:
        call()
    assert "\n" not in str(e.value)


def test_synthetic_dataset_with_distractors_and_negatives(tmp_path):
    root = write_synthetic_dataset(tmp_path / "d", 10, size=(96, 64), seed=1, distractors="all", negatives=0.3)
    stems = [f"syn_{i:05d}" for i in range(10)]
    assert sorted(p.stem for p in (root / "distractors").iterdir()) == stems
    crack_free = 0
    for stem in stems:
        mask = cv2.imread(str(root / "masks" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        dmask = cv2.imread(str(root / "distractors" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(dmask)) <= {0, 255} and not ((mask > 0) & (dmask > 0)).any()
        crack_free += not mask.any()
    assert crack_free == 3
    plain = write_synthetic_dataset(tmp_path / "p", 3, size=(96, 64), seed=1)
    assert not (plain / "distractors").exists()


def test_false_alarm_set_layout(tmp_path):
    root = write_false_alarm_set(tmp_path / "fa", 6, size=(160, 96), seed=2)
    stems = (root / "test.txt").read_text().split()
    assert stems == [f"fa_{i:05d}" for i in range(6)]
    with_cracks = []
    for stem in stems:
        image = cv2.imread(str(root / "images" / f"{stem}.jpg"))
        mask = cv2.imread(str(root / "masks" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        dmask = cv2.imread(str(root / "distractors" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert image.shape == (96, 160, 3) and mask.shape == dmask.shape == (96, 160)
        assert dmask.any() and not ((mask > 0) & (dmask > 0)).any()
        with_cracks.append(bool(mask.any()))
    assert with_cracks == [True, False] * 3
    assert (root / "falsealarm.json").is_file()
    again = write_false_alarm_set(tmp_path / "again", 6, size=(160, 96), seed=2)
    for stem in stems:
        assert (again / "distractors" / f"{stem}.png").read_bytes() == (root / "distractors" / f"{stem}.png").read_bytes()


def real_like_pair(seed):
    s = render_crack_scene(128, 96, seed=seed, n_cracks=2, width_range=(2, 6))
    image = tv_tensors.Image(torch.from_numpy(s.image).permute(2, 0, 1).contiguous())
    return image, tv_tensors.Mask(torch.from_numpy(s.mask.astype(np.uint8))[None])


@pytest.mark.parametrize("name", list(FAMILIES))
def test_paste_keeps_crack_pixels_and_mask(name):
    torch.manual_seed(0)
    paste = PasteDistractors(p=1.0, families=name)
    image, mask = real_like_pair(1)
    out, out_mask = paste(image, mask)
    assert isinstance(out, tv_tensors.Image) and out.dtype == torch.uint8 and out.shape == image.shape
    assert out_mask is mask
    crack = mask[0].bool()
    assert torch.equal(out[:, crack], image[:, crack]), "crack pixels must keep their values"
    assert (out != image).any()


def test_paste_probability_determinism_and_errors():
    image, mask = real_like_pair(2)
    state = torch.get_rng_state()
    assert PasteDistractors(p=0.0)(image, mask) == (image, mask)
    assert torch.equal(torch.get_rng_state(), state), "p=0 must not consume randomness"
    torch.manual_seed(4)
    first = PasteDistractors(p=1.0)(image, mask)[0]
    torch.manual_seed(4)
    assert torch.equal(PasteDistractors(p=1.0)((image, mask))[0], first)  # a packed pair works too
    torch.manual_seed(0)
    changed = sum(bool((PasteDistractors(p=0.25)(image, mask)[0] != image).any()) for _ in range(80))
    assert 8 <= changed <= 35
    plain = PasteDistractors(p=1.0)(image.as_subclass(torch.Tensor), mask[0])[0]
    assert type(plain) is torch.Tensor
    for bad in (lambda: PasteDistractors(p=1.5), lambda: PasteDistractors(families="none"),
                lambda: PasteDistractors(p=1.0)(image.float(), mask),
                lambda: PasteDistractors(p=1.0)(image, mask[:, :10])):
        with pytest.raises(ValueError):
            bad()
