import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Two cores here: keep torch from oversubscribing; OMP_NUM_THREADS=1 when something else
# (a training run) is busy, since two spinning OpenMP threads on busy cores are ~30x slower.
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))

# A CBPRN small enough for quick CPU tests (resnet18, 16-32 channels, window 4).
TINY_CBPRN = dict(backbone="resnet18", edge_dim=16, edge_heads=2, window=4, fpn_dim=32, feature_dim=32,
                  heatmap_dim=16, point_hidden=32)


def tiny(**overrides):
    """A TINY_CBPRN model (overrides replace its settings), seeded: the same weights every call."""
    from crackrender.models import create_model

    torch.manual_seed(0)
    return create_model("cbprn", **{**TINY_CBPRN, **overrides})


def images(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path to a dataset in ../shared/data, or skip: a user's clone does not have it."""
    root = SHARED_DATA / name
    if not root.is_dir():
        pytest.skip(f"{root} is absent (research-licensed data lies beside the project only on CI/dev machines)")
    return root


def write_pair_dataset(root: Path, masks: dict[str, np.ndarray], splits: dict[str, list[str]] | None = None,
                       image_size_override: dict[str, tuple[int, int]] | None = None) -> Path:
    """A tiny dataset in the project layout: image = mask drawn dark on grey, masks as 0/255 PNG."""
    import cv2

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for stem, mask in masks.items():
        h, w = (image_size_override or {}).get(stem, mask.shape)
        image = np.full((h, w, 3), 180, np.uint8)
        if (h, w) == mask.shape:
            image[mask] = 40
        cv2.imwrite(str(root / "images" / f"{stem}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{stem}.png"), mask.astype(np.uint8) * 255)
    for name, stems in (splits or {}).items():
        (root / f"{name}.txt").write_text("\n".join(stems) + "\n")
    return root


def line_mask(h: int = 64, w: int = 96, row: int | None = None, thickness: int = 3) -> np.ndarray:
    mask = np.zeros((h, w), bool)
    r = h // 2 if row is None else row
    mask[r - thickness // 2 : r - thickness // 2 + thickness, 5 : w - 5] = True
    return mask


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """A TINY_CBPRN model file (seeded weights), shared by the tests that segment through files."""
    from crackrender.checkpoint import save_model

    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_model(path, tiny())
    return path
