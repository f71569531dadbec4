"""How the point head behaves on the pixels it re-predicts, against the heatmap it replaces.

For a model file and dataset splits (images at native size), per split:
  - the [alpha, beta] band of the upsampled heatmap: its size, its true crack share, the share the
    heatmap calls crack and the share the point head calls crack, and each one's accuracy there;
  - the head's calibration on the band (mean predicted probability against the true crack rate,
    in five probability bins);
  - the head on its training population (points drawn from the label's strata, as in training);
  - crack IoU (dataset-aggregated) with and without refinement, and with the head's logit passed
    through a fitted affine recalibration (``--fit``: fitted on the first half of each split's
    band points, scored on the second half of the images).

    python benchmarks/point_head_calibration.py [--model FILE] [--limit 40] \
        --split ../shared/data/crack500:val --split ../shared/data/cfd:val

Printed as one markdown table per question; ``--json`` keeps every number.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from crackrender.checkpoint import load_model
from crackrender.data.datasets import CrackDataset
from crackrender.ops import pixel_centers, sample_training_points, uncertain_pixels
from crackrender.weights import default_model_path


def _iou(tp, fp, fn):
    return tp / max(1, tp + fp + fn)


def _evenly(n: int, limit: int | None) -> list[int]:
    if limit is None or n <= limit:
        return list(range(n))
    return np.linspace(0, n - 1, limit).round().astype(int).tolist()


@torch.no_grad()
def measure_split(model, dataset: CrackDataset, indices, alpha: float, beta: float, seed: int = 0) -> dict:
    """Band statistics, head-on-strata accuracy and per-image confusion counts for one split."""
    band_rows = []  # per band pixel: image id, gt, heatmap logit, head logit
    strata_rows = []  # per training-style point: stratum, gt, head logit
    counts = []  # per image: the refined / unrefined masks' tp, fp, fn, plus the non-band pixels' own
    gen = torch.Generator().manual_seed(seed)
    for i, idx in enumerate(indices):
        sample = dataset[idx]
        x, gt = sample["image"][None], sample["mask"][0] > 0.5
        h, w = gt.shape
        out = model(x)
        logit = F.interpolate(out["coarse"].float(), size=(h, w), mode="bilinear", align_corners=False).view(-1)
        band = uncertain_pixels(torch.sigmoid(logit).view(h, w), alpha, beta)
        head = model.point_logits(out, pixel_centers(band, h, w)[None])[0].float() if band.numel() else logit[:0]
        g = gt.reshape(-1)
        band_rows.append(np.stack([np.full(band.numel(), i), g[band].numpy(), logit[band].numpy(), head.numpy()], 1))
        # outside the band both rules agree: the heatmap's own decision
        outside = torch.ones_like(g)
        outside[band] = False
        pred_out = (logit > 0) & outside
        counts.append([int((pred_out & g).sum()), int((pred_out & ~g).sum()), int((~pred_out & g & outside).sum())])
        coords, labels, strata = sample_training_points(gt[None, None], generator=gen)
        if coords.shape[1]:
            head_pts = model.point_logits(out, coords)[0].float()
            strata_rows.append(np.stack([strata[0].numpy(), labels[0].numpy(), head_pts.numpy()], 1))
    band_arr = np.concatenate(band_rows) if band_rows else np.zeros((0, 4))
    strata_arr = np.concatenate(strata_rows) if strata_rows else np.zeros((0, 3))
    return {"band": band_arr, "strata": strata_arr, "outside": np.array(counts, dtype=np.float64), "n": len(indices)}


def _band_confusion(gt, pred):
    return np.array([(pred & gt).sum(), (pred & ~gt).sum(), (~pred & gt).sum()], dtype=np.float64)


def fit_affine(logits: np.ndarray, gt: np.ndarray, iters: int = 300) -> tuple[float, float]:
    """Logistic recalibration p = sigmoid(a * logit + b), by Newton's method (two parameters)."""
    a, b = 1.0, 0.0
    x, y = logits.astype(np.float64), gt.astype(np.float64)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(a * x + b)))
        wgt = p * (1 - p) + 1e-9
        grad = np.array([((p - y) * x).sum(), (p - y).sum()])
        hess = np.array([[(wgt * x * x).sum(), (wgt * x).sum()], [(wgt * x).sum(), wgt.sum()]])
        step = np.linalg.solve(hess + 1e-6 * np.eye(2), grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


def summarise(result: dict, fit: bool) -> dict:
    band, outside = result["band"], result["outside"]
    img, gt, heat, head = band[:, 0], band[:, 1] > 0.5, band[:, 2], band[:, 3]
    base = outside.sum(0)
    s = {"images": result["n"], "band_pixels": int(len(gt)),
         "band_crack_share": float(gt.mean()) if len(gt) else float("nan"),
         "heatmap_calls_crack": float((heat > 0).mean()) if len(gt) else float("nan"),
         "head_calls_crack": float((head > 0).mean()) if len(gt) else float("nan"),
         "heatmap_accuracy": float(((heat > 0) == gt).mean()) if len(gt) else float("nan"),
         "head_accuracy": float(((head > 0) == gt).mean()) if len(gt) else float("nan")}
    s["iou_unrefined"] = _iou(*(base + _band_confusion(gt, heat > 0)))
    s["iou_refined"] = _iou(*(base + _band_confusion(gt, head > 0)))
    probs = 1 / (1 + np.exp(-head))
    bins = np.clip((probs * 5).astype(int), 0, 4)
    s["head_calibration"] = [{"bin": f"{b / 5:.1f}-{(b + 1) / 5:.1f}", "n": int((bins == b).sum()),
                              "mean_prob": float(probs[bins == b].mean()) if (bins == b).any() else None,
                              "crack_rate": float(gt[bins == b].mean()) if (bins == b).any() else None}
                             for b in range(5)]
    strata = result["strata"]
    s["head_on_training_strata"] = {name: float(((strata[strata[:, 0] == sid, 2] > 0) ==
                                                 (strata[strata[:, 0] == sid, 1] > 0.5)).mean())
                                    for sid, name in enumerate(("interior", "band", "background"))
                                    if (strata[:, 0] == sid).any()}
    if fit and len(gt):
        half = result["n"] // 2
        first, second = img < half, img >= half
        a, b = fit_affine(head[first], gt[first])
        base2 = outside[half:].sum(0)
        s["recalibration"] = {"a": a, "b": b,
                              "iou_second_half_unrefined": _iou(*(base2 + _band_confusion(gt[second], heat[second] > 0))),
                              "iou_second_half_refined": _iou(*(base2 + _band_confusion(gt[second], head[second] > 0))),
                              "iou_second_half_recalibrated": _iou(*(base2 + _band_confusion(
                                  gt[second], a * head[second] + b > 0)))}
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model file (default: the shipped model)")
    ap.add_argument("--split", action="append", required=True, help="DATASET_ROOT:SPLIT, repeatable")
    ap.add_argument("--limit", type=int, default=40, help="images per split, evenly spaced (0: all)")
    ap.add_argument("--fit", action="store_true", help="also fit and score an affine recalibration of the head")
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model or default_model_path()).eval()
    alpha, beta = float(model.alpha), float(model.beta)
    report = {}
    for spec in args.split:
        root, split = spec.rsplit(":", 1)
        ds = CrackDataset(root, split)
        res = measure_split(model, ds, _evenly(len(ds), args.limit or None), alpha, beta)
        report[f"{Path(root).name}:{split}"] = summarise(res, args.fit)
        print(f"{Path(root).name}:{split} done", file=sys.stderr, flush=True)
    keys = ["images", "band_pixels", "band_crack_share", "heatmap_calls_crack", "head_calls_crack",
            "heatmap_accuracy", "head_accuracy", "iou_unrefined", "iou_refined"]
    print("| split | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, s in report.items():
        print(f"| {name} | " + " | ".join(f"{s[k]:.3f}" if isinstance(s[k], float) else str(s[k]) for k in keys) + " |")
    print("\nhead calibration on the band (mean predicted p / true crack rate, n):")
    for name, s in report.items():
        cells = [f"{c['bin']}: {c['mean_prob']:.2f}/{c['crack_rate']:.2f} ({c['n']})" for c in s["head_calibration"]
                 if c["n"]]
        print(f"  {name}: " + "; ".join(cells))
    print("\nhead accuracy on training-style strata points:")
    for name, s in report.items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in s["head_on_training_strata"].items()))
    if args.fit:
        print("\naffine recalibration fitted on each split's first half, crack IoU on its second half:")
        for name, s in report.items():
            r = s.get("recalibration")
            if r:
                print(f"  {name}: a={r['a']:.3f} b={r['b']:.3f}  unrefined {r['iou_second_half_unrefined']:.3f}"
                      f"  refined {r['iou_second_half_refined']:.3f}  recalibrated {r['iou_second_half_recalibrated']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
