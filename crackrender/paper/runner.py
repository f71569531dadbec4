"""``crackrender tables N``: train every run a table needs (reusing finished ones), score each row
on the test splits, time each row on one high-resolution image, and write OUT/tableN.md + .json.

OUT/
  runs/<run>/            a `crackrender train` run folder, plus paper_train.json once it finished
  data/synthetic-*/      the synthetic dataset (--data synthetic)
  tableN.md, tableN.json
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import yaml

from crackrender.errors import CrackRenderError
from crackrender.io import atomic_write_json, atomic_write_text
from crackrender.paper.configs import row_config
from crackrender.paper.data import data_source
from crackrender.paper.markdown import render_table
from crackrender.paper.measure import evaluate_model, load_test_sets, measure_fps
from crackrender.paper.tables import Row, get_table

DEFAULT_LONG_EDGE = 900   # the paper's Table 3 setting
FPS_SEED = 7
MARKER = "paper_train.json"


@dataclass(frozen=True)
class Mode:
    name: str
    test_limit: int | None      # test images per dataset (None: all)
    fps_size: tuple[int, int]   # (width, height) of the timed image
    warmup: int
    repeats: int


FULL = Mode("full", None, (2048, 1536), 2, 10)
QUICK = Mode("quick", 3, (512, 384), 1, 3)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    name = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {name}, {torch.get_num_threads()} torch thread(s)"


def _comparable(config: dict) -> dict:
    """A config without what may change between reruns of the same experiment."""
    cfg = {k: v for k, v in config.items() if k != "out"}
    cfg["trainer"] = {k: v for k, v in config["trainer"].items() if k not in ("progress", "threads")}
    return cfg


def _differences(a: dict, b: dict, where: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        path = f"{where}.{key}" if where else str(key)
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            out += _differences(a[key], b[key], path)
        elif a.get(key) != b.get(key):
            out.append(path)
    return out


def ensure_trained(cfg: dict, runs_dir: Path, *, retrain: bool = False, log: Callable = _log) -> dict:
    """Train ``cfg`` into ``runs_dir/<name>`` unless a finished run of the same config is there;
    an unfinished one resumes from its last checkpoint. Returns the row's training record."""
    from crackrender.train.run import run_training

    folder = runs_dir / cfg["name"]
    marker = folder / MARKER
    saved = folder / "config.yaml"
    if folder.is_dir() and not retrain and saved.is_file():
        changed = _differences(_comparable(yaml.safe_load(saved.read_text())), _comparable(cfg))
        if changed:
            raise CrackRenderError(f"{folder} was trained with a different config ({', '.join(changed[:4])}"
                                   f"{', ...' if len(changed) > 4 else ''} differ: quick vs full, or other data?); "
                                   f"pass --retrain to replace it or choose another --out")
        if marker.is_file():
            record = json.loads(marker.read_text())
            log(f"[{cfg['name']}] reusing the finished run in {folder} (trained in {record['seconds']:.0f} s)")
            return {**record, "model_file": str(_model_file(folder)), "reused": True}  # OUT may have moved
    resume = not retrain and (folder / "checkpoints" / "last.ckpt").is_file()
    log(f"[{cfg['name']}] {'resuming' if resume else 'training'} {cfg['model']['name']} "
        f"({cfg['trainer']['max_epochs']} epochs) into {folder}")
    start = time.perf_counter()
    run_training(cfg, resume=resume, overwrite=not resume, out=runs_dir)
    seconds = time.perf_counter() - start
    record = {"seconds": seconds, "resumed": resume, "finished": _now(), "epochs": cfg["trainer"]["max_epochs"],
              "model_file": str(_model_file(folder))}
    atomic_write_json(marker, record)
    log(f"[{cfg['name']}] trained in {seconds:.0f} s")
    return {**record, "reused": False}


def _model_file(folder: Path) -> Path:
    for name in ("model-best.safetensors", "model-last.safetensors"):
        if (folder / name).is_file():
            return folder / name
    raise CrackRenderError(f"{folder} holds no model file (model-best/model-last.safetensors)")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _device_overrides(device: torch.device, requested: str) -> list[str]:
    if requested in (None, "auto"):
        return []
    if device.type == "cpu":
        return ["trainer.accelerator=cpu"]
    return ["trainer.accelerator=gpu", f"trainer.devices=[{device.index or 0}]"]  # train where we evaluate


