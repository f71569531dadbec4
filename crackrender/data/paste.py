"""Copy-paste augmentation: draw synthetic distractors into real training crops, as background.

Public crack datasets hardly show lane paint, sawn joints or hard shadows, all of which field
models call crack. :class:`PasteDistractors` draws them (:mod:`crackrender.data.distractors`)
into a crop where its mask is background; crack pixels keep their values, so a crack crossing
paint stays a crack, and the mask is returned unchanged.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchvision import tv_tensors

from crackrender.data.distractors import apply_distractors, choose_families, parse_families

__all__ = ["PasteDistractors"]


class PasteDistractors(torch.nn.Module):
    """With probability ``p``, draw one to ``most`` of ``families`` into an (image, mask) pair.

    A v2-style transform: call it as ``t(image, mask)`` with a uint8 (3, H, W) image tensor and a
    (1, H, W) or (H, W) mask (nonzero = crack); returns ``(image, mask)``, the image a new tensor
    of the same type. Randomness comes from torch's generator, so worker seeding and resumed runs
    reproduce it; at ``p=0`` it draws nothing and returns its inputs.

    Examples:
        >>> image = tv_tensors.Image(torch.full((3, 64, 64), 128, dtype=torch.uint8))
        >>> mask = tv_tensors.Mask(torch.zeros(1, 64, 64, dtype=torch.uint8)); mask[0, 30:33, :] = 1
        >>> _ = torch.manual_seed(0)
        >>> out, same = PasteDistractors(p=1.0, families="sawn_joints")(image, mask)
        >>> same is mask, bool((out != image).any()), bool((out[:, 30:33] == 128).all())
        (True, True, True)
    """

    def __init__(self, p: float = 0.25, families: str | Sequence[str] = "all", density: float = 1.0, most: int = 2):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p}")
        if not (np.isfinite(density) and density >= 0) or most < 1:
            raise ValueError(f"need density >= 0 and most >= 1, got density={density}, most={most}")
        self.p, self.density, self.most = float(p), float(density), int(most)
        self.families = parse_families(families)
        if not self.families:
            raise ValueError("PasteDistractors needs at least one distractor family (or p=0)")

    def forward(self, *inputs):
        packed = len(inputs) == 1 and isinstance(inputs[0], (tuple, list))
        image, mask = inputs[0] if packed else inputs
        if self.p == 0 or float(torch.rand(())) >= self.p:
            return (image, mask)
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"PasteDistractors expects a uint8 (3, H, W) image, got {image.dtype} {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if mask.shape[-2:] != (h, w) or mask.numel() != h * w:
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match the image's {h}x{w}")
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        original = image.permute(1, 2, 0).cpu().numpy()
        drawn, _ = apply_distractors(original.astype(np.float32), rng,
                                     choose_families(rng, self.families, self.most), self.density)
        out = (drawn + 0.5).astype(np.uint8)
        crack = mask.reshape(h, w).cpu().numpy() != 0
        out[crack] = original[crack]  # a crack crossing a distractor stays exactly as it was
        new = torch.from_numpy(out).permute(2, 0, 1).contiguous()
        return (tv_tensors.wrap(new, like=image) if isinstance(image, tv_tensors.TVTensor) else new, mask)

    def extra_repr(self) -> str:
        return f"p={self.p}, families={len(self.families)}, density={self.density}, most={self.most}"
