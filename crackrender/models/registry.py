"""A plain dict of model builders: no import-time side effects."""

from __future__ import annotations

from crackrender.errors import CrackRenderError
from crackrender.models.base import SegmentationModel
from crackrender.models.cbprn import CBPRN
from crackrender.models.conv_decoder import ConvDecoderNet
from crackrender.models.pointrend import PointRend

# the paper's network and its baselines (Table 1: conv_decoder; Table 3: pointrend)
MODELS: dict[str, type[SegmentationModel]] = {"cbprn": CBPRN, "pointrend": PointRend, "conv_decoder": ConvDecoderNet}


def create_model(name: str = "cbprn", **kwargs) -> SegmentationModel:
    """Build a registered model by name with keyword overrides of its defaults.

    Examples:
        >>> create_model("cbprn", backbone="resnet18").config["backbone"]
        'resnet18'
    """
    if name not in MODELS:
        raise CrackRenderError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](**kwargs)
    except TypeError as exc:
        raise CrackRenderError(f"bad arguments for model {name!r}: {exc}") from None