def run_table(number: int, *, quick: bool = False, out: str | os.PathLike = "paper_runs", data: str = "shared",
              data_root: str | os.PathLike | None = None, long_edge: int | None = None,
              rows: list[str] | None = None, retrain: bool = False,
              device: str = "auto", command: str | None = None, progress: bool = True,
              log: Callable = _log) -> dict:
    """Run Table ``number`` end to end; returns the result written to OUT/tableN.json."""
    from crackrender.checkpoint import load_model
    from crackrender.data.synthetic import render_crack_scene
    from crackrender.segment import resolve_device

    started = time.perf_counter()
    table = get_table(number)
    selected = table.select(rows)
    if long_edge is not None and not any(r.long_edge for r in table.rows):
        raise CrackRenderError(f"--long-edge applies to Table 3's PointRend rows; Table {number} has none")
    if long_edge is not None and long_edge < 0:
        raise CrackRenderError(f"--long-edge must be a positive number of pixels (0: off), got {long_edge}")
    long_edge = DEFAULT_LONG_EDGE if long_edge is None else long_edge
    mode = QUICK if quick else FULL
    out = Path(out)
    dev = resolve_device(device)
    source = data_source(data, out, quick, None if data_root is None else Path(data_root))
    runs_dir = out / "runs"
    command = command or f"crackrender tables {number}"
    log(f"Table {number} ({mode.name}, {len(selected)} row(s), data: {source.kind}, device: {dev}) -> {out}")

    # 1. train (or reuse) every run the selected rows need, each once
    training = {}
    for run in dict.fromkeys(r.run for r in selected):
        cfg = row_config(run, quick=quick, overrides=[*source.overrides(), f"out={runs_dir}",
                                                      *_device_overrides(dev, device)])
        training[run] = ensure_trained(cfg, runs_dir, retrain=retrain, log=log)

    # 2. accuracy on the test splits, then 3. FPS on one high-resolution image, every row alike
    test_sets = load_test_sets(source.test, mode.test_limit)
    models: dict = {}

    def model_for(row: Row):
        overrides = {"coarse_long_edge": long_edge or None} if row.long_edge else {}
        key = (row.run, tuple(sorted(overrides.items())))
        if key not in models:
            model = load_model(Path(training[row.run]["model_file"]), device=dev, **overrides)
            models[key] = model.to(memory_format=torch.channels_last) if dev.type == "cpu" else model
        return models[key]

    results = []
    for row in selected:
        t0 = time.perf_counter()
        scores = evaluate_model(model_for(row), test_sets, dev, predict=row.predict, coarse=table.coarse,
                                desc=f"Table {number} {row.key}", progress=progress)
        mba = scores["all"]["mba"]
        log(f"[{row.key}] mIoU {scores['all']['miou']:.4f}  mBA {float('nan') if mba is None else mba:.4f}  "
            f"Dice {scores['all']['dice']:.4f}  ({time.perf_counter() - t0:.0f} s)")
        results.append({"key": row.key, "set_no": row.set_no, "cells": list(row.cells), "run": row.run,
                        "predict": row.predict, "paper": row.paper, "ours": dict(scores["all"]),
                        "per_dataset": scores["per_dataset"], "train": training[row.run],
                        "coarse_long_edge": (long_edge or None) if row.long_edge else None})
    w, h = mode.fps_size
    hr_image = render_crack_scene(w, h, seed=FPS_SEED).image
    for row, res in zip(selected, results):
        fps = measure_fps(model_for(row), hr_image, dev, predict=row.predict, warmup=mode.warmup, repeats=mode.repeats)
        res["fps"] = fps
        res["ours"].update(fps=fps["fps"], refined=fps["refined"])
        log(f"[{row.key}] {fps['fps']:.3g} FPS on {w}x{h} ({fps['median_s']:.3f} s per image)")

    result = {
        "table": number, "caption": table.caption, "command": command, "date": _now(), "mode": mode.name,
        "settings": asdict(mode),
        "data": {"kind": source.kind, "train": source.train, "val": source.val,
                 "test": [{"name": t.name, "root": str(t.dataset.root), "split": t.dataset.split,
                           "images": len(t.indices), "of": len(t.dataset)} for t in test_sets]},
        "device": describe_device(dev), "torch": torch.__version__, "dtype": "float32",
        "fps_image": {"width": w, "height": h, "source": f"render_crack_scene({w}, {h}, seed={FPS_SEED})",
                      "warmup": mode.warmup, "repeats": mode.repeats},
        "long_edge": (long_edge or None) if any(r.long_edge for r in selected) else None,
        "rows": results,
    }
    result["wall_s"] = time.perf_counter() - started
    atomic_write_json(out / f"table{number}.json", result)
    atomic_write_text(out / f"table{number}.md", render_table(table, result))
    log(f"wrote {out / f'table{number}.md'} and table{number}.json ({result['wall_s']:.0f} s)")
    return result


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed, for the report: ``crackrender tables 2 --quick``."""
    return "crackrender " + shlex.join((sys.argv if argv is None else argv)[1:])
