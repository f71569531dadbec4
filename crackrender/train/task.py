"""The LightningModule: losses, optimiser and schedule, and validation with the project's metrics."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from crackrender.checkpoint import load_state, read_checkpoint
from crackrender.metrics import boundary_accuracy_counts, confusion, scores
from crackrender.models import create_model
from crackrender.train.losses import segmentation_losses
from crackrender.train.schedule import warmup_poly

# per validation image: tp, fp, fn, tn, then mBA's 5 correct and 5 band counts
_STAT_WIDTH = 14


class SegmentationTask(pl.LightningModule):
    def __init__(self, config: dict, seed: int | None = None):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.config = config
        self.model = create_model(**config["model"])
        if config.get("init"):
            _, state, _ = read_checkpoint(config["init"])
            load_state(self.model, state, source=str(config["init"]))
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
        self._val_stats = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        pred = self.model.predict(batch["image"])
        for mask, gt in zip(pred.mask.cpu().numpy(), batch["mask"][:, 0].cpu().numpy() > 0.5):
            c = confusion(mask, gt)
            correct, band = boundary_accuracy_counts(mask, gt)
            row = np.concatenate([[c["tp"], c["fp"], c["fn"], c["tn"]], correct, band]).astype(np.float64)
            self._val_stats.append(torch.as_tensor(row, dtype=torch.float64))

    def on_validation_epoch_end(self) -> None:
        local = torch.stack(self._val_stats) if self._val_stats else torch.zeros(0, _STAT_WIDTH, dtype=torch.float64)
        rows = self.all_gather(local.to(self.device))
        rows = rows.reshape(-1, _STAT_WIDTH).cpu().numpy() if rows.numel() else np.zeros((0, _STAT_WIDTH))
        if len(rows) == 0:
            return
        metrics = validation_metrics(rows)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, prog_bar=False, sync_dist=False, rank_zero_only=False)
        self.log("val_miou", metrics["miou"], prog_bar=True, logger=False)


def validation_metrics(rows: np.ndarray) -> dict[str, float]:
    """Aggregate (dataset-summed counts) IoU, mIoU, F1 and the per-image mean mBA, from stat rows."""
    counts = dict(zip(("tp", "fp", "fn", "tn"), rows[:, :4].sum(0)))
    s = scores(counts)
    correct, band = rows[:, 4:9], rows[:, 9:14]
    valid = band.all(axis=1)
    mba = float(np.mean((correct[valid] / band[valid]).mean(axis=1))) if valid.any() else float("nan")
    per_image_iou = [scores(dict(zip(("tp", "fp", "fn", "tn"), r[:4])))["iou"] for r in rows]
    return {"miou": s["miou"], "iou": s["iou"], "f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
            "mba": mba, "iou_per_image": float(np.mean(per_image_iou)), "n_images": float(len(rows))}
