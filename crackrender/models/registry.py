"""A plain dict of model builders, and ``create_model``: the one place that turns a model's name and
settings (from a config file, a model file or the command line) into a model or an InputError."""

from __future__ import annotations

import difflib
import inspect

from crackrender.checks import choice
from crackrender.errors import InputError
from crackrender.models.base import SegmentationModel
from crackrender.models.cbprn import CBPRN
from crackrender.models.conv_decoder import ConvDecoderNet
from crackrender.models.pointrend import PointRend
from crackrender.models.unet import UNet

# the paper's network and its baselines (Table 1: conv_decoder; Table 3: pointrend), and the plain
# UNet every trained model is compared with (MODEL.md)
MODELS: dict[str, type[SegmentationModel]] = {"cbprn": CBPRN, "pointrend": PointRend, "conv_decoder": ConvDecoderNet,
                                              "unet": UNet}


def _unknown_settings(name: str, settings: dict) -> str | None:
    accepted = inspect.signature(MODELS[name]).parameters
    unknown = [key for key in settings if key not in accepted]
    if not unknown:
        return None
    close = difflib.get_close_matches(unknown[0], accepted, n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; it takes {', '.join(accepted)}"
    return f"model {name!r} has no setting {', '.join(map(repr, unknown))}{hint}"


def create_model(name: str = "cbprn", **settings) -> SegmentationModel:
    """Build a registered model by name with keyword overrides of its defaults.

    Every bad setting (an unknown name, a number out of range, an unknown choice) raises an
    InputError naming the model, which the command line prints as one line.

    Examples:
        >>> create_model("cbprn", backbone="resnet18").config["backbone"]
        'resnet18'
        >>> create_model("cbprn", alpha=0.9)
        Traceback (most recent call last):
        crackrender.errors.InputError: model 'cbprn': need 0 <= alpha < beta <= 1, got alpha=0.9, beta=0.7
    """
    choice(name, "model", sorted(MODELS))
    problem = _unknown_settings(name, settings)
    if problem:
        raise InputError(problem)
    try:
        return MODELS[name](**settings)
    except InputError as exc:
        raise InputError(f"model {name!r}: {exc}") from None
