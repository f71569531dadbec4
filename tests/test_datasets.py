import numpy as np
import pytest
import torch

from conftest import line_mask, shared_dataset, write_pair_dataset
from crackrender.data import CompositeDataset, CrackDataset, ImageFolderDataset, eval_transforms, train_transforms
from crackrender.errors import InputError


@pytest.fixture()
def tiny(tmp_path):
    masks = {f"s{i}": line_mask(row=10 + 8 * i) for i in range(5)}
    return write_pair_dataset(tmp_path / "tiny", masks, {"train": ["s0", "s1", "s2"], "val": ["s3", "s4"]})


def test_split_and_sample_shapes(tiny):
    ds = CrackDataset(tiny, "train")
    assert len(ds) == 3 and len(CrackDataset(tiny, "val")) == 2 and len(CrackDataset(tiny, None)) == 5
    s = ds[1]
    assert s["stem"] == "s1"
    assert s["image"].shape == (3, 64, 96) and s["image"].dtype == torch.float32
    assert s["mask"].shape == (1, 64, 96)
    assert set(s["mask"].unique().tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(s["mask"][0].numpy() > 0, line_mask(row=18))


def test_missing_split_mask_and_size_mismatch(tmp_path, tiny):
    with pytest.raises(InputError, match="test.txt"):
        CrackDataset(tiny, "test")
    (tiny / "masks" / "s4.png").unlink()
    with pytest.raises(InputError, match="no mask file for stem 's4'"):
        CrackDataset(tiny, "val")
    bad = write_pair_dataset(tmp_path / "bad", {"a": line_mask()}, {"train": ["a"]},
                             image_size_override={"a": (60, 96)})
    with pytest.raises(InputError, match=r"a\.png.*96x64.*96x60"):
        CrackDataset(bad, "train")[0]


@pytest.mark.parametrize("mode", ["crop", "resize"])
def test_train_transforms_keep_mask_binary_and_aligned(tiny, mode):
    torch.manual_seed(0)
    # no zoom and no photometric jitter, so the dark pixels of the image must equal the mask exactly
    ds = CrackDataset(tiny, "train", transform=train_transforms(48, mode=mode, scale=(1.0, 1.0), jitter=0.0))
    for i in range(len(ds)):
        for _ in range(4):
            s = ds[i]
            assert s["image"].shape == (3, 48, 48) and s["mask"].shape == (1, 48, 48)
            assert set(s["mask"].unique().tolist()) <= {0.0, 1.0}
            if mode == "crop":
                dark = (s["image"].mean(0) < 0.4) & (s["image"].mean(0) > 0.05)
                assert torch.equal(dark, s["mask"][0] > 0)


def test_zoom_and_jitter_keep_mask_binary(tiny):
    torch.manual_seed(1)
    ds = CrackDataset(tiny, "train", transform=train_transforms(40, scale=(0.5, 2.0)))
    masks = torch.stack([ds[i % 3]["mask"] for i in range(12)])
    assert set(masks.unique().tolist()) == {0.0, 1.0}


def test_eval_transforms_native_and_fixed(tiny):
    assert eval_transforms(None) is None
    s = CrackDataset(tiny, "val", transform=eval_transforms(32))[0]
    assert s["image"].shape == (3, 32, 32) and set(s["mask"].unique().tolist()) <= {0.0, 1.0}


def test_composite_balanced_sampler_draws_datasets_equally(tmp_path, tiny):
    big = write_pair_dataset(tmp_path / "big", {f"b{i}": line_mask() for i in range(20)}, {"train": [f"b{i}" for i in range(20)]})
    comp = CompositeDataset([CrackDataset(tiny, "train"), CrackDataset(big, "train")])
    assert len(comp) == 23
    draws = torch.tensor(list(comp.balanced_sampler(4000, torch.Generator().manual_seed(0))))
    share_small = (draws < 3).float().mean().item()
    assert 0.45 < share_small < 0.55  # drawn uniformly it would be 3/23 = 0.13
    weighted = torch.tensor(list(comp.balanced_sampler(4000, torch.Generator().manual_seed(0), shares=[1, 3])))
    assert 0.22 < (weighted < 3).float().mean().item() < 0.28  # a quarter for share 1 against 3
    with pytest.raises(InputError, match="share"):
        comp.sample_weights([1.0])


def test_image_folder_dataset(tmp_path, tiny):
    ds = ImageFolderDataset([tiny / "images", tiny / "images" / "s0.png"])
    assert len(ds) == 6 and "mask" not in ds[0] and ds[0]["image"].shape == (3, 64, 96)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        ImageFolderDataset(tmp_path / "empty")
    with pytest.raises(InputError, match="no such file"):
        ImageFolderDataset(tmp_path / "nothing")


def test_real_dataset_splits():
    root = shared_dataset("deepcrack537")
    ds = CrackDataset(root, "train")
    assert len(ds) == 270
    s = ds[0]
    assert s["image"].shape[1:] == s["mask"].shape[1:] == (384, 544)
    assert 0 < s["mask"].mean() < 0.3
