"""CBPRN: Crack Boundary Point Rendering Network (ResNet + edge-guided branch + point head)."""

from __future__ import annotations

from functools import partial

import torch

from crackrender.checks import choice, flag, in_range, non_negative_int, positive_int
from crackrender.models.base import Prediction, SegmentationModel, Stopwatch, coarse_only, crop_to_image
from crackrender.models.encoder import EncoderOptions, EnhancedEncoder
from crackrender.models.heads import HeatmapHead, PointHead
from crackrender.ops import (band_training_points, pixel_centers, point_sample, sample_training_points,
                             subdivision_inference, uniform_training_points, upsample_logits)
from crackrender.ops.boundary_sampling import BAND_K, POINT_RATIO, STRATA_RATIOS, check_ratios
from crackrender.ops.heatmap_inference import ALPHA, BETA, POINT_CHUNK, check_band, heatmap_guided_inference
from crackrender.ops.subdivision import SUBDIVISION_POINTS

# ablation switches: uniform training points (Table 1), PointRend's subdivision (Table 3)
SAMPLINGS = ("boundary", "uniform")
# stratum id of the training points drawn from the heatmap's own band (after the label's three)
HEATMAP_BAND = 3
# what point_fine adds per point: the stem's 64 channels (every torchvision ResNet) and RGB
STEM_CHANNELS, RGB = 64, 3
GUIDANCES = ("heatmap", "coarse_mask")


