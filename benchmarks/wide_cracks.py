"""Do models keep wide cracks whole? Synthetic scenes with cracks up to --max-width px, exact masks.

Training against joints can teach a model that a wide dark band is a joint (docs/model.md, "Fourth
launch": stage 3 dropped the middle of the demo's widest crack). The widest cracks are the ones
whose width decides repairs, so each candidate model is checked here besides the val splits:
seeded scenes (odd seeds concrete, even asphalt, no distractors) with cracks 1 to --max-width px
wide, each model with its own threshold and segment's straight-line filter. Prints per scene the
widest crack, then crack IoU and recall for each model, and the pooled crack IoU, precision and
recall. Synthetic scenes come from the generator the wide-crack training sets were drawn with, so
a gain here is weak evidence on its own; a loss is a warning.

    python benchmarks/wide_cracks.py shipped ~/runs/candidate.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files; 'shipped' for the package's model")
    parser.add_argument("--scenes", type=int, default=8, help="scenes, seeds 1..N")
    parser.add_argument("--width", type=int, default=1536)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--max-width", type=float, default=14.0, help="widest crack drawn, px")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from crackrender.data.synthetic import render_crack_scene
    from crackrender.io import atomic_write_json
    from crackrender.metrics import confusion, scores
    from crackrender.segment import Segmenter
    from crackrender.weights import model_label, model_path

    names = [model_label(m) for m in args.models]
    segmenters = [Segmenter.from_checkpoint(model_path(m), device=args.device) for m in args.models]
    pooled = [{"tp": 0, "fp": 0, "fn": 0, "tn": 0} for _ in args.models]
    rows = []
    print("| seed | surface | widest crack (px) | " + " | ".join(f"{n} IoU | {n} recall" for n in names) + " |")
    print("|---|---|---|" + "---|---|" * len(names))
    for seed in range(1, args.scenes + 1):
        surface = "concrete" if seed % 2 else "asphalt"
        scene = render_crack_scene(args.width, args.height, seed=seed, surface=surface,
                                   width_range=(1.0, args.max_width))
        row = {"seed": seed, "surface": surface, "widest_px": round(max(c["width"] for c in scene.cracks), 2)}
        for name, seg, total in zip(names, segmenters, pooled):
            counts = confusion(seg(scene.image, keep_prob=False).mask, scene.mask)
            for k, v in counts.items():
                total[k] += v
            s = scores(counts)
            row[name] = {"iou": round(s["iou"], 4), "recall": round(s["recall"], 4)}
        rows.append(row)
        print(f"| {seed} | {surface} | {row['widest_px']:.1f} | "
              + " | ".join(f"{row[n]['iou']:.3f} | {row[n]['recall']:.3f}" for n in names) + " |", flush=True)
    summary = {n: {k: round(v, 4) for k, v in scores(t).items() if k in ("iou", "precision", "recall")}
               for n, t in zip(names, pooled)}
    print("\n| model | pooled crack IoU | precision | recall |\n|---|---|---|---|")
    for n, s in summary.items():
        print(f"| {n} | {s['iou']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} |")
    if args.json:
        atomic_write_json(args.json, {"scenes": rows, "pooled": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
