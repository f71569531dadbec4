"""Training: configs, schedule, losses, a short run that must learn synthetic cracks, resume, DDP
(validation: tests/test_validation.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import TINY_CBPRN

from crackrender.errors import CrackRenderError
from crackrender.train.config import DEFAULTS, load_config, parse_override
from crackrender.train.losses import dice_loss, segmentation_losses
from crackrender.train.schedule import warmup_poly

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"name": "cbprn", **TINY_CBPRN}


def test_defaults_are_the_papers_recipe():
    cfg = load_config()
    assert cfg["optim"] == {"name": "adam", "lr": 0.01, "weight_decay": 1e-4, "warmup_epochs": 100, "poly_power": 0.9}
    assert cfg["data"]["batch_size"] == 16 and cfg["data"]["size"] == 256 and cfg["data"]["mode"] == "resize"
    assert cfg["trainer"]["max_epochs"] == 1000
    paper = load_config(ROOT / "configs" / "cbprn_paper.yaml")
    assert paper["model"]["backbone"] == "resnet50" and paper["optim"]["lr"] == 0.01


def test_every_shipped_config_loads_and_builds_its_model():
    from crackrender.models import create_model

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        model = create_model(**{**cfg["model"], "pretrained": False})
        assert model.config["name"] == cfg["model"]["name"], path


def test_overrides(tmp_path):
    assert parse_override("trainer.max_epochs=5") == {"trainer": {"max_epochs": 5}}
    assert parse_override("data.scale=[1, 2]") == {"data": {"scale": [1, 2]}}
    cfg = load_config(None, ["optim.lr=0.5", "model.backbone=resnet18"])
    assert cfg["optim"]["lr"] == 0.5 and cfg["model"]["backbone"] == "resnet18"
    assert cfg["optim"]["name"] == DEFAULTS["optim"]["name"]  # siblings kept
    with pytest.raises(CrackRenderError, match="unknown config key optim.lrr"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(CrackRenderError, match="key.sub=value"):
        load_config(None, ["trainer.max_epochs"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(CrackRenderError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(CrackRenderError, match="data.mode"):
        load_config(None, ["data.mode=stretch"])


def test_config_base_chain(tmp_path):
    (tmp_path / "parent.yaml").write_text(
        "name: parent\nmodel: {name: cbprn, backbone: resnet18, edge_dim: 32}\n"
        "data: {train: [{root: a, split: train}, {root: b, split: train}], batch_size: 8}\n"
        "optim: {lr: 0.001, name: adamw}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text(
        "base: ../parent.yaml\nname: child\ndata: {train: [{root: c, split: train}]}\noptim: {lr: 0.0002}\n")
    child = load_config(tmp_path / "sub" / "child.yaml", ["data.batch_size=4"])
    assert child["name"] == "child" and child["optim"] == {**DEFAULTS["optim"], "name": "adamw", "lr": 0.0002}
    assert child["data"]["train"] == [{"root": "c", "split": "train"}]  # lists are replaced whole
    assert child["data"]["batch_size"] == 4 and child["model"]["edge_dim"] == 32  # override last; the rest inherited
    # a file that names another model does not inherit the base model's keywords
    (tmp_path / "unet.yaml").write_text("base: parent.yaml\nmodel: {name: unet, backbone: resnet34}\n")
    assert load_config(tmp_path / "unet.yaml")["model"] == {"name": "unet", "backbone": "resnet34"}
    # nor does a command-line rename; keywords given after the new name stay
    renamed = load_config(tmp_path / "parent.yaml", ["model.name=unet", "model.backbone=resnet34"])
    assert renamed["model"] == {"name": "unet", "backbone": "resnet34"}
    assert load_config(tmp_path / "parent.yaml", ["model.name=cbprn"])["model"]["edge_dim"] == 32  # same name: kept
    (tmp_path / "loop_a.yaml").write_text("base: loop_b.yaml\n")
    (tmp_path / "loop_b.yaml").write_text("base: loop_a.yaml\n")
    with pytest.raises(CrackRenderError, match="loops back"):
        load_config(tmp_path / "loop_a.yaml")
    (tmp_path / "orphan.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(CrackRenderError, match="nowhere.yaml does not exist"):
        load_config(tmp_path / "orphan.yaml")


def test_derived_configs_name_their_base():
    # the stage configs differ from their base in a few values; those values are what make each stage
    focus = load_config(ROOT / "configs" / "cbprn_v3_focus.yaml")
    wide = load_config(ROOT / "configs" / "cbprn_v2_wide.yaml")
    assert focus["model"] == wide["model"] and focus["data"]["paste_families"] == wide["data"]["paste_families"]
    assert (focus["optim"]["lr"], wide["optim"]["lr"]) == (1.5e-4, 3.0e-4)
    peer = load_config(ROOT / "configs" / "unet_v2_wide.yaml")
    assert peer["model"] == {"name": "unet", "backbone": "resnet18"} and peer["init"] is None
    assert peer["data"] == wide["data"] and peer["optim"] == wide["optim"]
    # stage 5 differs from stage 4 only in its zoom and length, for the CBPRN and its peer alike
    native, peer_native = (load_config(ROOT / "configs" / f"{m}_v4_native.yaml") for m in ("cbprn", "unet"))
    assert native["data"]["scale"] == [0.8, 1.25] and native["trainer"]["max_epochs"] == 8
    assert {**native["data"], "scale": focus["data"]["scale"]} == focus["data"] and native["optim"] == focus["optim"]
    assert peer_native["model"] == {"name": "unet", "backbone": "resnet18"} and peer_native["init"] is None
    assert (peer_native["data"], peer_native["optim"], peer_native["trainer"]) == (
        native["data"], native["optim"], native["trainer"])


def test_warmup_then_poly():
    total, warm = 100, 10
    lrs = [warmup_poly(s, total, warm, 0.9) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))  # rises during warm-up
    assert all(a > b for a, b in zip(lrs[10:-1], lrs[11:]))  # then decays
    assert lrs[55] == pytest.approx((1 - 45 / 90) ** 0.9)


def test_losses():
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 6:9] = 1
    perfect = torch.where(target > 0, 20.0, -20.0)
    assert dice_loss(perfect, target) < 1e-6
    assert dice_loss(-perfect, target) > 0.9
    outputs = {"coarse": perfect[:, :, ::4, ::4], "point_logits": torch.tensor([[5.0, -5.0]]),
               "point_labels": torch.tensor([[1.0, 0.0]])}
    terms = segmentation_losses(outputs, target, {"heatmap_bce": 1.0, "heatmap_dice": 0.0, "points": 2.0})
    assert set(terms) == {"heatmap_bce", "heatmap_dice", "points", "loss"}
    assert terms["loss"] == pytest.approx(float(terms["heatmap_bce"] + 2 * terms["points"]))


def _synthetic_config(tmp_path, **overrides):
    from crackrender.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "syn", 48, size=(160, 160), seed=3, splits={"train": 0.75, "val": 0.25})
    cfg = load_config(None, [
        "name=syn", f"out={tmp_path / 'runs'}",
        "data.train=[{root: %s, split: train}]" % data, "data.val=[{root: %s, split: val}]" % data,
        "data.size=128", "data.mode=crop", "data.scale=[1.0, 1.0]", "data.batch_size=8", "data.num_workers=0",
        "data.samples_per_epoch=96", "optim.name=adamw", "optim.lr=3.0e-3", "optim.warmup_epochs=0.5",
        "trainer.max_epochs=8", "trainer.precision=32-true", "trainer.progress=false", "trainer.check_val_every_n_epoch=4",
    ])
    cfg["model"] = {"name": "cbprn", "backbone": "resnet18", "edge_dim": 32, "edge_heads": 4, "fpn_dim": 64,
                    "feature_dim": 64, "heatmap_dim": 32, "point_hidden": 128}
    for key, value in overrides.items():
        section, name = key.split("__")
        cfg[section][name] = value
    return cfg, data


@pytest.mark.slow
def test_light_config_learns_synthetic_cracks(tmp_path):
    """About 100 steps on CPU must reach crack IoU >= 0.7 on synthetic images held out of training."""
    from crackrender.checkpoint import load_model
    from crackrender.data.datasets import CrackDataset
    from crackrender.metrics import confusion, scores
    from crackrender.train.run import run_training

    cfg, data = _synthetic_config(tmp_path)
    folder = run_training(cfg)
    model = load_model(folder / "model-last.safetensors")
    held_out = CrackDataset(data, "val")
    train_stems = set((data / "train.txt").read_text().split())
    assert not train_stems & {stem for stem, _, _ in held_out.pairs}
    totals = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for i in range(len(held_out)):
        sample = held_out[i]
        pred = model.predict(sample["image"][None])
        c = confusion(pred.mask[0].numpy(), sample["mask"][0].numpy() > 0.5)
        totals = {k: totals[k] + c[k] for k in totals}
    iou = scores(totals)["iou"]
    assert iou >= 0.7, f"crack IoU {iou:.3f} on held-out synthetic images"
    # the run left what it promises
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    assert (folder / "model-best.safetensors").is_file() and (folder / "config.yaml").is_file()
    log = (folder / "csv" / "metrics.csv").read_text()
    assert "val/miou" in log and "train/points" in log


def _tiny_run_config(tmp_path, name="tiny"):
    from crackrender.data.synthetic import write_synthetic_dataset

    data = write_synthetic_dataset(tmp_path / "tiny", 8, size=(64, 64), seed=1, splits={"train": 0.75, "val": 0.25})
    cfg = {
        "name": name, "out": str(tmp_path / "runs"), "model": TINY_MODEL,
        "data": {"train": [{"root": str(data), "split": "train"}], "val": [{"root": str(data), "split": "val"}],
                 "size": 64, "mode": "crop", "batch_size": 2, "num_workers": 0, "samples_per_epoch": 4},
        "optim": {"name": "adamw", "lr": 1e-3, "warmup_epochs": 0},
        "trainer": {"max_epochs": 1, "precision": "32-true", "progress": False, "accelerator": "cpu", "threads": 1},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.slow
def test_resume_continues_from_last_checkpoint(tmp_path):
    config = _tiny_run_config(tmp_path)
    first = _cli("train", config)
    assert first.returncode == 0, first.stderr[-2000:]
    last = tmp_path / "runs" / "tiny" / "checkpoints" / "last.ckpt"
    first_state = torch.load(last, weights_only=True)  # loads without executing code
    step1 = first_state["global_step"]
    assert step1 == 2
    again = _cli("train", config)  # a second run into the same folder must not clobber it
    assert again.returncode == 2 and "--resume" in again.stderr and again.stderr.count("\n") == 1
    csv_dir = tmp_path / "runs" / "tiny" / "csv"
    first_log = (csv_dir / "metrics.csv").read_text()
    resumed = _cli("train", config, "trainer.max_epochs=2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # the first launch's log is kept beside the resumed one's, not overwritten
    assert (csv_dir / "metrics.part1.csv").read_text() == first_log and (csv_dir / "metrics.csv").is_file()
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 2 * step1 and state["epoch"] == first_state["epoch"] + 1  # continued, not restarted
    fresh = _cli("train", _tiny_run_config(tmp_path, "other"), "--resume")
    assert fresh.returncode == 2 and "no checkpoint to resume" in fresh.stderr


@pytest.mark.slow
def test_resumed_run_does_not_replay_its_first_batches(tmp_path, monkeypatch):
    """A resumed launch must draw new samples, augmentations and points, not repeat step 0's."""
    from crackrender.train import run as run_module
    from crackrender.train.task import SegmentationTask

    seen = []
    original = SegmentationTask.training_step

    def recording_step(self, batch, batch_idx):
        draw = torch.randint(1 << 30, (1,), generator=self.point_generator).item()
        seen.append((float(batch["image"].double().sum()), draw))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SegmentationTask, "training_step", recording_step)
    cfg = yaml.safe_load(Path(_tiny_run_config(tmp_path)).read_text())
    cfg = load_config(None, [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}" for k, v in cfg.items()])
    run_module.run_training(cfg)
    first_launch = list(seen)
    seen.clear()
    cfg["trainer"]["max_epochs"] = 2
    run_module.run_training(cfg, resume=True)
    assert len(first_launch) == 2 and len(seen) == 2
    assert seen[0][0] != first_launch[0][0], "the resumed launch replayed the first batch's images"
    assert seen[0][1] != first_launch[0][1], "the resumed launch replayed the first batch's points"


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    """Lightning's DDP with the gloo backend, two CPU processes, a few steps."""
    config = _tiny_run_config(tmp_path, "ddp")
    result = _cli("train", config, "trainer.devices=2", "trainer.strategy=ddp", "data.samples_per_epoch=8")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gloo" in result.stderr or "gloo" in result.stdout
    folder = tmp_path / "runs" / "ddp"
    # 8 samples over 2 processes at batch 2: 2 steps each
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert (folder / "model-last.safetensors").is_file()


def test_train_cli_errors(tmp_path):
    missing = _cli("train", tmp_path / "none.yaml")
    assert missing.returncode == 2 and missing.stderr.startswith("error: cannot read config")
    config = _tiny_run_config(tmp_path)
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["train"] = [{"root": str(tmp_path / "nowhere"), "split": "train"}]
    config.write_text(yaml.safe_dump(cfg))
    result = _cli("train", config)
    assert result.returncode == 2 and "dataset folder not found" in result.stderr


def test_init_starts_from_a_model_files_weights(tmp_path):
    """``init=MODEL`` (fine-tuning) loads the file's weights; another architecture is refused."""
    from crackrender.checkpoint import save_model
    from crackrender.models import create_model
    from crackrender.train.task import SegmentationTask

    torch.manual_seed(3)
    source = create_model(**TINY_MODEL)
    path = save_model(tmp_path / "start.safetensors", source)
    cfg = load_config(None, [f"model={TINY_MODEL}", f"init={path}"])
    task = SegmentationTask(cfg)
    for key, value in source.state_dict().items():
        assert torch.equal(task.model.state_dict()[key], value), key
    fresh = SegmentationTask(load_config(None, [f"model={TINY_MODEL}"]))
    assert not torch.equal(fresh.model.point_head.state_dict()["layers.0.weight"],
                           source.point_head.state_dict()["layers.0.weight"])
    wider = load_config(None, [f"model={ {**TINY_MODEL, 'point_hidden': 48} }", f"init={path}"])
    with pytest.raises(CrackRenderError, match="does not match the cbprn architecture"):
        SegmentationTask(wider)
    # through the CLI: one line, exit 2, and no run folder left behind
    missing = _cli("train", ROOT / "configs" / "demo_synthetic.yaml", "init=" + str(tmp_path / "nope.safetensors"),
                   "--out", tmp_path / "runs")
    assert missing.returncode == 2 and "checkpoint not found" in missing.stderr
    assert not (tmp_path / "runs").exists()


def test_select_by_is_checked():
    assert load_config()["trainer"]["select_by"] == "miou"
    assert load_config(overrides=["trainer.select_by=dataset_mean_f1"])["trainer"]["select_by"] == "dataset_mean_f1"
    with pytest.raises(CrackRenderError, match="select_by must be one of"):
        load_config(overrides=["trainer.select_by=loss"])


def test_paste_settings_are_checked_and_reach_the_transform():
    from crackrender.data.paste import PasteDistractors
    from crackrender.data.transforms import train_transforms

    cfg = load_config(overrides=["data.paste_distractors=0.6", "data.paste_families=shadow_edges,sawn_joints",
                                 "data.paste_most=1"])["data"]
    tf = train_transforms(64, "crop", (1.0, 1.0), 0.0, cfg["paste_distractors"], cfg["paste_families"],
                          cfg["paste_most"])
    (paste,) = [t for t in tf.transforms if isinstance(t, PasteDistractors)]
    assert (paste.p, paste.families, paste.most) == (0.6, ("sawn_joints", "shadow_edges"), 1)
    for bad, message in (("data.paste_families=paint", "unknown distractor family paint"),
                         ("data.paste_families=none", "names no family"),
                         ("data.paste_distractors=1.5", "must be a probability"),
                         ("data.paste_most=0", "paste_most must be a whole number")):
        with pytest.raises(CrackRenderError, match=message):
            load_config(overrides=["data.paste_distractors=0.5", bad])


def test_model_best_follows_select_by(tmp_path):
    """model-best is the validation with the highest select_by value, not the highest pooled mIoU;
    a run resumed under another select_by does not compare against the old quantity's best."""
    from types import SimpleNamespace

    from crackrender.checkpoint import read_checkpoint
    from crackrender.models import create_model
    from crackrender.train.run import ExportModel

    task = SimpleNamespace(model=create_model("cbprn", **TINY_CBPRN))
    export = ExportModel(tmp_path, "dataset_mean_f1")

    def validate(step, miou, mean_f1):
        metrics = {"val/miou": torch.tensor(miou), "val/dataset_mean_f1": torch.tensor(mean_f1)}
        trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, callback_metrics=metrics,
                                  current_epoch=step, global_step=step)
        export.on_validation_end(trainer, task)

    validate(100, 0.80, 0.50)
    validate(200, 0.85, 0.45)  # better pooled mIoU, worse mean F1: not the best
    validate(300, 0.70, 0.60)
    validate(400, 0.90, 0.55)

    def best_step():
        return read_checkpoint(tmp_path / "model-best.safetensors")[2]["global_step"]

    assert best_step() == 300
    assert read_checkpoint(tmp_path / "model-last.safetensors")[2]["global_step"] == 400
    old = {"best": 0.95}  # saved by a run that selected by pooled mIoU
    export = ExportModel(tmp_path, "dataset_mean_f1")
    export.load_state_dict(old)
    validate(500, 0.60, 0.40)
    assert best_step() == 500
    export = ExportModel(tmp_path, "miou")
    export.load_state_dict(old)
    validate(600, 0.90, 0.90)
    assert best_step() == 500
