"""The model shipped inside the package (see MODEL.md): half-precision safetensors, read without
executing code, so ``crackrender segment photo.jpg`` works offline with no model argument."""

from __future__ import annotations

from pathlib import Path

from crackrender.errors import CrackRenderError

DEFAULT_MODEL_NAME = "cbprn-light.safetensors"


def default_model_path() -> Path:
    """Path of the shipped model; a one-line error if the installation lacks it."""
    path = Path(__file__).with_name(DEFAULT_MODEL_NAME)
    if not path.is_file():
        raise CrackRenderError(f"the shipped model {path} is missing from this installation; "
                               f"reinstall crackrender or pass --checkpoint MODEL")
    return path
