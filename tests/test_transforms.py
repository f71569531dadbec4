"""Paired transforms keep image and label in register: resized masks sample pixel centres as the
image does, and crops of small images pad by reflection, not with black."""

import numpy as np
import pytest
import torch

from crackrender.data.transforms import RandomZoom, ReflectPadToSize, eval_transforms, to_tv_tensors, train_transforms


def _step_pair(width: int, edge: int):
    image = np.zeros((48, width, 3), np.uint8)
    image[:, :edge] = 255
    return to_tv_tensors(image, image[..., 0] > 0)


def _disagreement(image, mask) -> float:
    """Pixels per row where the thresholded image and the mask disagree."""
    return float(((image[0].float() > 127.5) != (mask[0] > 0)).float().sum(1).mean())


def test_zoomed_mask_edges_land_where_the_image_edges_do():
    rng = np.random.default_rng(0)
    worst = []
    for _ in range(60):
        scale = float(rng.uniform(0.5, 1.5))
        img, mask = RandomZoom((scale, scale))(*_step_pair(97, int(rng.integers(20, 77))))
        worst.append(_disagreement(img, mask))
    # corner-aligned nearest (v2's mask default) is off by about half a pixel on average
    assert max(worst) == 0.0, f"mask edges off by up to {max(worst)} px per row"


def test_fixed_resize_of_masks_samples_pixel_centres():
    img, mask = eval_transforms((40, 61))(*_step_pair(97, 33))
    assert img.shape[-2:] == mask.shape[-2:] == (40, 61)
    assert _disagreement(img, mask) == 0.0


@pytest.mark.parametrize("shape", [(100, 60), (30, 20), (1, 5)])
def test_small_images_are_padded_by_reflection_not_black(shape):
    h, w = shape
    image = np.full((h, w, 3), 200, np.uint8)
    image[:, : max(1, w // 3)] = 120
    mask = np.zeros((h, w), bool)
    mask[:, : max(1, w // 3)] = True
    img, m = ReflectPadToSize(128)(*to_tv_tensors(image, mask))
    assert img.shape[-2:] == m.shape[-2:] == (max(h, 128), max(w, 128))
    assert int(img.min()) >= 120, "black padding: a false dark edge"
    # the label is padded with the same reflection as the image
    assert torch.equal(img[0] == 120, m[0] > 0)


def test_training_crops_never_show_black_bands():
    torch.manual_seed(0)
    t = train_transforms(256, "crop", (0.5, 0.8), jitter=0.0)
    image = np.full((200, 300, 3), 180, np.uint8)
    for _ in range(10):
        img, _ = t(*to_tv_tensors(image, np.zeros((200, 300), bool)))
        assert img.shape[-2:] == (256, 256) and int(img.min()) > 100


def test_pasted_distractors_change_background_only():
    torch.manual_seed(3)
    t = train_transforms(128, "crop", (1.0, 1.0), jitter=0.0, paste=1.0)
    image = np.full((128, 128, 3), 128, np.uint8)
    mask = np.zeros((128, 128), bool)
    mask[60:64, :] = True
    changed = 0
    for _ in range(4):
        img, m = t(*to_tv_tensors(image, mask))
        crack = m[0] > 0
        assert int(crack.sum()) == 4 * 128  # the label is untouched (flips/rotations move it whole)
        assert bool((img[:, crack] == 128).all()), "a pasted distractor overwrote crack pixels"
        changed += int((img[:, ~crack] != 128).any(0).sum())
    assert changed > 0
