"""Train one model for a set time from the data pack, score it on the pack's val images, and put
its weights where the GPU run returns them: one stage of ``benchmarks/gpu_run.sh``.

The config (``configs/gpu_light.yaml``, ``configs/gpu_paper.yaml``) names its data as ``.pack/<set>``;
``--pack`` points those roots at another pack. Training stops at ``--seconds`` (Lightning's
max_time). Then ``model-last.safetensors`` is scored on every val set of the config at native size
with the project's metrics (``crackrender.paper.measure.evaluate_model``: aggregate mIoU, crack
IoU, F1; mBA per image), after being written as float16 shards to ``--out`` if they fit what the
device tool returns (``gpu_results.write_shards``). ``--dry-run`` trains two tiny steps on the CPU.

    python benchmarks/gpu_train.py --config configs/gpu_light.yaml --key light --seconds 90 \\
        --work /tmp/gpu-run --out "$OUT" --results "$OUT/results.json"
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: the package beside it
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_results import update, write_shards  # noqa: E402

PACK_PREFIX = ".pack/"
# a CPU check of the same stages: two steps of two 64-px crops, no workers, and the CBPRN narrowed as
# configs/paper/quick.yaml narrows it (ResNet18: still two shards of weights, so sharding is exercised)
DRY_RUN = ["data.size=64", "data.batch_size=2", "data.samples_per_epoch=4", "data.num_workers=0",
           "trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1", "trainer.precision=32-true",
           "trainer.accelerator=cpu", "trainer.threads=2", "trainer.log_every_n_steps=1",
           "model.backbone=resnet18"]
# a tiny CBPRN besides; the UNet peer takes none of these settings
DRY_RUN_CBPRN = ["model.edge_dim=16", "model.edge_heads=2", "model.window=4", "model.fpn_dim=32",
                 "model.feature_dim=32", "model.heatmap_dim=16", "model.point_hidden=32"]


def max_time(seconds: float) -> str:
    """Lightning's "DD:HH:MM:SS".

    Examples:
        >>> max_time(90), max_time(3725.4)
        ('00:00:01:30', '00:01:02:05')
    """
    s = max(1, int(seconds))
    return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def repoint(entries: list[dict], pack: Path) -> list[dict]:
    """Config data entries with ``.pack/<set>`` roots moved to ``pack/<set>``."""
    return [{**e, "root": str(pack / e["root"][len(PACK_PREFIX):]) if e["root"].startswith(PACK_PREFIX) else e["root"]}
            for e in entries]


def build_config(path: Path, *, seconds: float, pack: Path, runs: Path, dry_run: bool, overrides: list[str]) -> dict:
    from crackrender.train.config import load_config

    base = [f"trainer.max_time={max_time(seconds)}", f"out={runs}"]
    config = load_config(path, [*base, *overrides])
    if dry_run:
        tiny = DRY_RUN + (DRY_RUN_CBPRN if config["model"]["name"] == "cbprn" else [])
        config = load_config(path, [*base, *tiny, *overrides])
    for part in ("train", "val"):
        config["data"][part] = repoint(config["data"][part], pack)
    return config


def read_log(folder: Path) -> dict:
    """Steps, the last training loss and the last Lightning validation from ``csv/metrics.csv``."""
    path = folder / "csv" / "metrics.csv"
    if not path.is_file():
        return {}
    rows = list(csv.DictReader(path.open()))
    steps = [int(r["step"]) for r in rows if r.get("step")]
    losses = [r for r in rows if r.get("train/loss")]
    vals = [r for r in rows if r.get("val/miou")]
    rec: dict = {"logged_steps": max(steps) + 1 if steps else 0}
    if losses:
        rec["last_train_loss"] = float(losses[-1]["train/loss"])
    if vals:
        rec["lightning_val"] = {k.removeprefix("val/"): float(v) for k, v in vals[-1].items()
                                if k.startswith("val/") and v not in ("", None)}
    return rec


def evaluate(model_file: Path, config: dict, device) -> dict:
    """The project's metrics of ``model_file`` on every val set of ``config``, at native size."""
    from crackrender.checkpoint import load_model
    from crackrender.paper.measure import evaluate_model, load_test_sets

    model = load_model(model_file, device=device)
    sets = load_test_sets([(Path(e["root"]).name, e["root"], e.get("split", "val")) for e in config["data"]["val"]],
                          limit=None)
    return evaluate_model(model, sets, device, progress=False)


