"""PyTorch against onnxruntime (float32 and INT8) in one run: speed and accuracy (issue 13).

Exports the model twice into a cache folder (``crackrender export``, and with ``--int8``
calibrated on DeepCrack537's train split), then with each backend, on the same threads:

1. a synthetic 2048x1536 scene (``crackrender.data.synthetic``): seconds per stage, and the crack
   IoU of each backend's mask against PyTorch's and against the scene's exact truth;
2. DeepCrack537's test split at native size (237 images; ``--limit`` for fewer, evenly spaced):
   aggregated crack IoU, mIoU, F1 and per-image mBA, seconds per image;
3. the false-alarm benchmark of benchmarks/false_alarm.py (its cached 60-scene set; ``--fa-limit``
   scenes, evenly spaced): share of distractor pixels called crack, FP px per MP, crack IoU.

    python benchmarks/onnx_speed.py                               # everything (long on 2 cores)
    python benchmarks/onnx_speed.py --limit 30 --fa-limit 6       # a shorter look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = Path.home() / ".cache" / "crackrender" / "onnx"


def exports(model: str | None, cache: Path, calibration: Path, reuse: bool) -> dict[str, Path]:
    from crackrender.deploy import export_onnx

    paths = {"onnxruntime fp32": cache / "cbprn.onnx", "onnxruntime int8": cache / "cbprn-int8.onnx"}
    for name, path in paths.items():
        if reuse and path.is_file():
            continue
        start = time.perf_counter()
        export_onnx(model, path, int8="int8" in name, calibration=[calibration], progress=False)
        print(f"exported {name} to {path} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return paths


def segmenters(model: str | None, paths: dict[str, Path]) -> dict:
    from crackrender.deploy import onnx_segmenter
    from crackrender.segment import Segmenter

    return {"torch fp32": Segmenter.from_checkpoint(model, device="cpu"),
            **{name: onnx_segmenter(path) for name, path in paths.items()}}


def iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def scene_run(segs: dict, size: tuple[int, int], repeats: int) -> dict:
    from crackrender.data.synthetic import render_crack_scene

    scene = render_crack_scene(*size, seed=0)
    rows, masks = {}, {}
    for name, seg in segs.items():
        times, stages = [], {}
        for _ in range(repeats):
            result = seg(scene.image, keep_prob=False)
            times.append(result.timings["total"])
            for k, v in result.timings.items():
                stages.setdefault(k, []).append(v)
        masks[name] = result.mask
        rows[name] = {"seconds": statistics.median(times),
                      "stages": {k: statistics.median(v) for k, v in stages.items() if k != "total"},
                      "refined_points": result.refined_points, "iou_vs_truth": iou(result.mask, scene.mask)}
    reference = masks["torch fp32"]
    for name in rows:
        rows[name]["iou_vs_torch"] = iou(masks[name], reference)
    return rows


def evenly(items: list, limit: int | None) -> list:
    if not limit or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def segment_files(seg, files: list[Path], out: Path, label: str) -> float:
    """Masks of ``files`` into ``out``; seconds per image."""
    from crackrender.io import read_image, write_mask

    for stale in out.glob("*.png"):  # masks of an earlier run with other images would be scored too
        stale.unlink()
    total = 0.0
    for i, path in enumerate(files, 1):
        result = seg(read_image(path), keep_prob=False)
        total += result.timings["total"]
        write_mask(out / f"{path.stem}.png", result.mask)
        print(f"\r{label}: {i}/{len(files)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return total / len(files)


def deepcrack_run(segs: dict, root: Path, cache: Path, limit: int | None) -> dict:
    from crackrender.evaluate import evaluate_folders

    stems = evenly((root / "test.txt").read_text().split(), limit)
    files = [next((root / "images").glob(f"{s}.*")) for s in stems]
    rows = {}
    for name, seg in segs.items():
        out = cache / "pred" / f"deepcrack537-{len(files)}" / name.replace(" ", "-")
        seconds = segment_files(seg, files, out, f"deepcrack537 {name}")
        summary = evaluate_folders(out, root / "masks", progress=False)["summary"]
        rows[name] = {"seconds_per_image": seconds, "images": len(files),
                      **{k: summary[k]["aggregate"] for k in ("iou", "miou", "f1", "precision", "recall")},
                      "mba": summary["mba"]["per_image_mean"]}
    return rows


def false_alarm_run(segs: dict, cache: Path, limit: int | None) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from false_alarm import DEFAULT_CACHE, benchmark_set, score

    root = benchmark_set(DEFAULT_CACHE, 60, (1920, 1080), 0)
    stems = (root / "test.txt").read_text().split()
    # consecutive scenes alternate with and without cracks: take them in pairs, so a subset has both
    pairs = evenly(list(range(0, len(stems), 2)), -(-limit // 2) if limit else None)
    picked = [stems[j] for i in pairs for j in (i, i + 1) if j < len(stems)][:limit or None]
    files = [root / "images" / f"{s}.jpg" for s in picked]
    rows = {}
    for name, seg in segs.items():
        out = cache / "pred" / f"falsealarm-{len(files)}" / name.replace(" ", "-")
        seconds = segment_files(seg, files, out, f"false alarms {name}")
        s = score(out, root)
        rows[name] = {"seconds_per_image": seconds, "scenes": s["n_images"], "crack_scenes": s["crack_scenes"],
                      "distractor_share": s["distractor_share_predicted"], "fp_per_mp": s["fp_per_mp"],
                      "crack_iou": s["crack_iou"], "crack_f1": s["crack_f1"]}
    return rows


def markdown(result: dict) -> str:
    scene, base = result["scene"], result["scene"]["torch fp32"]["seconds"]
    lines = [f"Synthetic {result['size'][0]}x{result['size'][1]} scene, {result['threads']} threads, median of "
             f"{result['repeats']}:", "",
             "| backend | s/image | vs torch | network s | point refinement s | refined px | crack IoU vs torch "
             "| crack IoU vs truth |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in scene.items():
        st = r["stages"]
        network = st.get("network", sum(st.get(k, 0.0) for k in ("backbone", "edge_branch", "heatmap")))
        lines.append(f"| {name} | {r['seconds']:.2f} | {base / r['seconds']:.2f}x | {network:.2f} | "
                     f"{st.get('point_refinement', 0.0):.2f} | {r['refined_points']} | {r['iou_vs_torch']:.5f} | "
                     f"{r['iou_vs_truth']:.4f} |")
    if result.get("deepcrack537"):
        rows = result["deepcrack537"]
        n = next(iter(rows.values()))["images"]
        lines += ["", f"DeepCrack537 test ({n} images, native size; aggregated, mBA per-image mean):", "",
                  "| backend | crack IoU | mIoU | F1 | precision | recall | mBA | s/image |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{100 * r[k]:.2f}" for k in
                                                      ("iou", "miou", "f1", "precision", "recall", "mba"))
                         + f" | {r['seconds_per_image']:.2f} |")
    if result.get("false_alarm"):
        rows = result["false_alarm"]
        first = next(iter(rows.values()))
        lines += ["", f"False-alarm set ({first['scenes']} of the 60 scenes at 1920x1080, {first['crack_scenes']} "
                      f"with cracks):", "",
                  "| backend | distractor share called crack | FP px per MP | crack IoU | crack F1 | s/image |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, r in rows.items():
            lines.append(f"| {name} | {r['distractor_share']:.4f} | {r['fp_per_mp']:.0f} | {r['crack_iou']:.4f} | "
                         f"{r['crack_f1']:.4f} | {r['seconds_per_image']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="model file; default: the shipped model")
    p.add_argument("--cache", type=Path, default=CACHE, help="folder for the exports and predictions")
    p.add_argument("--reuse", action="store_true", help="reuse exports already in the cache")
    p.add_argument("--calibration", type=Path, default=DATA / "deepcrack537",
                   help="dataset for INT8 calibration (its train split)")
    p.add_argument("--deepcrack", type=Path, default=DATA / "deepcrack537")
    p.add_argument("--limit", type=int, help="DeepCrack537 test images (default: all 237)")
    p.add_argument("--fa-limit", type=int, default=60, help="false-alarm scenes (of 60)")
    p.add_argument("--width", type=int, default=2048)
    p.add_argument("--height", type=int, default=1536)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args()

    import torch

    from crackrender.errors import CrackRenderError

    torch.set_num_threads(args.threads)
    try:
        paths = exports(args.model, args.cache, args.calibration, args.reuse)
        segs = segmenters(args.model, paths)
        result = {"size": [args.width, args.height], "threads": args.threads, "repeats": args.repeats,
                  "scene": scene_run(segs, (args.width, args.height), args.repeats)}
        if args.deepcrack.is_dir():
            result["deepcrack537"] = deepcrack_run(segs, args.deepcrack, args.cache, args.limit)
        if args.fa_limit:
            result["false_alarm"] = false_alarm_run(segs, args.cache, args.fa_limit)
    except (CrackRenderError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
