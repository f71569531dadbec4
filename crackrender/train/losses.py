"""Training losses (docs/design.md, "Our readings"): BCE + Dice on the heatmap against the full-resolution
label, and BCE on the point head's predictions at the sampled points. Weights in ``loss:``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per image, averaged; ``smooth`` keeps crack-free images finite."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = (2 * (p * t).sum(1) + smooth) / (p.sum(1) + t.sum(1) + smooth)
    return (1 - dice).mean()


def heatmap_logits_at(coarse: torch.Tensor, size) -> torch.Tensor:
    """Stride-4 heatmap logits upsampled to the label (bilinear): a 2 px crack would vanish if
    the label were downsampled to the heatmap instead."""
    return F.interpolate(coarse.float(), size=size, mode="bilinear", align_corners=False)


def segmentation_losses(outputs: dict, masks: torch.Tensor, weights: dict) -> dict[str, torch.Tensor]:
    """{"loss": weighted total, and each term} for a model's ``training_outputs``."""
    logits = heatmap_logits_at(outputs["coarse"], masks.shape[-2:])
    terms = {
        "heatmap_bce": F.binary_cross_entropy_with_logits(logits, masks.float()),
        "heatmap_dice": dice_loss(logits, masks.float()),
    }
    if "point_logits" in outputs:
        terms["points"] = F.binary_cross_entropy_with_logits(outputs["point_logits"].float(), outputs["point_labels"].float())
    terms["loss"] = sum(weights.get(k, 1.0) * v for k, v in terms.items())
    return terms
