"""The original PointRend (Kirillov et al. 2020) guided by a coarse network: the baseline of the
paper's Table 3. Training points are chosen by the coarse mask's uncertainty, inference is
subdivision; CBPRN replaces both (label-driven strata, the [alpha, beta] rule on its heatmap).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

from crackrender.checks import in_range, positive_int
from crackrender.errors import InputError
from crackrender.models.base import (Prediction, SegmentationModel, Stopwatch, check_images, coarse_only,
                                     crop_to_image, pad_to_multiple)
from crackrender.models.coarse_nets import build_coarse_net
from crackrender.models.heads import PointHead
from crackrender.ops import point_sample, subdivision_inference, uncertain_training_points
from crackrender.ops.subdivision import SUBDIVISION_POINTS


class PointRend(SegmentationModel):
    """A coarse network (``coarse``: fcn, unet, deeplabv3plus, pspnet, refinenet) plus PointRend's
    point head on its stride-4 encoder features and the coarse logit.

    Images are reflect-padded to ``pad_multiple`` and everything is cropped back, so any size
    works. With ``coarse_long_edge`` set, ``predict`` runs the coarse network on the image scaled
    down to that long edge (Table 3's setting, 900) and the point head refines up to full size.

    Examples:
        >>> model = PointRend(coarse="pspnet", backbone="resnet18", point_hidden=32).eval()
        >>> out = model.predict(torch.rand(1, 3, 67, 93))
        >>> tuple(out.mask.shape), out.mask.dtype
        ((1, 67, 93), torch.bool)
    """

    name = "pointrend"

    def __init__(self, *, coarse: str = "unet", backbone: str = "resnet50", pretrained: bool = False,
                 point_hidden: int = 256, point_layers: int = 3, train_points: int = 2048,
                 oversample: float = 3.0, importance: float = 0.75, subdivision_points: int = SUBDIVISION_POINTS,
                 coarse_long_edge: int | None = None, pad_multiple: int = 32):
        super().__init__()
        self.train_points = positive_int(train_points, "train_points")
        self.subdivision_points = positive_int(subdivision_points, "subdivision_points")
        self.oversample = in_range(oversample, "oversample", 1)
        self.importance = in_range(importance, "importance", 0, 1)
        self.coarse_long_edge = None if coarse_long_edge is None else positive_int(coarse_long_edge, "coarse_long_edge")
        # every coarse net needs sides divisible by its deepest stride, 32
        self.pad_multiple = positive_int(pad_multiple, "pad_multiple")
        if pad_multiple % 32:
            raise InputError(f"pad_multiple must be a multiple of 32 (the encoders' stride), got {pad_multiple}")
        self.coarse_net = build_coarse_net(kind=coarse, backbone=backbone, pretrained=pretrained)
        self.point_head = PointHead(in_dim=self.coarse_net.fine_channels,
                                    hidden=positive_int(point_hidden, "point_hidden"),
                                    num_layers=positive_int(point_layers, "point_layers"))

    def forward(self, images: torch.Tensor) -> dict:
        """images (B,3,H,W) in [0,1] -> {"coarse": logits covering exactly the image at the coarse
        net's stride, "padded_coarse" and "fine": the maps of the padded input, "extent": the
        image's (x, y) share of the padded input}."""
        check_images(images)
        x, (h, w) = pad_to_multiple(self.normalize(images), self.pad_multiple)
        hp, wp = x.shape[-2:]
        coarse, fine = self.coarse_net(x)
        return {"coarse": crop_to_image(coarse, (h, w), (hp, wp)), "padded_coarse": coarse, "fine": fine,
                "extent": (w / wp, h / hp)}

    def point_logits(self, out: dict, coords: torch.Tensor) -> torch.Tensor:
        """Point-head logits (B,P) at (B,P,2) coordinates normalised to the image (not the pad)."""
        fine = out["fine"]
        # float32 coordinates: in bf16 a 2K image's points would move by several pixels
        coords = coords.float() * torch.tensor(out["extent"], device=fine.device)
        fine_at = point_sample(fine, coords)
        coarse_at = point_sample(out["padded_coarse"], coords)
        return self.point_head(fine_at, coarse_at.to(fine_at.dtype))

    def training_outputs(self, images, masks, generator=None) -> dict:
        """Coarse logits, and point logits/labels at PointRend's uncertainty-driven training points
        (labels: the mask at each point, nearest pixel)."""
        out = self(images)
        coords = uncertain_training_points(out["coarse"], self.train_points, self.oversample, self.importance,
                                           generator=generator)
        out["point_logits"] = self.point_logits(out, coords)
        labels = point_sample(masks.float(), coords, mode="nearest")[..., 0]
        out["point_labels"] = (labels > 0.5).float()
        return out

    def _coarse_input(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        if self.coarse_long_edge is None or max(h, w) <= self.coarse_long_edge:
            return images  # scale down only: a small image gains nothing from upsampling
        s = self.coarse_long_edge / max(h, w)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, refine: bool = True, timings: dict | None = None) -> Prediction:
        """Full-resolution mask. ``refine=True``: subdivision inference from the coarse logits
        (``subdivision_points`` per x2 step); ``refine=False``: the coarse logits upsampled
        (bilinear), to score the coarse network alone."""
        check_images(images)
        rule = partial(subdivision_inference, num_points=self.subdivision_points) if refine else coarse_only
        with Stopwatch(timings)("coarse", images.device):
            out = self(self._coarse_input(images))
        with Stopwatch(timings if refine else None)("point_refinement", images.device):
            logits, counts = rule(out["coarse"], partial(self.point_logits, out), images.shape[-2:])
        return Prediction.from_logits(logits, counts)
