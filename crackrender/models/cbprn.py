"""CBPRN: Crack Boundary Point Rendering Network (ResNet + edge-guided branch + point head)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crackrender.models.backbone import ResNetFeatures
from crackrender.models.base import (Prediction, SegmentationModel, Stopwatch, check_choice, check_images, crop_to_image,
                                     pad_to_multiple)
from crackrender.models.edge_branch import EdgeGuidedBranch
from crackrender.models.heads import EnhancedFeatureFusion, HeatmapHead, PointHead
from crackrender.ops import pixel_centers, point_sample, sample_training_points, subdivision_inference, uncertain_pixels
from crackrender.ops.sampling import positive_int

SAMPLINGS = ("boundary", "uniform")
GUIDANCES = ("heatmap", "coarse_mask")


class EnhancedEncoder:
    """CBPRN's encoder (ResNet + edge-guided branch + fusion into the enhanced feature map at
    stride 4), shared with the conventional-decoder baseline. A mixin for SegmentationModel: the
    attribute names (backbone, edge_branch, fusion) are CBPRN's state-dict keys, so keep them."""

    def _build_encoder(self, backbone, pretrained, edge, edge_dim, edge_modules, edge_heads, window, edge_stride,
                       edge_mlp_ratio, gf_radius, gf_eps, fpn_dim, feature_dim) -> None:
        self.backbone = ResNetFeatures(backbone, pretrained)
        # ablation switch (edge=False): the paper's network without its edge-guided branch
        self.edge_branch = EdgeGuidedBranch(edge_dim, edge_modules, edge_heads, window, edge_stride,
                                            edge_mlp_ratio, 0.0, gf_radius, gf_eps) if edge else None
        self.fusion = EnhancedFeatureFusion(self.backbone.channels, edge_dim if edge else 0, fpn_dim, feature_dim)

    # ResNet halves the size five times, rounding up: a side that is not a multiple of 32 would
    # give deeper maps that cover more than the image, stretched over it by the fusion
    pad_multiple = 32

    def _encode(self, images: torch.Tensor, watch: Stopwatch) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """ResNet features res2..res5 and the edge features on res2's grid (None without the
        branch), of the image reflect-padded on the bottom/right to a multiple of 32."""
        check_images(images)
        images, _ = pad_to_multiple(images, self.pad_multiple)
        x = self.normalize(images)
        with watch("backbone", images.device):
            feats = self.backbone(x)
        edge = None
        if self.edge_branch is not None:
            with watch("edge_branch", images.device):
                edge = self.edge_branch(images, self.normalize)
                if edge.shape[-2:] != feats[0].shape[-2:]:
                    # edge_stride != 4: resample to res2's grid (a crop would fail at stride 8 and
                    # keep only the top-left corner at stride 2)
                    edge = F.interpolate(edge, size=feats[0].shape[-2:], mode="bilinear", align_corners=False)
        return feats, edge


