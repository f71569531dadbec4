"""Test-time views compared on val splits: which flips and scales help, and at which threshold.

For each image, every (scale, flip) view that any setting needs is predicted once
(crackrender.test_time_views: the same resizing, flips and mapping back as ``segment``); each
setting averages its views, then every threshold of a grid is applied, followed by segment's
straight-line filter, and the confusion counts are summed per dataset. Prints one row per
setting: its best threshold by the mean over datasets of the dataset-aggregated F1, that mean,
the mean at ``--at`` (the plain calibrated threshold), each dataset's F1 there and CRACK500's mIoU.

    python benchmarks/view_sweep.py                       # the shipped model, the settings of MODEL.md
    python benchmarks/view_sweep.py m.safetensors --settings 1:1 2:1 1:0.75,1,1.25 --limit 20

A setting is FLIPS:SCALES. Choose views here, on val; report test splits once with
``compare_models.py --flips --scales``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VAL_SPLITS = ("crack500:val", "deepcrack537:val", "cfd:val", "uavcrackx:val", "kaggle-uav:val", "masonry:val")
SETTINGS = ("1:1", "2:1", "4:1", "8:1", "1:1,1.25", "2:1,1.25", "1:0.75,1,1.25", "2:0.75,1,1.25")


def parse_setting(text: str) -> tuple[int, tuple[float, ...]]:
    from crackrender.test_time_views import check_flips, check_scales

    flips, sep, scales = text.partition(":")
    if not sep:
        raise ValueError(f"a setting is FLIPS:SCALES such as 2:0.75,1,1.25, got {text!r}")
    return check_flips(int(flips)), check_scales(scales)


def sweep_split(model, root: Path, split: str, settings: dict, thresholds, min_length: int, limit: int | None) -> dict:
    """{setting: (len(thresholds), 4) array of tp, fp, fn, tn} over the split's images."""
    import numpy as np
    import torch

    from crackrender.data.datasets import CrackDataset
    from crackrender.inference import image_to_tensor
    from crackrender.straight_lines import drop_straight_lines
    from crackrender.test_time_views import apply_flip, flip_names, rescale, resize_maps, undo_flip

    ds = CrackDataset(root, split)
    index = range(len(ds)) if not limit or len(ds) <= limit else np.linspace(0, len(ds) - 1, limit).round().astype(int)
    views = {(s, name) for flips, scales in settings.values() for s in scales for name in flip_names(flips)}
    counts = {key: np.zeros((len(thresholds), 4), np.int64) for key in settings}
    start = time.perf_counter()
    for n, i in enumerate(index, 1):
        image, gt = ds.load(int(i))
        gt = gt.astype(bool)
        x = image_to_tensor(image)
        probs = {}
        with torch.inference_mode():
            for scale, name in sorted(views):
                pred = model.predict(apply_flip(name, rescale(x, scale)))
                probs[scale, name] = resize_maps(undo_flip(name, pred.prob.float()), gt.shape)[0].numpy()
        for key, (flips, scales) in settings.items():
            p = np.mean([probs[s, name] for s in scales for name in flip_names(flips)], axis=0)
            for j, t in enumerate(thresholds):
                mask = drop_straight_lines(p >= t, min_length)
                tp, fp, fn = int((mask & gt).sum()), int((mask & ~gt).sum()), int((~mask & gt).sum())
                counts[key][j] += (tp, fp, fn, mask.size - tp - fp - fn)
        print(f"\r{root.name}:{split} {n}/{len(index)} {time.perf_counter() - start:.0f} s", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    return counts


def f1_miou(counts):
    import numpy as np

    tp, fp, fn, tn = counts.astype(float).T
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    miou = (tp / np.maximum(tp + fp + fn, 1) + tn / np.maximum(tn + fp + fn, 1)) / 2
    return f1, miou


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="shipped", help="model file; 'shipped' for the package's model")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help="FLIPS:SCALES, e.g. 2:0.75,1,1.25")
    parser.add_argument("--splits", nargs="+", default=list(VAL_SPLITS))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per split (evenly spaced)")
    parser.add_argument("--at", type=float, default=None, help="also report this threshold (default: the model's own)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import numpy as np

    from crackrender.errors import CrackRenderError
    from crackrender.io import atomic_write_json
    from crackrender.segment import Segmenter
    from crackrender.weights import model_path

    try:
        settings = {text: parse_setting(text) for text in args.settings}
        seg = Segmenter.from_checkpoint(model_path(args.model), device="cpu")
    except (CrackRenderError, ValueError) as exc:
        sys.exit(f"error: {exc}")
    thresholds = np.round(np.arange(0.20, 0.6001, 0.02), 2)
    at = seg.threshold if args.at is None else args.at
    k_at = int(np.argmin(np.abs(thresholds - at)))
    counts = {pair: sweep_split(seg.model, args.data / pair.split(":")[0], pair.split(":")[1], settings, thresholds,
                                seg.straight_lines, args.limit) for pair in args.splits}
    print(f"\n| views (flips:scales) | best threshold | mean F1 there | at {thresholds[k_at]:.2f} | "
          + " | ".join(args.splits) + " | " + " | ".join(f"{s} mIoU" for s in args.splits[:1]) + " |")
    print("|---|---|---|---|" + "---|" * (len(args.splits) + 1))
    results = {}
    for key in settings:
        f1 = np.array([f1_miou(counts[pair][key])[0] for pair in args.splits])
        miou = np.array([f1_miou(counts[pair][key])[1] for pair in args.splits])
        mean = f1.mean(axis=0)
        k = int(mean.argmax())
        results[key] = {"best_threshold": float(thresholds[k]), "mean_f1": float(mean[k]), "mean_f1_at": float(mean[k_at]),
                        "f1": dict(zip(args.splits, f1[:, k].tolist())), "miou": dict(zip(args.splits, miou[:, k].tolist()))}
        print(f"| {key} | {thresholds[k]:.2f} | {mean[k]:.4f} | {mean[k_at]:.4f} | "
              + " | ".join(f"{v:.3f}" for v in f1[:, k]) + f" | {miou[0, k]:.3f} |")
    if args.json:
        atomic_write_json(args.json, {"model": args.model, "thresholds": thresholds.tolist(), "at": float(at),
                                      "results": results,
                                      "counts": {p: {k: v.tolist() for k, v in c.items()} for p, c in counts.items()}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