def _spare_shared_memory(workers: int) -> None:
    """DataLoader workers hand batches over in /dev/shm; where it is small (a container's 64 MB),
    they fail with a bus error, so files stand in for it there."""
    import shutil

    import torch

    try:
        free = shutil.disk_usage("/dev/shm").free
    except OSError:
        free = 0
    if workers and free < 2**30:
        torch.multiprocessing.set_sharing_strategy("file_system")
        print(f"/dev/shm has {free / 2**20:.0f} MiB free: DataLoader workers share batches through files", flush=True)


def train(args) -> dict:
    import torch

    from crackrender.checkpoint import read_checkpoint
    from crackrender.train.run import resolve_precision, run_training

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device (use --dry-run on a CPU)")
    config = build_config(args.config, seconds=args.seconds, pack=args.pack, runs=args.work / "runs",
                          dry_run=args.dry_run, overrides=args.override)
    data, trainer = config["data"], config["trainer"]
    _spare_shared_memory(data["num_workers"])
    steps_per_epoch = (data["samples_per_epoch"] or 0) // data["batch_size"]
    rec = {"config": str(args.config), "name": config["name"], "model": config["model"], "budget_s": args.seconds,
           "batch_size": data["batch_size"], "size": data["size"], "mode": data["mode"],
           "precision": resolve_precision(trainer["precision"], trainer["accelerator"]),
           "planned_steps": steps_per_epoch * trainer["max_epochs"]}
    print(f"{args.key}: training {config['name']} for at most {args.seconds:.0f} s "
          f"({rec['planned_steps']} steps planned, {rec['precision']})", flush=True)
    start = time.perf_counter()
    folder = run_training(config, overwrite=True)
    rec["fit_s"] = round(time.perf_counter() - start, 1)
    rec.update(read_log(folder))
    model_file = folder / "model-last.safetensors"  # written at the end of training, also when max_time stopped it
    rec["global_step"] = int(read_checkpoint(model_file)[2].get("global_step") or rec.get("logged_steps", 0))
    rec["images_per_s"] = rec["global_step"] * data["batch_size"] / rec["fit_s"] if rec["fit_s"] else None
    rec["schedule_done"] = rec["global_step"] / rec["planned_steps"] if rec["planned_steps"] else None
    print(f"{args.key}: {rec['global_step']} steps in {rec['fit_s']:.0f} s ({rec['images_per_s'] or 0:.1f} images/s "
          f"with Lightning's start and validation, {(rec['schedule_done'] or 0):.0%} of the schedule)", flush=True)
    # the weights first: scoring may still be cut off by the stage's limit
    if args.return_weights:
        rec["weights"] = write_shards(model_file, args.out, f"gpu-{args.key}")
    else:
        rec["weights"] = {"not_returned": "not asked for (gpu_run.sh --return)"}
    print(f"{args.key}: weights {rec['weights']}", flush=True)
    if args.results:
        update(args.results, "train", args.key, value=rec)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.dry_run else "cpu")
    start = time.perf_counter()
    rec["val"] = evaluate(model_file, config, device)
    rec["eval_s"] = round(time.perf_counter() - start, 1)
    v = rec["val"]["all"]
    print(f"{args.key}: val mIoU {v['miou']:.3f}, crack IoU {v['iou']:.3f}, F1 {v['dice']:.3f}, mBA {_num(v['mba'])} "
          f"({v['n_images']} images, {rec['eval_s']:.0f} s)", flush=True)
    if args.results:
        update(args.results, "train", args.key, value=rec)
    return rec


def _num(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--key", required=True, help="its name in results.json and in the shards' names (gpu-<key>)")
    ap.add_argument("--seconds", type=float, required=True, help="training time (Lightning max_time)")
    ap.add_argument("--pack", type=Path, default=REPO / ".pack", help="the data pack the config's .pack/ roots mean")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (run folders)")
    ap.add_argument("--out", type=Path, required=True, help="where returned files go")
    ap.add_argument("--results", type=Path)
    ap.add_argument("--return-weights", action="store_true", help="write the weights' shards to --out if they fit")
    ap.add_argument("--dry-run", action="store_true", help="two tiny steps on the CPU")
    ap.add_argument("--override", action="append", default=[], help="a config override key=value (repeatable)")
    args = ap.parse_args(argv)
    if not args.pack.is_dir():
        ap.error(f"no data pack at {args.pack}: build it with benchmarks/make_data_pack.py")
    try:
        train(args)
    except Exception as exc:  # noqa: BLE001  (recorded for the report, then the stage fails)
        if args.results:
            update(args.results, "train", args.key, "error",
                   value=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500])
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
