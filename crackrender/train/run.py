"""``crackrender train``: one experiment config in, a run folder out.

runs/<name>/
  config.yaml                 the merged config
  checkpoints/last.ckpt       Lightning's full state (resume with --resume)
  checkpoints/best.ckpt       best validation mIoU
  model-last.safetensors      weights + config, for `crackrender segment`
  model-best.safetensors
  metrics.csv (under csv/)    per-step losses and per-epoch validation metrics
  metrics.partN.csv           the logs of earlier launches of a resumed run (Lightning rewrites
                              metrics.csv from scratch on every launch)
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from crackrender.checkpoint import save_model
from crackrender.errors import CrackRenderError
from crackrender.io import atomic_write_text
from crackrender.train.data import CrackDataModule
from crackrender.train.task import SegmentationTask


class ExportModel(Callback):
    """Write the weights as safetensors (no pickle) beside the Lightning checkpoints: model-last
    after each validation and at the end, model-best when the validation value ``select_by``
    (``trainer.select_by``) improved."""

    def __init__(self, folder: Path, select_by: str = "miou"):
        self.folder = folder
        self.key = f"val/{select_by}"
        self.best = -math.inf

    def on_validation_end(self, trainer: pl.Trainer, task: SegmentationTask) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        info = {"epoch": trainer.current_epoch, "global_step": trainer.global_step, "val": metrics,
                "selected_by": self.key}
        save_model(self.folder / "model-last.safetensors", task.model, info=info)
        score = metrics.get(self.key, -math.inf)
        if score > self.best:
            self.best = score
            save_model(self.folder / "model-best.safetensors", task.model, info=info)

    def on_train_end(self, trainer: pl.Trainer, task: SegmentationTask) -> None:
        # the final weights, also when max_time stopped mid-epoch or there is no validation data
        if trainer.is_global_zero:
            save_model(self.folder / "model-last.safetensors", task.model,
                       info={"epoch": trainer.current_epoch, "global_step": trainer.global_step})

    def state_dict(self) -> dict:
        return {"best": self.best, "key": self.key}

    def load_state_dict(self, state: dict) -> None:
        # a run resumed under another select_by starts its best afresh: the old best is another quantity
        same = state.get("key", "val/miou") == self.key
        self.best = state.get("best", -math.inf) if same else -math.inf


def _keep_earlier_log(csv_dir: Path) -> None:
    """Move metrics.csv aside as metrics.partN.csv: a resumed launch would overwrite it."""
    log = csv_dir / "metrics.csv"
    if log.is_file():
        n = 1
        while (csv_dir / f"metrics.part{n}.csv").exists():
            n += 1
        log.rename(csv_dir / f"metrics.part{n}.csv")


def _loggers(folder: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger

    loggers = [CSVLogger(folder, name="csv", version="")]
    try:
        import tensorboard  # noqa: F401  (optional: pip install tensorboard)
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(folder, name="tensorboard", version=""))
    except ImportError:
        pass
    return loggers


def resolve_precision(precision: str, accelerator: str = "auto") -> str:
    """``auto``: 16-mixed on a GPU; bf16-mixed on a CPU with native bf16 (AMX/AVX512-BF16), where
    it is about 2.5x faster; else float32, because without it oneDNN falls back to a slow path
    (an AVX2 EPYC here: a ResNet18 step 15x slower in bf16 than in float32)."""
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "16-mixed"
    return "bf16-mixed" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32-true"


def launch_seed(seed: int, step: int) -> int:
    """The seed of a launch that starts at global ``step``: ``seed`` itself for a fresh run, a
    different one for each resumed step.

    Examples:
        >>> launch_seed(7, 0), launch_seed(7, 350) != launch_seed(7, 0)
        (7, True)
    """
    return int(seed) if step == 0 else (int(seed) * 1_000_003 + int(step)) % 2**31


def _checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True).get("global_step", 0))
    except Exception as exc:  # a truncated or foreign file: say which
        raise CrackRenderError(f"--resume: cannot read {path}: {exc}") from None


def run_training(config: dict, *, resume: bool = False, overwrite: bool = False,
                 out: str | os.PathLike | None = None) -> Path:
    """Train as ``config`` says; returns the run folder. ``resume`` continues from last.ckpt;
    ``overwrite`` deletes an earlier run of the same name first (asked for explicitly)."""
    folder = Path(out if out is not None else config["out"]) / config["name"]
    last = folder / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise CrackRenderError(f"--resume: no checkpoint to resume from at {last}")
    if overwrite and folder.is_dir():
        shutil.rmtree(folder)
    if not resume and last.is_file():
        raise CrackRenderError(f"{folder} already holds a run; pass --resume to continue it or choose another name")
    if resume:
        _keep_earlier_log(folder / "csv")
    tcfg = config["trainer"]
    if tcfg["threads"]:
        torch.set_num_threads(int(tcfg["threads"]))
    # a resumed launch seeds from (seed, step): re-seeding as at step 0 would replay the first
    # epoch's order, augmentations and points
    seed = launch_seed(config["seed"], _checkpoint_step(last) if resume else 0)
    pl.seed_everything(seed, workers=True, verbose=False)
    # the model (and its init weights) first: a bad model section or init file leaves no folder behind
    task = SegmentationTask(config, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    has_val = bool(config["data"]["val"])
    callbacks = [
        ModelCheckpoint(folder / "checkpoints", filename="last-step", save_last=True, save_top_k=0,
                        every_n_train_steps=tcfg["checkpoint_every_n_steps"]),
        ExportModel(folder, tcfg["select_by"]),
    ]
    if has_val:
        callbacks.append(ModelCheckpoint(folder / "checkpoints", filename="best", monitor=f"val/{tcfg['select_by']}",
                                         mode="max", save_top_k=1, auto_insert_metric_name=False))
    trainer = pl.Trainer(
        default_root_dir=folder,
        max_epochs=tcfg["max_epochs"],
        max_time=tcfg["max_time"],
        precision=resolve_precision(tcfg["precision"], tcfg["accelerator"]),
        accelerator=tcfg["accelerator"],
        devices=tcfg["devices"],
        num_nodes=tcfg["num_nodes"],
        strategy=tcfg["strategy"],
        check_val_every_n_epoch=tcfg["check_val_every_n_epoch"],
        log_every_n_steps=tcfg["log_every_n_steps"],
        limit_train_batches=tcfg["limit_train_batches"],
        num_sanity_val_steps=0,
        enable_progress_bar=tcfg["progress"],
        enable_model_summary=tcfg["progress"],
        logger=_loggers(folder),
        callbacks=callbacks,
    )
    data = CrackDataModule(config["data"], seed=seed)
    trainer.fit(task, datamodule=data, ckpt_path=str(last) if resume else None)
    return folder
