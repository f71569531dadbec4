"""Training and validation data for Lightning, built from a config's ``data`` section."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from crackrender.data.datasets import CompositeDataset, CrackDataset
from crackrender.data.transforms import eval_transforms, train_transforms
from crackrender.errors import CrackRenderError


def _datasets(entries: list[dict], transform, limit: int | None = None) -> list:
    out = []
    for entry in entries:
        root = Path(entry["root"])
        if not root.is_dir():
            raise CrackRenderError(f"dataset folder not found: {root}")
        ds = CrackDataset(root, entry.get("split", "train"), transform=transform)  # never empty
        if limit is not None and len(ds) > limit:
            # evenly spaced, so a limited validation set still spans the whole split
            ds = Subset(ds, torch.linspace(0, len(ds) - 1, limit).round().long().tolist())
        out.append(ds)
    return out


def val_dataset_names(entries: list[dict]) -> list[str]:
    """Validation datasets' names (their folders' names), each once, in config order. A val
    sample's ``dataset`` is its index here; entries sharing a folder name are scored together.

    Examples:
        >>> val_dataset_names([{"root": "data/cfd"}, {"root": "data/crack500/"}, {"root": "other/cfd"}])
        ['cfd', 'crack500']
    """
    return list(dict.fromkeys(Path(entry["root"]).name for entry in entries))


class _Tagged(Dataset):
    """A dataset whose samples also carry ``dataset``: the group id of their validation count rows."""

    def __init__(self, dataset: Dataset, group: int):
        self.dataset, self.group = dataset, group

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return {**self.dataset[index], "dataset": self.group}


class CrackDataModule(pl.LightningDataModule):
    def __init__(self, data: dict, seed: int = 0):
        super().__init__()
        self.cfg, self.seed = data, seed
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        cfg = self.cfg
        if self.train_set is None and cfg["train"]:
            tf = train_transforms(cfg["size"], cfg["mode"], tuple(cfg["scale"]), cfg["jitter"], cfg["paste_distractors"],
                                  cfg["paste_families"], cfg["paste_most"])
            self.train_set = CompositeDataset(_datasets(cfg["train"], tf))
        if self.val_set is None and cfg["val"]:
            members = _datasets(cfg["val"], eval_transforms(cfg["val_size"]), cfg["val_limit"])
            names = val_dataset_names(cfg["val"])
            self.val_set = CompositeDataset([_Tagged(ds, names.index(Path(entry["root"]).name))
                                             for ds, entry in zip(members, cfg["val"])])

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            raise CrackRenderError("the config has no training data (data.train is empty)")
        cfg = self.cfg
        n = cfg["samples_per_epoch"] or len(self.train_set)
        generator = torch.Generator().manual_seed(self.seed)
        if cfg["balance"]:
            # each entry's `share` (default 1) of the draws, whatever its size
            shares = [float(entry.get("share", 1.0)) for entry in cfg["train"]]
            sampler = self.train_set.balanced_sampler(n, generator, shares)
        else:
            sampler = torch.utils.data.RandomSampler(self.train_set, num_samples=n, generator=generator)
        return DataLoader(self.train_set, batch_size=cfg["batch_size"], sampler=sampler, drop_last=True,
                          num_workers=cfg["num_workers"], persistent_workers=cfg["num_workers"] > 0,
                          collate_fn=_collate_train)

    def val_dataloader(self):
        if self.val_set is None:
            return []
        # native sizes differ between datasets: one image per batch
        return DataLoader(self.val_set, batch_size=1, shuffle=False, num_workers=min(1, self.cfg["num_workers"]))


def _collate_train(samples: list[dict]) -> dict:
    return {"image": torch.stack([s["image"] for s in samples]), "mask": torch.stack([s["mask"] for s in samples])}
