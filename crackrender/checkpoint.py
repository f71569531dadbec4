"""Model files: safetensors with the model's config in the metadata, so loading never executes
code and always rebuilds the architecture the weights were trained with."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from crackrender.errors import CrackRenderError, InputError
from crackrender.io import atomic_write_bytes
from crackrender.models import SegmentationModel, create_model

FORMAT = "crackrender-model/1"


def save_model(path: str | os.PathLike, model: SegmentationModel, *, half: bool = False, info: dict | None = None) -> Path:
    """Write ``model``'s weights and config atomically; ``half`` stores float tensors as float16.
    A model set up for inference (its BatchNorm folded, :func:`crackrender.inference.prepare_model`)
    is refused: its state dict no longer matches its architecture."""
    from safetensors.torch import save

    from crackrender.inference import is_folded

    if is_folded(model):
        raise CrackRenderError("cannot save a model whose BatchNorm was folded for inference: save the model "
                               "as loaded or trained")

    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value.contiguous()
    meta = {"format": FORMAT, "config": json.dumps(model.config), "info": json.dumps(info or {}, default=str)}
    return atomic_write_bytes(path, save(state, metadata=meta))


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(model config, state dict, info) from a ``.safetensors`` model file or a Lightning ``.ckpt``
    (read with ``weights_only=True``: plain tensors and containers, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise CrackRenderError(f"checkpoint not found: {path}")
    if path.suffix == ".ckpt":
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            config = ckpt["hyper_parameters"]["config"]["model"]
            state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        except Exception as exc:
            raise CrackRenderError(f"{path} is not a crackrender training checkpoint ({type(exc).__name__}: {exc})") from None
        return dict(config), state, {"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")}
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CrackRenderError(f"{path} is not a readable safetensors model file ({exc})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CrackRenderError(f"{path} has no crackrender model config in its metadata (format {meta.get('format')!r})")
    try:
        return json.loads(meta["config"]), state, json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError as exc:
        raise CrackRenderError(f"{path}: the model config in its metadata is not valid JSON ({exc})") from None


def load_state(model: SegmentationModel, state: dict[str, torch.Tensor], source: str = "checkpoint", *,
               extensions: bool = False) -> list[str]:
    """Strict load with a one-line explanation of any mismatch instead of PyTorch's wall of keys.

    ``extensions``: the model may hold parameters the file lacks if the model starts them at
    zero (an added input whose projection starts as a no-op, e.g. CBPRN's ``point_fine``), so a
    fine-tuning run can start from a file made without them. Returns those keys."""
    own = model.state_dict()
    new = sorted(k for k in set(own) - set(state) if extensions and not own[k].any())
    missing = sorted(set(own) - set(state) - set(new))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[0]})")
        raise CrackRenderError(f"{source} does not match the {model.config['name']} architecture "
                               f"{_describe(model.config)}: {', '.join(parts)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=not new)
    return new


def _describe(config: dict) -> str:
    keys = ("backbone", "edge_dim", "feature_dim", "point_hidden")
    return "(" + ", ".join(f"{k}={config[k]}" for k in keys if k in config) + ")"


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu", **overrides) -> SegmentationModel:
    """Rebuild the model saved in ``path`` and load its weights; ``overrides`` change inference
    settings (alpha, beta, point_chunk) or, if they change the architecture, fail clearly.

    Examples:
        >>> model = load_model("model.safetensors")  # doctest: +SKIP
        >>> pred = model.predict(images)  # doctest: +SKIP
    """
    return load_model_and_info(path, device=device, **overrides)[0]


def load_model_and_info(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        **overrides) -> tuple[SegmentationModel, dict]:
    """:func:`load_model` and the file's info (card numbers, threshold, whether it is float16:
    ``info["half"]``), from one read of the file."""
    config, state, info = read_checkpoint(path)
    config = {**config, **overrides, "pretrained": False}  # weights come from the file
    try:
        model = create_model(**config)
    except InputError as exc:  # e.g. alpha >= beta given as an override
        raise InputError(f"cannot build the model of {path}: {exc}") from None
    load_state(model, state, source=str(path))
    half = any(v.is_floating_point() and v.dtype.itemsize == 2 for v in state.values())
    return model.to(device).eval(), {**info, "half": half}