def uniform_training_points(masks: torch.Tensor, point_ratio: float,
                            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """N = round(H*W*point_ratio) pixel centres per image drawn uniformly (with replacement), and
    the mask's value there: Table 1's "uniform sampling" ablation."""
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise ValueError(f"masks must be (B, 1, H, W), got {tuple(masks.shape)}")
    b, _, h, w = masks.shape
    n = int(round(h * w * point_ratio))
    rand_device = generator.device if generator is not None else masks.device
    index = torch.randint(h * w, (b, n), generator=generator, device=rand_device).to(masks.device)
    coords = pixel_centers(index.reshape(-1), h, w).view(b, n, 2)
    labels = (torch.gather(masks.reshape(b, -1).float(), 1, index) > 0.5).float()
    return coords, labels


class CBPRN(EnhancedEncoder, SegmentationModel):
    """The paper's network; every keyword has the paper's value (or our reading in docs/design.md) as default.

    Examples:
        >>> model = CBPRN(backbone="resnet18", edge_dim=24, edge_heads=3).eval()
        >>> out = model.predict(torch.rand(1, 3, 70, 90))
        >>> tuple(out.mask.shape), out.mask.dtype
        ((1, 70, 90), torch.bool)
    """

    name = "cbprn"

    def __init__(self, *, backbone: str = "resnet50", pretrained: bool = False,
                 edge: bool = True, edge_dim: int = 60, edge_modules: int = 3, edge_heads: int = 6,
                 window: int = 8, edge_stride: int = 4, edge_mlp_ratio: float = 2.0,
                 gf_radius: int = 2, gf_eps: float = 1e-2,
                 fpn_dim: int = 128, feature_dim: int = 128, heatmap_dim: int = 64,
                 point_hidden: int = 256, point_layers: int = 3,
                 point_ratio: float = 1 / 20, strata_ratios: tuple[float, float, float] = (0.3, 0.4, 0.3),
                 band_k: int = 2, alpha: float = 0.3, beta: float = 0.7, point_chunk: int = 65536,
                 sampling: str = "boundary", guidance: str = "heatmap", subdivision_points: int = 8096):
        super().__init__(dict(backbone=backbone, pretrained=pretrained, edge=edge, edge_dim=edge_dim,
                              edge_modules=edge_modules, edge_heads=edge_heads, window=window,
                              edge_stride=edge_stride, edge_mlp_ratio=edge_mlp_ratio, gf_radius=gf_radius,
                              gf_eps=gf_eps, fpn_dim=fpn_dim, feature_dim=feature_dim, heatmap_dim=heatmap_dim,
                              point_hidden=point_hidden, point_layers=point_layers, point_ratio=point_ratio,
                              strata_ratios=list(strata_ratios), band_k=band_k, alpha=alpha, beta=beta,
                              point_chunk=point_chunk, sampling=sampling, guidance=guidance,
                              subdivision_points=subdivision_points))
        if not 0.0 <= alpha < beta <= 1.0:
            raise ValueError(f"need 0 <= alpha < beta <= 1, got alpha={alpha}, beta={beta}")
        # ablation switches: uniform training points (Table 1), PointRend's subdivision (Table 3)
        check_choice("sampling", sampling, SAMPLINGS)
        check_choice("guidance", guidance, GUIDANCES)
        positive_int(subdivision_points, "subdivision_points")
        self._build_encoder(backbone, pretrained, edge, edge_dim, edge_modules, edge_heads, window, edge_stride,
                            edge_mlp_ratio, gf_radius, gf_eps, fpn_dim, feature_dim)
        self.heatmap_head = HeatmapHead(feature_dim, heatmap_dim)
        self.point_head = PointHead(feature_dim, point_hidden, point_layers)
        self.point_ratio, self.strata_ratios, self.band_k = point_ratio, tuple(strata_ratios), band_k
        self.alpha, self.beta, self.point_chunk = alpha, beta, point_chunk
        self.sampling, self.guidance, self.subdivision_points = sampling, guidance, subdivision_points

    def forward(self, images: torch.Tensor, timings: dict | None = None) -> dict:
        """images (B,3,H,W) in [0,1] -> {"coarse": heatmap logits (B,1,ceil(H/4),ceil(W/4)) spanning
        exactly the image, "features": the enhanced feature map's first ceil(H/4) x ceil(W/4) cells
        (4x4 pixels each, so they may reach past the image), "extent": the image's (x, y) share of
        those cells}."""
        watch = Stopwatch(timings)
        h, w = images.shape[-2:]
        feats, edge = self._encode(images, watch)
        with watch("heatmap", images.device):
            features = self.fusion(feats, edge)
            coarse = self.heatmap_head(features)
        hp, wp = 4 * coarse.shape[-2], 4 * coarse.shape[-1]
        hc, wc = -(-h // 4), -(-w // 4)
        return {"coarse": crop_to_image(coarse, (h, w), (hp, wp)), "features": features[..., :hc, :wc],
                "extent": (w / (4 * wc), h / (4 * hc))}

    def point_logits(self, out: dict, coords: torch.Tensor) -> torch.Tensor:
        """Point-head logits (B,P) at normalised pixel-centre coordinates (B,P,2) of the image."""
        # float32 coordinates: see point_sample
        cells = coords.float() * torch.tensor(out["extent"], device=coords.device)
        fine = point_sample(out["features"], cells)
        coarse_at = point_sample(out["coarse"], coords)
        return self.point_head(fine, coarse_at.to(fine.dtype))

    def training_outputs(self, images, masks, generator=None) -> dict:
        """Heatmap logits, and point logits/labels at points drawn from the label (0.3 interior :
        0.4 boundary band : 0.3 background, N = H*W*point_ratio); with ``sampling="uniform"``,
        N pixels drawn uniformly over the image instead (no strata)."""
        out = self(images)
        if self.sampling == "uniform":
            coords, labels = uniform_training_points(masks, self.point_ratio, generator)
        else:
            coords, labels, strata = sample_training_points(masks, ratios=self.strata_ratios, k=self.band_k,
                                                            point_ratio=self.point_ratio, generator=generator)
            out["point_strata"] = strata
        out["point_logits"] = self.point_logits(out, coords)
        out["point_labels"] = labels
        return out

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, alpha: float | None = None, beta: float | None = None,
                chunk: int | None = None, refine: bool = True, timings: dict | None = None) -> Prediction:
        """Full-resolution mask: pixels whose upsampled heatmap probability lies in [alpha, beta]
        are re-predicted by the point head (in chunks, so memory is bounded); the rest keep the
        thresholded heatmap. ``refine=False``: the upsampled heatmap alone. With
        ``guidance="coarse_mask"``: PointRend's subdivision from the heatmap logits instead of the
        [alpha, beta] rule (``subdivision_points`` per x2 step)."""
        alpha = self.alpha if alpha is None else alpha
        beta = self.beta if beta is None else beta
        chunk = chunk or self.point_chunk
        h, w = images.shape[-2:]
        out = self(images, timings)
        watch = Stopwatch(timings)
        if not refine:
            logits = F.interpolate(out["coarse"].float(), size=(h, w), mode="bilinear", align_corners=False)
            prob = torch.sigmoid(logits[:, 0])
            return Prediction(prob > 0.5, prob, [0] * images.shape[0])
        if self.guidance == "coarse_mask":
            with watch("point_refinement", images.device):
                logits, counts = subdivision_inference(
                    out["coarse"], lambda c: self.point_logits(out, c), (h, w), self.subdivision_points)
            prob = torch.sigmoid(logits[:, 0])
            return Prediction(prob > 0.5, prob, counts)
        masks, probs, counts = [], [], []
        with watch("point_refinement", images.device):
            for b in range(images.shape[0]):
                logit = F.interpolate(out["coarse"][b:b + 1].float(), size=(h, w), mode="bilinear",
                                      align_corners=False).view(-1)
                index = uncertain_pixels(torch.sigmoid(logit).view(h, w), alpha, beta)
                one = {"features": out["features"][b:b + 1], "coarse": out["coarse"][b:b + 1], "extent": out["extent"]}
                for start in range(0, index.numel(), chunk):
                    part = index[start:start + chunk]
                    coords = pixel_centers(part, h, w)[None]  # float32: see point_sample
                    logit[part] = self.point_logits(one, coords)[0].float()
                prob = torch.sigmoid(logit).view(h, w)
                probs.append(prob)
                masks.append(prob > 0.5)
                counts.append(int(index.numel()))
        return Prediction(torch.stack(masks), torch.stack(probs), counts)
