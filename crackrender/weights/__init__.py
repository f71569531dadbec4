"""The model shipped inside the package (see MODEL.md): half-precision safetensors, read without
executing code, so ``crackrender segment photo.jpg`` works offline with no model argument."""

from __future__ import annotations

import os
from pathlib import Path

from crackrender.errors import CrackRenderError

DEFAULT_MODEL_NAME = "cbprn-light.safetensors"
SHIPPED = "shipped"  # what benchmarks take on their command line for the packaged model


def default_model_path() -> Path:
    """Path of the shipped model; a one-line error if the installation lacks it."""
    path = Path(__file__).with_name(DEFAULT_MODEL_NAME)
    if not path.is_file():
        raise CrackRenderError(f"the shipped model {path} is missing from this installation; "
                               f"reinstall crackrender or pass --checkpoint MODEL")
    return path


def model_path(name: str | os.PathLike | None) -> Path | None:
    """The model file ``name`` stands for: None for the shipped model (``None`` or 'shipped'),
    which ``Segmenter.from_checkpoint`` and ``load_model`` read as the packaged file."""
    return None if name is None or str(name) == SHIPPED else Path(name)


def model_label(name: str | os.PathLike | None) -> str:
    """A short name for tables: 'shipped', or the model file's name."""
    path = model_path(name)
    return SHIPPED if path is None else path.name
