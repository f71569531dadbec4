"""Segmentation models and their registry: ``create_model("cbprn", backbone="resnet18")``."""

from crackrender.models.base import Prediction, SegmentationModel
from crackrender.models.cbprn import CBPRN
from crackrender.models.registry import MODELS, create_model

__all__ = ["CBPRN", "MODELS", "Prediction", "SegmentationModel", "create_model"]
