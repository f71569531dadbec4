"""Model files made by crackrender before issue 11's refactor, kept as small manifests.

Even the tiniest model has a ResNet18 (11M parameters, 22 MB in fp16), so the files themselves are
not committed. Instead every weight is a pure function of its key, shape and dtype
(:func:`synthetic_state`), and ``<kind>.json`` records what the old ``save_model`` wrote: the
safetensors metadata (the model config as old code serialised it), every key with its shape and
dtype, and a digest of the file. :func:`write_model_file` rebuilds the same file (the test checks
the digest), so loading it exercises new code on a file old code made. ``<kind>.npz`` holds
old code's ``predict`` output on :func:`legacy_input` (refined and coarse-only prob maps).

Run from the repository root, with the code of before the change::

    .venv/bin/python tests/data/legacy_models/make.py
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
INPUT_SIZE = (45, 61)  # odd on both sides: exercises padding and cropping

# tests/conftest.py's TINY_CBPRN at the time of the change (copied so the data never drifts)
TINY_CBPRN = dict(backbone="resnet18", edge_dim=16, edge_heads=2, window=4, fpn_dim=32, feature_dim=32,
                  heatmap_dim=16, point_hidden=32)
TINY_DECODER = {k: v for k, v in TINY_CBPRN.items() if k not in ("heatmap_dim", "point_hidden")}
TINY_POINTREND = dict(backbone="resnet18", point_hidden=32, train_points=64, subdivision_points=256)
KINDS = {
    "cbprn": ("cbprn", TINY_CBPRN),
    "cbprn-coarse_mask": ("cbprn", {**TINY_CBPRN, "guidance": "coarse_mask", "subdivision_points": 300}),
    "conv_decoder": ("conv_decoder", TINY_DECODER),
    **{f"pointrend-{c}": ("pointrend", {**TINY_POINTREND, "coarse": c})
       for c in ("fcn", "unet", "deeplabv3plus", "pspnet", "refinenet")},
    "pointrend-unet-long_edge": ("pointrend", {**TINY_POINTREND, "coarse": "unet", "coarse_long_edge": 32}),
}
SHIPPED_INPUT_SIZE = (37, 53)


def synthetic_value(key: str, shape: list[int], dtype: str) -> torch.Tensor:
    """A deterministic tensor for state-dict entry ``key``: seeded by the key's CRC32, scaled like
    an initialisation (fan-in for weights, around 1 for norms and variances) so activations stay
    finite through a deep network.

    Examples:
        >>> bool(torch.equal(synthetic_value("a.weight", [3, 4], "float32"), synthetic_value("a.weight", [3, 4], "float32")))
        True
        >>> float(synthetic_value("bn.running_var", [5], "float32").min()) > 0
        True
    """
    if dtype == "int64":
        return torch.zeros(shape, dtype=torch.int64)  # num_batches_tracked
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    noise = torch.randn(shape, generator=g, dtype=torch.float64)
    if key.endswith("running_var"):
        value = 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
    elif key.endswith("weight") and len(shape) == 1:
        value = 1 + 0.1 * noise
    elif len(shape) >= 2 and key.endswith("weight"):
        value = noise / np.sqrt(max(1, int(np.prod(shape[1:]))))
    else:
        value = 0.1 * noise
    return value.to(getattr(torch, dtype))


def synthetic_state(manifest: dict) -> dict[str, torch.Tensor]:
    return {k: synthetic_value(k, shape, dtype) for k, (shape, dtype) in manifest["tensors"].items()}


def file_digest(data: bytes) -> str:
    """SHA-256 of a safetensors file's header (keys sorted: safetensors writes its metadata in
    hash-map order, which varies between runs) and tensor bytes."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8:8 + n]), sort_keys=True).encode()
    return hashlib.sha256(header + data[8 + n:]).hexdigest()


def write_model_file(manifest: dict, path: Path) -> str:
    """Rebuild the legacy model file at ``path``; return its :func:`file_digest`."""
    from safetensors.torch import save

    data = save(synthetic_state(manifest), metadata=manifest["metadata"])
    path.write_bytes(data)
    return file_digest(data)


def legacy_input(size: tuple[int, int] = INPUT_SIZE, seed: int = 11) -> torch.Tensor:
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed))


def crack_input(size: tuple[int, int] = SHIPPED_INPUT_SIZE, seed: int = 11) -> torch.Tensor:
    """Grey noisy concrete with a dark 3-pixel curve: something the shipped model finds a crack in."""
    h, w = size
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    centre = h / 2 + h / 5 * torch.sin(cols / w * 6.0)
    crack = ((rows - centre).abs() <= 1.5).float()
    noise = 0.05 * torch.randn(3, h, w, generator=torch.Generator().manual_seed(seed))
    return (0.6 - 0.4 * crack + noise).clamp(0, 1)[None]


def predictions(model, x: torch.Tensor) -> dict[str, np.ndarray]:
    refined, coarse = model.predict(x), model.predict(x, refine=False)
    out = {"prob": refined.prob.numpy(), "refined_points": np.array(refined.refined_points),
           "coarse_prob": coarse.prob.numpy()}
    if getattr(model, "guidance", None) == "heatmap":  # CBPRN's [alpha, beta] rule, a narrower band
        narrow = model.predict(x, alpha=0.55, beta=0.65)
        out |= {"narrow_prob": narrow.prob.numpy(), "narrow_refined_points": np.array(narrow.refined_points)}
    return out


def make_one(kind: str, folder: Path) -> None:
    from safetensors import safe_open

    from crackrender.checkpoint import load_model, save_model
    from crackrender.models import create_model

    name, kwargs = KINDS[kind]
    model = create_model(name, **kwargs)
    shapes = {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()}
    model.load_state_dict(synthetic_state({"tensors": shapes}))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{kind}.safetensors"
        save_model(path, model, info={"legacy": kind})
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
        manifest = {"kind": kind, "metadata": metadata, "tensors": shapes,
                    "digest": file_digest(path.read_bytes())}
        assert write_model_file(manifest, Path(tmp) / "again.safetensors") == manifest["digest"], "not reproducible"
        torch.manual_seed(0)
        out = predictions(load_model(path), legacy_input())
    (folder / f"{kind}.json").write_text(json.dumps(manifest, indent=1) + "\n")
    np.savez_compressed(folder / f"{kind}.npz", **out)
    print(f"{kind}: {len(shapes)} tensors, {int(out['refined_points'][0])} points refined")


def make_shipped(folder: Path) -> None:
    from crackrender.checkpoint import load_model
    from crackrender.weights import default_model_path

    out = predictions(load_model(default_model_path()), crack_input())
    np.savez_compressed(folder / "shipped.npz", **out)
    print(f"shipped: {int(out['refined_points'][0])} points refined, {int((out['prob'] > 0.5).sum())} crack px")


def main() -> None:
    torch.set_num_threads(1)
    for kind in KINDS:
        make_one(kind, HERE)
    make_shipped(HERE)


if __name__ == "__main__":
    sys.exit(main())
