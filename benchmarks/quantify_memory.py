"""Peak memory and time of ``quantify_mask`` on whole masks of growing size: where the limit
``crackrender.quantify.units.MAX_QUANTIFY_PIXELS`` comes from.

Each size runs in its own subprocess, so its peak RSS is its own; the number reported is the
peak above what the process held with the mask already in memory, per mask pixel. The masks
are crack networks drawn at a fixed density (random polylines 3-15 px wide, about 2% of the
pixels crack), so bigger masks hold proportionally more cracks, as a bigger orthomosaic does.

    python benchmarks/quantify_memory.py                 # 4, 16, 64 Mpx
    python benchmarks/quantify_memory.py --mpx 4 16 100
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def crack_mask(height: int, width: int, seed: int = 0):
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    n = max(1, int(height * width / 1.5e5))  # about 2% crack for the lengths and widths below
    for _ in range(n):
        pts = [rng.uniform((0, 0), (width, height))]
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(12):
            heading += rng.normal(0, 0.35)
            pts.append(pts[-1] + 60 * np.array([np.cos(heading), np.sin(heading)]))
        cv2.polylines(mask, [np.round(pts).astype(np.int32)], False, 1, int(rng.integers(3, 16)))
    return mask.astype(bool)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(mpx: float) -> None:
    import numpy as np

    from crackrender.quantify import quantify_mask

    side = int(round((mpx * 1e6 / 12) ** 0.5))
    height, width = 3 * side, 4 * side
    mask = crack_mask(height, width)
    quantify_mask(np.zeros((64, 64), bool))  # imports and first-call allocations outside the measure
    before = _rss_mib()  # high-water mark so far: the mask, drawn (its uint8 buffer included)
    start = time.perf_counter()
    result = quantify_mask(mask, gsd=0.5)
    seconds = time.perf_counter() - start
    peak = _rss_mib()
    print(json.dumps({"height": height, "width": width, "crack_share": round(float(mask.mean()), 4),
                      "cracks": len(result.cracks), "seconds": round(seconds, 1),
                      "peak_above_mib": round(peak - before), "bytes_per_px": round((peak - before) * 2**20 / mask.size, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mpx", type=float, nargs="+", default=[4, 16, 64])
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        return child(args.child)
    print("| mask | Mpx | crack share | cracks | time s | peak above the mask MiB | bytes / px |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mpx in args.mpx:
        out = subprocess.run([sys.executable, __file__, "--child", str(mpx)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['width']}x{r['height']} | {r['height'] * r['width'] / 1e6:.1f} | {r['crack_share']:.3f} | "
              f"{r['cracks']} | {r['seconds']} | {r['peak_above_mib']} | {r['bytes_per_px']} |", flush=True)


if __name__ == "__main__":
    main()