class CBPRN(EnhancedEncoder, SegmentationModel):
    """The paper's network. Takes the encoder's settings (:class:`EncoderOptions`: backbone,
    edge_dim, ...) and its own below; every one defaults to the paper's value (or DESIGN.md's
    reading).

    Examples:
        >>> model = CBPRN(backbone="resnet18", edge_dim=24, edge_heads=3).eval()
        >>> out = model.predict(torch.rand(1, 3, 70, 90))
        >>> tuple(out.mask.shape), out.mask.dtype
        ((1, 70, 90), torch.bool)
    """

    name = "cbprn"

    def __init__(self, *, heatmap_dim: int = 64, point_hidden: int = 256, point_layers: int = 3,
                 point_ratio: float = POINT_RATIO, strata_ratios: tuple[float, float, float] = STRATA_RATIOS,
                 band_k: int = BAND_K, alpha: float = ALPHA, beta: float = BETA, point_chunk: int = POINT_CHUNK,
                 sampling: str = "boundary", guidance: str = "heatmap", subdivision_points: int = SUBDIVISION_POINTS,
                 point_fine: bool = False, band_share: float = 0.0, **encoder_options):
        super().__init__()
        self.point_ratio = in_range(point_ratio, "point_ratio", 0, open_low=True)
        self.strata_ratios = tuple(check_ratios(strata_ratios, name="strata_ratios"))
        self.band_k = non_negative_int(band_k, "band_k")
        self.alpha, self.beta = check_band(alpha, beta)
        self.point_chunk = positive_int(point_chunk, "point_chunk")
        self.sampling = choice(sampling, "sampling", SAMPLINGS)
        self.guidance = choice(guidance, "guidance", GUIDANCES)
        self.subdivision_points = positive_int(subdivision_points, "subdivision_points")
        # beyond the paper (issue 14.3): the head also reads full-resolution inputs, and trains on
        # points of the heatmap's own band; both off by default, so older model files are unchanged
        self.point_fine = flag(point_fine, "point_fine")
        self.band_share = in_range(band_share, "band_share", 0, 1, open_high=True)
        self._build_encoder(EncoderOptions(**encoder_options))
        feature_dim = self.fusion.out_channels
        self.heatmap_head = HeatmapHead(in_dim=feature_dim, hidden=positive_int(heatmap_dim, "heatmap_dim"))
        self.point_head = PointHead(in_dim=feature_dim, hidden=positive_int(point_hidden, "point_hidden"),
                                    num_layers=positive_int(point_layers, "point_layers"),
                                    extra_dim=STEM_CHANNELS + RGB if self.point_fine else 0)

    def forward(self, images: torch.Tensor, timings: dict | None = None) -> dict:
        """images (B,3,H,W) in [0,1] -> {"coarse": heatmap logits (B,1,ceil(H/4),ceil(W/4)) spanning
        exactly the image, "features": the enhanced feature map's first ceil(H/4) x ceil(W/4) cells
        (4x4 pixels each, so they may reach past the image), "extent": the image's (x, y) share of
        those cells}."""
        watch = Stopwatch(timings)
        h, w = images.shape[-2:]
        fine = {} if self.point_fine else None
        feats, edge = self._encode(images, watch, fine)
        with watch("heatmap", images.device):
            features = self.fusion(feats, edge)
            coarse = self.heatmap_head(features)
        hp, wp = 4 * coarse.shape[-2], 4 * coarse.shape[-1]
        hc, wc = -(-h // 4), -(-w // 4)
        out = {"coarse": crop_to_image(coarse, (h, w), (hp, wp)), "features": features[..., :hc, :wc],
               "extent": (w / (4 * wc), h / (4 * hc))}
        if fine is not None:
            # maps of the padded image: the image's share of them is (w / wp, h / hp)
            out.update(fine, fine_extent=(w / wp, h / hp))
        return out

    def point_logits(self, out: dict, coords: torch.Tensor) -> torch.Tensor:
        """Point-head logits (B,P) at normalised pixel-centre coordinates (B,P,2) of the image."""
        # float32 coordinates: see point_sample
        cells = coords.float() * torch.tensor(out["extent"], device=coords.device)
        fine = point_sample(out["features"], cells)
        coarse_at = point_sample(out["coarse"], coords)
        extra = None
        if self.point_fine:
            at = coords.float() * torch.tensor(out["fine_extent"], device=coords.device)
            extra = torch.cat([point_sample(out["stem"], at), point_sample(out["image"], at)], dim=-1).to(fine.dtype)
        return self.point_head(fine, coarse_at.to(fine.dtype), extra)

    def training_points(self, masks: torch.Tensor, generator: torch.Generator | None = None,
                        coarse: torch.Tensor | None = None) -> dict:
        """The sampler: {"coords" (B,P,2), "labels" (B,P), and with boundary sampling "strata"}:
        points drawn from the label (0.3 interior : 0.4 boundary band : 0.3 background,
        N = H*W*point_ratio), or with ``sampling="uniform"`` N pixels drawn uniformly instead.
        With ``band_share`` > 0, that share of the N comes from the pixels whose heatmap
        probability (``coarse`` logits) lies in [alpha, beta], stratum ``HEATMAP_BAND``."""
        if self.sampling == "uniform":
            coords, labels = uniform_training_points(masks, self.point_ratio, generator)
            return {"coords": coords, "labels": labels}
        h, w = masks.shape[-2:]
        total = max(1, round(h * w * self.point_ratio))
        from_band = round(total * self.band_share) if coarse is not None else 0
        coords, labels, strata = sample_training_points(masks, num_points=total - from_band, ratios=self.strata_ratios,
                                                        k=self.band_k, generator=generator)
        if from_band == 0:
            return {"coords": coords, "labels": labels, "strata": strata}
        picks = band_training_points(upsample_logits(coarse, (h, w)), from_band, self.alpha, self.beta, generator)
        flat = (masks > 0.5).reshape(masks.shape[0], -1)
        extra_c, extra_l, extra_s = [], [], []
        for i, index in enumerate(picks):
            if index is None:  # no band in this image: the label's strata instead
                c, lab, st = sample_training_points(masks[i:i + 1], num_points=from_band, ratios=self.strata_ratios,
                                                    k=self.band_k, generator=generator)
                extra_c.append(c[0]), extra_l.append(lab[0]), extra_s.append(st[0])
                continue
            index = index.to(masks.device)
            extra_c.append(pixel_centers(index, h, w))
            extra_l.append(flat[i, index].float())
            extra_s.append(torch.full_like(index, HEATMAP_BAND))
        return {"coords": torch.cat([coords, torch.stack(extra_c)], 1),
                "labels": torch.cat([labels, torch.stack(extra_l)], 1),
                "strata": torch.cat([strata, torch.stack(extra_s)], 1)}

    def training_outputs(self, images, masks, generator=None) -> dict:
        """Heatmap logits, and point logits/labels (and strata) at :meth:`training_points`."""
        out = self(images)
        points = self.training_points(masks, generator, out["coarse"] if self.band_share else None)
        if "strata" in points:
            out["point_strata"] = points["strata"]
        out["point_logits"] = self.point_logits(out, points["coords"])
        out["point_labels"] = points["labels"]
        return out

    def inference_rule(self, *, refine: bool = True, alpha: float | None = None, beta: float | None = None,
                       chunk: int | None = None):
        """``rule(coarse_logits, point_fn, out_size) -> (logits, refined_points)``: the [alpha, beta]
        rule (the model's band unless given), PointRend's subdivision with
        ``guidance="coarse_mask"``, or with ``refine=False`` the upsampled heatmap alone.

        Examples:
            >>> model = CBPRN(backbone="resnet18", edge=False, fpn_dim=16, feature_dim=16)
            >>> model.inference_rule(alpha=0.2).keywords
            {'alpha': 0.2, 'beta': 0.7, 'chunk': 65536}
        """
        if not refine:
            return coarse_only
        if self.guidance == "coarse_mask":
            return partial(subdivision_inference, num_points=self.subdivision_points)
        return partial(heatmap_guided_inference, alpha=self.alpha if alpha is None else alpha,
                       beta=self.beta if beta is None else beta, chunk=chunk or self.point_chunk)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, alpha: float | None = None, beta: float | None = None,
                chunk: int | None = None, refine: bool = True, timings: dict | None = None) -> Prediction:
        """Full-resolution mask by :meth:`inference_rule`: pixels whose upsampled heatmap probability
        lies in [alpha, beta] are re-predicted by the point head (``chunk`` points per call); the
        rest keep the thresholded heatmap."""
        rule = self.inference_rule(refine=refine, alpha=alpha, beta=beta, chunk=chunk)
        out = self(images, timings)
        with Stopwatch(timings if refine else None)("point_refinement", images.device):
            logits, counts = rule(out["coarse"], partial(self.point_logits, out), images.shape[-2:])
        return Prediction.from_logits(logits, counts)
