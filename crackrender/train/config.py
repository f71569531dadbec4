"""Experiment configs: YAML files merged over defaults, with ``a.b=value`` overrides."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

from crackrender.errors import CrackRenderError

# The paper's recipe (docs/design.md, "The paper") unless a config says otherwise. ``model`` is free-form:
# its keys are the keyword arguments of the registered model and create_model checks them.
DEFAULTS: dict = {
    "name": "cbprn",
    "seed": 0,
    "model": {"name": "cbprn"},
    "init": None,               # model file (.safetensors or .ckpt) whose weights start training: fine-tuning
    "data": {
        "train": [],            # [{root: DIR, split: train, share: 1}, ...]; relative roots are from the working
                                # directory; with balance, each entry gets its share of the draws
        "val": [],
        "size": 256,            # training sample side
        "mode": "resize",       # resize (paper) or crop (native scale, random zoom in `scale`)
        "scale": [0.5, 1.5],
        "jitter": 0.3,
        "balance": True,        # draw each training dataset equally often
        "paste_distractors": 0.0,  # probability of pasting synthetic paint/joints/shadows into a sample's background
        "paste_families": "all",   # which distractor families the paste draws from ("all" or "a,b,...")
        "paste_most": 2,           # a pasted sample gets one to this many of them
        "samples_per_epoch": None,  # default: the size of the training set
        "batch_size": 16,
        "num_workers": 2,
        "val_size": None,       # None: validate at native resolution
        "val_limit": None,      # at most this many validation images per dataset
    },
    "loss": {"heatmap_bce": 1.0, "heatmap_dice": 1.0, "points": 1.0},
    "optim": {"name": "adam", "lr": 0.01, "weight_decay": 1e-4, "warmup_epochs": 100, "poly_power": 0.9},
    "trainer": {
        "max_epochs": 1000,
        "max_time": None,       # "DD:HH:MM:SS" wall-clock cap
        "precision": "auto",  # auto: 16-mixed on a GPU, bf16-mixed on a CPU with native bf16, else 32-true
        "accelerator": "auto",
        "devices": "auto",
        "num_nodes": 1,
        "strategy": "auto",
        "check_val_every_n_epoch": 1,
        "log_every_n_steps": 10,
        "checkpoint_every_n_steps": None,  # also save last.ckpt every N steps (long epochs)
        "select_by": "miou",    # validation value (max) that picks model-best: miou (pooled) or
                                # dataset_mean_f1 (each val dataset's F1, averaged: small sets count)
        "channels_last": True,
        "threads": None,        # torch CPU threads
        "progress": True,
        "limit_train_batches": None,
    },
    "out": "runs",
}


# validation values that can pick a run's best model (all higher is better)
SELECT_BY = ("miou", "f1", "dataset_mean_f1")


def _merge(base: dict, update: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if not where.startswith("model") and key not in base:
            raise CrackRenderError(f"unknown config key {where + '.' if where else ''}{key}")
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, f"{where}.{key}" if where else key)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """``trainer.max_epochs=5`` -> {"trainer": {"max_epochs": 5}} (the value is parsed as YAML)."""
    if "=" not in text:
        raise CrackRenderError(f"override must look like key.sub=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value) if value else None
    except yaml.YAMLError as exc:
        raise CrackRenderError(f"cannot parse override value {value!r}: {exc}") from None
    out: dict = parsed
    for part in reversed(key.strip().split(".")):
        out = {part: out}
    return out


def read_config_file(path: str | os.PathLike) -> dict:
    """A YAML config file's mapping of sections, or a one-line error."""
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise CrackRenderError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CrackRenderError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(loaded, dict):
        raise CrackRenderError(f"{path} must hold a mapping of config sections")
    return loaded


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """DEFAULTS, then the YAML file (after the files it is based on, ``base:``), then each override in order.

    A layer that names another model (``model.name``) starts the model section afresh, so keywords of
    the earlier model are dropped; give the new model's keywords after its name."""
    config = copy.deepcopy(DEFAULTS)
    layers = _file_layers(Path(path)) if path is not None else []
    for layer in [*layers, *(parse_override(text) for text in overrides)]:
        if _renames_model(config, layer):
            # the new model brings its own keywords; the earlier one's (a CBPRN's edge_dim for a UNet)
            # must not leak, whether the rename comes from a file or from model.name=... on the command line
            config["model"] = {}
        config = _merge(config, layer, "")
    _validate(config)
    return config


def _file_layers(path: Path, seen: tuple[Path, ...] = ()) -> list[dict]:
    """The config file and the files it is based on (``base: other.yaml``, relative to the file),
    base first: each later file's keys replace the earlier's, mappings key by key, lists whole."""
    key = path.resolve()
    if key in seen:
        raise CrackRenderError(f"config {path}: its base chain loops back to {path.name}")
    layer = read_config_file(path)
    base = layer.pop("base", None)
    if base is None:
        return [layer]
    if not isinstance(base, str) or not base:
        raise CrackRenderError(f"config {path}: base must name a YAML file, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise CrackRenderError(f"config {path}: its base {base_path} does not exist")
    return [*_file_layers(base_path, (*seen, key)), layer]


def _renames_model(config: dict, layer: dict) -> bool:
    model = layer.get("model")
    return isinstance(model, dict) and "name" in model and model["name"] != config["model"].get("name")


def _validate(config: dict) -> None:
    data = config["data"]
    for part in ("train", "val"):
        entries = data[part]
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "root" in e for e in entries):
            raise CrackRenderError(f"data.{part} must be a list of {{root: DIR, split: NAME}} entries")
    for entry in data["train"]:
        share = entry.get("share", 1.0)
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not share >= 0:
            raise CrackRenderError(f"data.train share must be a number >= 0, got {share!r} for {entry['root']}")
    if config["trainer"]["select_by"] not in SELECT_BY:
        raise CrackRenderError(f"trainer.select_by must be one of {', '.join(SELECT_BY)}, "
                               f"got {config['trainer']['select_by']!r}")
    _validate_paste(data)
    if data["mode"] not in ("resize", "crop"):
        raise CrackRenderError(f"data.mode must be resize or crop, got {data['mode']!r}")
    if config["optim"]["name"] not in ("adam", "adamw", "sgd"):
        raise CrackRenderError(f"optim.name must be adam, adamw or sgd, got {config['optim']['name']!r}")


def _validate_paste(data: dict) -> None:
    from crackrender.data.distractors import parse_families

    p = data["paste_distractors"]
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise CrackRenderError(f"data.paste_distractors must be a probability in [0, 1], got {p!r}")
    try:
        families = parse_families(data["paste_families"])
    except (ValueError, AttributeError, TypeError) as exc:
        raise CrackRenderError(f"data.paste_families: {exc}") from None
    if p > 0 and not families:
        raise CrackRenderError("data.paste_families names no family, but data.paste_distractors > 0")
    most = data["paste_most"]
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        raise CrackRenderError(f"data.paste_most must be a whole number >= 1, got {most!r}")
