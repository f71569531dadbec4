"""Segmentation models and their registry: ``create_model("cbprn", backbone="resnet18")``, and the
paper's baselines ``create_model("pointrend", coarse="unet")`` and ``create_model("conv_decoder")``."""

from crackrender.models.base import Prediction, SegmentationModel
from crackrender.models.cbprn import CBPRN
from crackrender.models.conv_decoder import ConvDecoderNet
from crackrender.models.encoder import EncoderOptions
from crackrender.models.pointrend import PointRend
from crackrender.models.registry import MODELS, create_model

__all__ = ["CBPRN", "MODELS", "ConvDecoderNet", "EncoderOptions", "PointRend", "Prediction", "SegmentationModel",
           "create_model"]
