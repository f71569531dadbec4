"""False alarms of crack models on the synthetic hard-negative set (issue 15).

Generates (or reuses from a cache folder) the seeded false-alarm set of ``crackrender data
falsealarm``: scenes full of lane paint, sawn joints, shadows, stains..., half of them with
cracks. Segments it with each model at native resolution and prints a markdown table: the share
of distractor pixels predicted crack, false-positive pixels per megapixel (whole images, all
scenes), and crack IoU / F1 pooled over the scenes with cracks; then false positives per
megapixel by distractor family (each scene counts towards its three families).

    python benchmarks/false_alarm.py                          # shipped model, 60 scenes at 1920x1080
    python benchmarks/false_alarm.py --n 6                    # a quick look (about 1 min on a CPU)
    python benchmarks/false_alarm.py a.safetensors b.ckpt --device cuda --json fa.json
    python benchmarks/false_alarm.py --straight-lines 0      # the model alone, no straight-line filter
    python benchmarks/false_alarm.py --flips 2 --scales 0.75,1,1.25   # with test-time views
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from crackrender.straight_lines import DEFAULT_MIN_LENGTH

DEFAULT_CACHE = Path.home() / ".cache" / "crackrender" / "falsealarm"


def benchmark_set(cache: Path, n: int, size: tuple[int, int], seed: int) -> Path:
    """The set for these parameters, written once (again when the generator's version changes);
    ``falsealarm.json`` marks it complete."""
    from crackrender.data.synthetic import FALSE_ALARM_SET_VERSION, write_false_alarm_set

    root = cache / f"n{n}-{size[0]}x{size[1]}-seed{seed}"
    stamp = root / "falsealarm.json"
    if stamp.is_file():
        params = json.loads(stamp.read_text())
        if [params.get(k) for k in ("n", "size", "seed", "version")] == [n, list(size), seed, FALSE_ALARM_SET_VERSION]:
            return root
    print(f"writing {n} scenes at {size[0]}x{size[1]} to {root} ...", file=sys.stderr)
    return write_false_alarm_set(root, n, size=size, seed=seed)


def segment_set(model: str | None, root: Path, out: Path, device: str, bf16: bool,
                straight_lines: int, views: dict) -> tuple[str, float]:
    """Masks for every listed scene into ``out``; returns the model file and seconds per image."""
    from crackrender.io import read_image, write_mask
    from crackrender.segment import Segmenter

    seg = Segmenter.from_checkpoint(model, device=device, bf16=bf16, straight_lines=straight_lines, **views)
    stems = (root / "test.txt").read_text().split()
    start = time.perf_counter()
    for i, stem in enumerate(stems, 1):
        write_mask(out / f"{stem}.png", seg(read_image(root / "images" / f"{stem}.jpg"), keep_prob=False).mask)
        print(f"\r{Path(seg.source).name}: {i}/{len(stems)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return seg.source, (time.perf_counter() - start) / len(stems)


def score(pred: Path, root: Path) -> dict:
    from crackrender.evaluate import evaluate_folders

    result = evaluate_folders(pred, root / "masks", distractors_dir=root / "distractors", progress=False)
    rows = result["images"]
    cracked = [r for r in rows if r["tp"] + r["fn"] > 0]
    tp, fp, fn = (sum(r[k] for r in cracked) for k in ("tp", "fp", "fn"))
    scenes = json.loads((root / "falsealarm.json").read_text())["scenes"]
    by_family: dict[str, list[float]] = {}
    for r in rows:
        for fam in scenes[r["name"]]["families"]:
            by_family.setdefault(fam, []).append(r["fp_px"] / (r["image_px"] / 1e6))
    return {**result["false_alarm"],
            "crack_iou": tp / (tp + fp + fn) if tp + fp + fn else None,
            "crack_f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
            "crack_scenes": len(cracked),
            "fp_per_mp_by_family": {f: sum(v) / len(v) for f, v in sorted(by_family.items())}}


def _f(x, digits=4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def markdown(results: list[dict], root: Path) -> str:
    lines = [f"False-alarm set: {root} ({results[0]['n_images']} scenes, {results[0]['crack_scenes']} with cracks)", "",
             "| model | straight lines dropped (px) | distractor share predicted crack | FP px per MP | crack IoU "
             "| crack F1 | s/image |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['model']} | {r['straight_lines'] or 'off'} | {_f(r['distractor_share_predicted'])} | {r['fp_per_mp']:.0f} | "
                     f"{_f(r['crack_iou'])} | {_f(r['crack_f1'])} | {r['seconds_per_image']:.2f} |")
    families = list(results[0]["fp_per_mp_by_family"])
    lines += ["", "FP px per MP by distractor family (mean over the scenes holding it; each has three families):", "",
              "| family | " + " | ".join(r["model"] for r in results) + " |", "|---|" + "---:|" * len(results)]
    for fam in families:
        lines.append(f"| {fam} | " + " | ".join(f"{r['fp_per_mp_by_family'][fam]:.0f}" for r in results) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*",
                   help="model files (.safetensors or .ckpt), 'shipped' for the package's model (the default)")
    p.add_argument("--n", type=int, default=60, help="scenes (half with cracks)")
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1080)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="folder for the set and the predictions")
    p.add_argument("--device", default="auto")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--straight-lines", type=int, default=DEFAULT_MIN_LENGTH,
                   help="segment's straight-line filter, px (0: off)")
    p.add_argument("--flips", type=int, default=1, help="segment's test-time flips (1, 2, 4 or 8)")
    p.add_argument("--scales", default="1", help="segment's test-time scales, e.g. 0.75,1,1.25")
    p.add_argument("--json", type=Path, help="also write the results as JSON")
    args = p.parse_args()

    from crackrender.errors import CrackRenderError
    from crackrender.weights import model_label, model_path

    try:
        root = benchmark_set(args.cache, args.n, (args.width, args.height), args.seed)
        results = []
        for model in [model_path(m) for m in args.models] or [None]:
            name = Path(model_label(model)).stem
            views = {"flips": args.flips, "scales": args.scales}
            tag = "" if (args.flips, args.scales) == (1, "1") else f"-flips{args.flips}-scales{args.scales}"
            out = args.cache / "predictions" / root.name / f"{len(results)}-{name}-lines{args.straight_lines}{tag}"
            source, seconds = segment_set(model, root, out, args.device, args.bf16, args.straight_lines, views)
            results.append({"model": Path(source).name, "file": source, "seconds_per_image": seconds,
                            "straight_lines": args.straight_lines, **views, **score(out, root)})
    except (CrackRenderError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    print(markdown(results, root))
    if args.json:
        from crackrender.io import atomic_write_json

        atomic_write_json(args.json, {"set": str(root), "results": results})


if __name__ == "__main__":
    main()
