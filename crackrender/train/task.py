"""The LightningModule: losses, optimiser and schedule, and validation with the project's metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytorch_lightning as pl
import torch

from crackrender.checkpoint import load_state, read_checkpoint
from crackrender.metrics import ROW_WIDTH, count_row, score_groups, score_rows
from crackrender.models import create_model
from crackrender.train.data import val_dataset_names
from crackrender.train.losses import segmentation_losses
from crackrender.train.schedule import warmup_poly


class SegmentationTask(pl.LightningModule):
    def __init__(self, config: dict, seed: int | None = None):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = config
        self.model = create_model(**config["model"])
        if config.get("init"):
            _, state, _ = read_checkpoint(config["init"])
            new = load_state(self.model, state, source=str(config["init"]), extensions=True)
            if new:
                print(f"init: {config['init']} lacks {len(new)} zero-initialised parameter(s) the model adds "
                      f"({', '.join(new)}); they start at zero")
        if config["trainer"].get("channels_last", True):
            self.model = self.model.to(memory_format=torch.channels_last)
        # this launch's seed (train.run.launch_seed): a resumed run draws new points
        self.seed = config["seed"] if seed is None else seed
        self.point_generator: torch.Generator | None = None
        self._val_stats: list[torch.Tensor] = []

    # ---------------------------------------------------------------- training
    def on_fit_start(self) -> None:
        # point sampling draws from its own generator, seeded per process
        self.point_generator = torch.Generator(device=self.device)
        self.point_generator.manual_seed(self.seed * 1000 + self.global_rank)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        images, masks = batch["image"], batch["mask"]
        if self.config["trainer"].get("channels_last", True):
            images = images.contiguous(memory_format=torch.channels_last)
        outputs = self.model.training_outputs(images, masks, generator=self.point_generator)
        terms = segmentation_losses(outputs, masks, self.config["loss"])
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, prog_bar=False,
                      batch_size=images.shape[0], sync_dist=False)
        self.log("loss", terms["loss"].detach(), prog_bar=True, logger=False, batch_size=images.shape[0])
        return terms["loss"]

    def configure_optimizers(self):
        opt_cfg = self.config["optim"]
        params = [p for p in self.model.parameters() if p.requires_grad]
        name = opt_cfg["name"]
        if name == "adam":
            optimizer = torch.optim.Adam(params, lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"])
        elif name == "adamw":
            optimizer = torch.optim.AdamW(params, lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"])
        else:
            optimizer = torch.optim.SGD(params, lr=opt_cfg["lr"], momentum=0.9, weight_decay=opt_cfg["weight_decay"])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = max(1, self.trainer.max_epochs or 1)
        warmup = int(round(total * opt_cfg["warmup_epochs"] / epochs))
        power = opt_cfg["poly_power"]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_poly(s, total, warmup, power))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val_stats = []  # per image: (2, ROW_WIDTH) count rows, refined then coarse

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        images = batch["image"]
        gts = batch["mask"][:, 0].cpu().numpy() > 0.5
        groups = batch["dataset"].tolist() if "dataset" in batch else [0] * len(gts)
        # the model's own prediction, and the heatmap alone (one extra pass) to see what refining adds
        masks = [self.model.predict(images).mask, self.model.predict(images, refine=False).mask]
        masks = [m.cpu().numpy() for m in masks]
        for i, (gt, group) in enumerate(zip(gts, groups)):
            rows = np.stack([count_row(m[i], gt, group=group) for m in masks])
            self._val_stats.append(torch.as_tensor(rows, dtype=torch.float64))

    def on_validation_epoch_end(self) -> None:
        empty = torch.zeros(0, 2, ROW_WIDTH, dtype=torch.float64)
        local = torch.stack(self._val_stats) if self._val_stats else empty
        # every rank holds the same number of rows (Lightning's sampler pads), so all_gather stacks them
        rows = self.all_gather(local.to(self.device)).reshape(-1, 2, ROW_WIDTH).cpu().numpy()
        if len(rows) == 0:
            return
        names = val_dataset_names(self.config.get("data", {}).get("val") or [])
        metrics = validation_metrics(rows[:, 0], rows[:, 1], names)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, prog_bar=False, sync_dist=False, rank_zero_only=False)
        self.log("val_miou", metrics["miou"], prog_bar=True, logger=False)


def _logged(summary: dict) -> dict[str, float]:
    """What validation logs from :func:`score_rows`: aggregate pixel scores, per-image mBA and IoU."""
    m = summary["metrics"]
    mba = m["mba"]["per_image_mean"]
    return {**{k: m[k]["aggregate"] for k in ("miou", "iou", "f1", "precision", "recall")},
            "mba": float("nan") if mba is None else mba, "iou_per_image": m["iou"]["per_image_mean"],
            "n_images": float(summary["n_images"])}


def validation_metrics(rows: np.ndarray, coarse_rows: np.ndarray | None = None,
                       names: Sequence[str] = ()) -> dict[str, float]:
    """Validation's log values (without ``val/``) from count rows (:func:`crackrender.metrics.count_row`).

    Pooled over all rows: ``miou, iou, f1, precision, recall`` (dataset-summed counts), ``mba``
    (per-image mean; NaN if every band is empty), ``iou_per_image``, ``n_images``; the same per
    dataset as ``<name>/<key>`` (``names[group]``, else the group id), and ``dataset_mean_f1``,
    the mean of the datasets' F1. ``coarse_rows`` (the same images unrefined) add
    ``coarse_<key>`` and ``<name>/coarse_<key>`` (but no second n_images).

    Examples:
        >>> from crackrender.metrics import count_row
        >>> gt = np.zeros((8, 8), bool); gt[2:6, 2:6] = True
        >>> refined = np.stack([count_row(gt, gt, group=0), count_row(~gt, gt, group=1)])  # a: right, b: wrong
        >>> coarse = np.stack([count_row(~gt, gt, group=0), count_row(~gt, gt, group=1)])
        >>> m = validation_metrics(refined, coarse, names=["a", "b"])
        >>> m["iou_per_image"], m["a/iou"], m["b/iou"], m["a/coarse_iou"], m["n_images"], m["a/n_images"]
        (0.5, 1.0, 0.0, 0.0, 2.0, 1.0)
        >>> m["dataset_mean_f1"], m["coarse_dataset_mean_f1"]
        (0.5, 0.0)
    """
    out = {}
    for prefix, r in (("", rows), ("coarse_", coarse_rows)):
        if r is None:
            continue
        scopes = {"": score_rows(r)}
        scopes.update({f"{names[g] if g < len(names) else g}/": s for g, s in score_groups(r).items()})
        for scope, summary in scopes.items():
            out.update({f"{scope}{prefix}{k}": v for k, v in _logged(summary).items()
                        if not (prefix and k == "n_images")})
        # each dataset's F1 counts once, however many images it has (issue 15's model choice)
        per_dataset = [out[f"{scope}{prefix}f1"] for scope in scopes if scope]
        out[f"{prefix}dataset_mean_f1"] = float(np.mean(per_dataset))
    return out
