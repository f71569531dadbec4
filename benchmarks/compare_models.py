"""Models side by side on every dataset's held-out split (issue 15: v2 against its UNet peer).

Each model file segments each split's images at native resolution with its own decision
threshold (the one ``crackrender calibrate`` stored, else 0.5), and the masks are scored with the
dataset-aggregated metrics of ``crackrender evaluate``. Prints one markdown table per metric
(rows: models; columns: splits, then the mean over the test splits) and optionally writes JSON.

    python benchmarks/compare_models.py shipped ~/runs/unet-v2/model-best.safetensors
    python benchmarks/compare_models.py a.safetensors --splits deepcrack537:test --limit 20
    python benchmarks/compare_models.py shipped --straight-lines 0   # without segment's straight-line filter
    python benchmarks/compare_models.py shipped --flips 2 --scales 0.75,1,1.25   # with test-time views

Test splits are for reporting once: choose models on the val splits (``--splits`` with :val).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# every test split that exists; CRACK500 and UAV-CrackX have none, so their val splits stand in
# (reported, never used to choose a model here)
TEST_SPLITS = ("deepcrack537:test", "cfd:test", "kaggle-uav:test", "masonry:test")
EXTRA_SPLITS = ("crack500:val", "uavcrackx:val")
METRICS = ("f1", "miou", "precision", "recall")


def score_split(seg, root: Path, split: str, limit: int | None) -> dict:
    import numpy as np

    from crackrender.data.datasets import CrackDataset
    from crackrender.metrics import MetricAccumulator

    ds = CrackDataset(root, split)
    index = range(len(ds)) if not limit or len(ds) <= limit else np.linspace(0, len(ds) - 1, limit).round().astype(int)
    acc = MetricAccumulator()
    start = time.perf_counter()
    for n, i in enumerate(index, 1):
        image, mask = ds.load(int(i))
        acc.add(str(i), seg(image, keep_prob=False).mask, mask)
        print(f"\r{root.name}:{split} {n}/{len(index)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    metrics = acc.summary()["metrics"]
    return {"n_images": len(index), "s_per_image": (time.perf_counter() - start) / len(index),
            **{m: metrics[m]["aggregate"] for m in METRICS}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files; 'shipped' for the package's model")
    parser.add_argument("--splits", nargs="+", default=list(TEST_SPLITS + EXTRA_SPLITS),
                        help="dataset:split pairs under --data (default: every test split, plus the val "
                             "splits of the two sets without one)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per split (evenly spaced)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--straight-lines", type=int, default=None,
                        help="segment's straight-line filter, px (0: off; default: segment's default)")
    parser.add_argument("--flips", type=int, default=1, help="segment's test-time flips (1, 2, 4 or 8)")
    parser.add_argument("--scales", default="1", help="segment's test-time scales, e.g. 0.75,1,1.25")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from crackrender.io import atomic_write_json
    from crackrender.segment import Segmenter
    from crackrender.weights import model_label, model_path

    torch.set_num_threads(max(1, torch.get_num_threads()))
    results: dict[str, dict] = {}
    for model in args.models:
        lines = {} if args.straight_lines is None else {"straight_lines": args.straight_lines}
        seg = Segmenter.from_checkpoint(model_path(model), device=args.device, flips=args.flips, scales=args.scales,
                                        **lines)
        name = str(model)
        results[name] = {"threshold": seg.threshold, "straight_lines": seg.straight_lines, "flips": seg.flips,
                         "scales": list(seg.scales), "splits": {}}
        for pair in args.splits:
            dataset, split = pair.split(":")
            results[name]["splits"][pair] = score_split(seg, args.data / dataset, split, args.limit)
    tests = [s for s in args.splits if s.endswith(":test")]
    for metric in METRICS:
        print(f"\n{metric} (dataset-aggregated; mean over the {len(tests)} test splits)\n")
        print("| model | threshold | lines | " + " | ".join(args.splits) + " | mean test |")
        print("|---|---|---|" + "---|" * (len(args.splits) + 1))
        for name, r in results.items():
            values = [r["splits"][s][metric] for s in args.splits]
            mean = sum(r["splits"][s][metric] for s in tests) / len(tests) if tests else float("nan")
            print(f"| {model_label(name)} | {r['threshold']:.3f} | "
                  f"{r['straight_lines'] or 'off'} | "
                  + " | ".join(f"{v:.3f}" for v in values) + f" | {mean:.3f} |")
    if args.json:
        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
