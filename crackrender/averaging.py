"""The even mean of several models' weights, one file out (how v4 was made: MODEL.md, "Recipe").

Two runs that start from one model and part a little (a fine-tuning stage and its start) sit in
one basin of the loss, so the mean of their weights is a model in its own right that often keeps
what each is good at. A weight-space mean of unrelated runs is not: the models must share an
architecture, and should share an ancestor.
"""

from __future__ import annotations

import os
from pathlib import Path

from crackrender.checkpoint import read_checkpoint, save_model
from crackrender.errors import CrackRenderError
from crackrender.models import create_model


def average_models(paths: list[str | os.PathLike], out: str | os.PathLike, *, half: bool = False) -> Path:
    """Write to ``out`` the model whose float tensors are the even mean of those in ``paths``.

    Integer buffers (BatchNorm's step counters) are the last file's. No decision threshold is
    carried over: a mean needs its own (``crackrender calibrate``)."""
    if len(paths) < 2:
        raise CrackRenderError(f"averaging needs two or more model files, got {len(paths)}")
    config, total, _ = read_checkpoint(paths[0])
    total = {k: v.double() if v.is_floating_point() else v for k, v in total.items()}
    for path in paths[1:]:
        other_config, state, _ = read_checkpoint(path)
        if other_config != config:
            raise CrackRenderError(f"{path} is another architecture than {paths[0]} ({_difference(config, other_config)}): "
                                   "only models of one architecture can be averaged")
        if set(state) != set(total) or any(state[k].shape != total[k].shape for k in state):
            raise CrackRenderError(f"{path} holds other tensors than {paths[0]}: not the same architecture")
        for key, value in state.items():
            total[key] = total[key] + value.double() if value.is_floating_point() else value
    model = create_model(**{**config, "pretrained": False})
    own = model.state_dict()
    model.load_state_dict({k: (v / len(paths)).to(own[k].dtype) if v.is_floating_point() else v
                           for k, v in total.items()})
    info = {"model": f"even mean of the weights of {len(paths)} models",
            "averaged_from": [Path(p).name for p in paths]}
    return save_model(out, model, half=half, info=info)


def _difference(a: dict, b: dict) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:3])
