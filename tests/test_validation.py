"""Validation during training: the same numbers as `crackrender evaluate` and the paper tables, and
every pooled, per-dataset and coarse key logged."""

import numpy as np
import torch
from conftest import TINY_CBPRN

from crackrender.train.config import load_config

TINY_MODEL = {"name": "cbprn", **TINY_CBPRN}


class _Shifted(torch.nn.Module):
    """Reads write_pair_dataset's images (crack drawn dark on grey) and shifts the crack right:
    by 1 pixel refined, by 4 unrefined, so both are imperfect and differ."""

    def predict(self, images, *, refine=True):
        from crackrender.models.base import Prediction

        mask = torch.roll(images[:, 0] < 0.5, 1 if refine else 4, dims=-1)
        return Prediction(mask, mask.float(), [0] * images.shape[0])


def _two_val_sets(tmp_path):
    from conftest import line_mask, write_pair_dataset

    a = {f"a{i}": line_mask(row=12 + 9 * i, thickness=1 + 2 * i) for i in range(3)}
    a["empty"] = np.zeros((64, 96), bool)  # an empty band: left out of mBA
    b = {f"b{i}": line_mask(48, 80, row=10 + 11 * i, thickness=2 + i) for i in range(2)}
    return [write_pair_dataset(tmp_path / "a", a, {"val": list(a)}),
            write_pair_dataset(tmp_path / "b", b, {"val": list(b)})]


def _val_override(roots):
    return "data.val=[%s]" % ", ".join(f"{{root: {r}, split: val}}" for r in roots)


def test_validation_scores_like_evaluate_and_the_paper_tables(tmp_path):
    """Training validation, MetricAccumulator and paper/measure.py give the same numbers for the same masks."""
    from crackrender.data.datasets import CrackDataset
    from crackrender.metrics import MetricAccumulator
    from crackrender.paper.measure import evaluate_model, load_test_sets, to_tensor
    from crackrender.train.data import CrackDataModule, val_dataset_names
    from crackrender.train.task import SegmentationTask, validation_metrics

    roots = _two_val_sets(tmp_path)
    cfg = load_config(None, [f"model={TINY_MODEL}", _val_override(roots)])
    model = _Shifted()
    # training validation: the task's own steps on the validation loader (batch size 1, both sets in turn)
    data = CrackDataModule(cfg["data"])
    data.setup("validate")
    task = SegmentationTask(cfg)
    task.model = model
    task.on_validation_epoch_start()
    for i, batch in enumerate(data.val_dataloader()):
        task.validation_step(batch, i)
    rows = torch.stack(task._val_stats).numpy()
    val = validation_metrics(rows[:, 0], rows[:, 1], val_dataset_names(cfg["data"]["val"]))
    # crackrender evaluate's accumulator, pooled and per set, refined and coarse
    accs = {(name, refine): MetricAccumulator() for name in ("all", "a", "b") for refine in (True, False)}
    for root in roots:
        ds = CrackDataset(root, "val")
        for i in range(len(ds)):
            image, gt = ds.load(i)
            for refine in (True, False):
                mask = model.predict(to_tensor(image, torch.device("cpu")), refine=refine).mask[0].numpy()
                for name in ("all", root.name):
                    accs[name, refine].add(ds.pairs[i][0], mask, gt)
    # the paper tables
    paper = evaluate_model(model, load_test_sets([(r.name, r, "val") for r in roots], None), torch.device("cpu"),
                           coarse=True, progress=False)
    for scope, res in (("", paper["all"]), ("a/", paper["per_dataset"]["a"]), ("b/", paper["per_dataset"]["b"])):
        for prefix, refine in (("", True), ("coarse_", False)):
            m = accs[scope.rstrip("/") or "all", refine].summary()["metrics"]
            for key, metric, view in (("miou", "miou", "aggregate"), ("iou", "iou", "aggregate"),
                                      ("f1", "f1", "aggregate"), ("mba", "mba", "per_image_mean"),
                                      ("iou_per_image", "iou", "per_image_mean")):
                assert val[scope + prefix + key] == m[metric][view], scope + prefix + key
            assert val[scope + prefix + "miou"] == res[prefix + "miou"]
            assert val[scope + prefix + "mba"] == res[prefix + "mba"]
            assert val[scope + prefix + "f1"] == res[prefix + "dice"]
        assert val[scope + "n_images"] == res["n_images"]
    assert val["n_images"] == 6 and paper["all"]["mba_skipped"] == 1
    assert 0 < val["coarse_miou"] < val["miou"] < 1  # imperfect, and the 1-pixel shift beats the 4-pixel one
    assert val["a/miou"] != val["b/miou"]


def test_validation_logs_pooled_per_dataset_and_coarse_metrics(tmp_path):
    """A tiny in-process Lightning validation of a CBPRN over two datasets logs every key."""
    import pytorch_lightning as pl

    from crackrender.train.data import CrackDataModule
    from crackrender.train.task import SegmentationTask

    roots = _two_val_sets(tmp_path)
    cfg = load_config(None, [f"model={TINY_MODEL}", _val_override(roots)])
    torch.manual_seed(0)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.validate(SegmentationTask(cfg), datamodule=CrackDataModule(cfg["data"]))
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    keys = ("miou", "iou", "f1", "precision", "recall", "mba", "iou_per_image")
    for scope in ("val/", "val/a/", "val/b/"):
        for key in keys:
            assert scope + key in logged and scope + "coarse_" + key in logged, scope + key
    assert logged["val/n_images"] == 6 and logged["val/a/n_images"] == 4 and logged["val/b/n_images"] == 2
    assert "val/coarse_n_images" not in logged and "val_miou" in logged
