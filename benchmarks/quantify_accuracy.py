"""Measurement accuracy of ``crackrender.quantify`` on masks of exact geometry.

Prints two markdown tables: per shape and width, true vs measured width and length; and the
bias of the plain distance-transform width estimators that the normal-profile estimator
replaced. "digital" is the width the rasterised mask actually has (area / true length): at
45 degrees pixel centres fall on diagonals 0.71 px apart, so a mask cannot hold every width.

    python benchmarks/quantify_accuracy.py
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from crackrender.quantify import quantify_mask
from crackrender.quantify import shapes

WIDTHS = (2, 3, 5, 8, 12, 20)
ANGLES = (0, 15, 30, 45, 60, 75)


def cases():
    for w in WIDTHS:
        for a in ANGLES:
            yield f"straight {a}°", w, shapes.straight(w, 300, a)
        yield "arc r=150 120°", w, shapes.arc(w)
        yield "tapered 20°", w, shapes.tapered(w)
        yield "Y fork ±35°", w, shapes.branching(w)


def main() -> None:
    print("| shape | width | digital width | mean width | err | max width | err | length | measured | err % "
          "| branches |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = {"mean": 0.0, "max": 0.0, "len": 0.0}
    t0 = time.perf_counter()
    for name, w, (mask, truth) in cases():
        r = quantify_mask(mask)
        length = sum(c.length_px for c in r.cracks)
        c = r.cracks[0]
        straight = name.startswith(("straight", "arc"))
        digital = mask.sum() / truth["length"] if straight else float("nan")
        ref_mean = digital if straight else truth["mean_width"]
        ref_max = digital if straight else truth["width"]
        e_mean, e_max = c.mean_width_px - ref_mean, c.max_width_px - ref_max
        e_len = 100 * (length - truth["length"]) / truth["length"]
        worst = {"mean": max(worst["mean"], abs(e_mean)), "max": max(worst["max"], abs(e_max)),
                 "len": max(worst["len"], abs(e_len))}
        true_w = f"{w}" if name[0] != "t" else f"{w}→{max(1, w / 3):.3g}"
        dig = f"{digital:.2f}" if straight else "-"
        print(f"| {name} | {true_w} | {dig} | {c.mean_width_px:.2f} | {e_mean:+.2f} | {c.max_width_px:.2f} | "
              f"{e_max:+.2f} | {truth['length']:.1f} | {length:.1f} | {e_len:+.2f} | "
              f"{sum(len(k.branches) for k in r.cracks)} |")
    print(f"\nWorst: mean width {worst['mean']:.2f} px, max width {worst['max']:.2f} px, length {worst['len']:.2f} %"
          f" ({time.perf_counter() - t0:.1f} s). Width errors against the digital width for straight and arc"
          " shapes; tapered: mean against (w + tip)/2, max against w; Y: against w.\n")

    print("Distance-transform estimators (median over the skeleton of straight cracks, error vs digital width):\n")
    print("| width | 2·DT | 2·DT − 1 | normal profile (ours) |")
    print("|---:|---:|---:|---:|")
    for w in WIDTHS:
        errs = {"dt": [], "dt1": [], "prof": []}
        for a in ANGLES:
            mask, truth = shapes.straight(w, 300, a)
            digital = mask.sum() / truth["length"]
            dt = ndi.distance_transform_edt(mask)[skeletonize(mask, method="lee")]
            errs["dt"].append(np.median(2 * dt) - digital)
            errs["dt1"].append(np.median(2 * dt - 1) - digital)
            errs["prof"].append(quantify_mask(mask).cracks[0].mean_width_px - digital)
        fmt = lambda v: f"{np.mean(v):+.2f} (±{np.max(np.abs(np.array(v) - np.mean(v))):.2f})"  # noqa: E731
        print(f"| {w} | {fmt(errs['dt'])} | {fmt(errs['dt1'])} | {fmt(errs['prof'])} |")
    print("\nMean error over the angles 0-75°, (± largest deviation from that mean).")


if __name__ == "__main__":
    main()
