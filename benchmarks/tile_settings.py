"""How the tile settings were chosen: agreement with the whole image vs overlap, and speed and
peak memory vs tile size, with the shipped model.

Agreement (one process): a synthetic 2048x1536 scene segmented whole, then in tiles whose core
is 512 px and whose overlap varies; reported per overlap: crack IoU of the tiled mask against the
whole-image mask, pixels whose decision differs, and the largest probability difference.

Agreement on real photos (``--part real``): the first images of a dataset's test split (default
4 of ../shared/data/deepcrack537, 544x384) segmented whole and in tiles of the given
core/overlap pairs; crack IoU of all tiled masks against all whole-image masks.

Speed and memory (each setting in its own subprocess, so peak RSS is its own): one synthetic
scene (default 3072x2304) segmented with each tile/overlap pair; seconds per megapixel, and the
ratio to the whole image at 2048x1536 measured in its own subprocess in the same run.

    python benchmarks/tile_settings.py                  # both parts, 2 threads
    python benchmarks/tile_settings.py --part speed --configs 1024/64,1536/64
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _scene(width: int, height: int):
    from crackrender.data.synthetic import render_crack_scene

    return render_crack_scene(width, height, seed=3).image


def agreement(overlaps: list[int], core: int, threads: int) -> list[dict]:
    import numpy as np
    import torch

    from crackrender.segment import Segmenter

    torch.set_num_threads(threads)
    image = _scene(2048, 1536)
    whole = Segmenter.from_checkpoint(None, device="cpu", tile=2048)(image)
    rows = []
    for overlap in overlaps:
        seg = Segmenter.from_checkpoint(None, device="cpu", tile=core + 2 * overlap, overlap=overlap)
        tiled = seg(image)
        a, b = whole.mask, tiled.mask
        union = int((a | b).sum())
        rows.append({"overlap": overlap, "tile": core + 2 * overlap, "tiles": tiled.sidecar["tiles"],
                     "crack_iou": round(int((a & b).sum()) / union, 5) if union else 1.0,
                     "pixels_differing": int((a != b).sum()),
                     "max_prob_diff": round(float(np.abs(whole.prob - tiled.prob_float()).max()), 4)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def agreement_real(root: Path, count: int, configs: list[tuple[int, int]], threads: int) -> list[dict]:
    import numpy as np
    import torch

    from crackrender.io import read_image
    from crackrender.segment import Segmenter

    torch.set_num_threads(threads)
    stems = (root / "test.txt").read_text().split()[:count]
    images = [read_image(next((root / "images").glob(f"{s}.*"))) for s in stems]
    big = max(max(i.shape[:2]) for i in images)
    whole_seg = Segmenter.from_checkpoint(None, device="cpu", tile=-(-big // 32) * 32, overlap=0)
    whole = np.stack([whole_seg(i, keep_prob=False).mask for i in images])
    rows = []
    for core, overlap in configs:
        seg = Segmenter.from_checkpoint(None, device="cpu", tile=core + 2 * overlap, overlap=overlap)
        tiled = np.stack([seg(i, keep_prob=False).mask for i in images])
        rows.append({"core": core, "overlap": overlap, "crack_iou": round(int((whole & tiled).sum()) / int((whole | tiled).sum()), 4),
                     "pixels_differing": int((whole != tiled).sum()), "crack_pixels_whole": int(whole.sum())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def speed(width: int, height: int, tile: int, overlap: int, threads: int) -> dict:
    import torch

    from crackrender.segment import Segmenter

    torch.set_num_threads(threads)
    image = _scene(width, height)
    seg = Segmenter.from_checkpoint(None, device="cpu", tile=tile, overlap=overlap)
    seg(image[:256, :256], keep_prob=False)  # warm-up
    start = time.perf_counter()
    result = seg(image, keep_prob=False)
    seconds = time.perf_counter() - start
    return {"size": f"{width}x{height}", "tile": tile, "overlap": overlap, "tiles": result.sidecar["tiles"],
            "seconds": round(seconds, 2), "s_per_mp": round(seconds / (width * height / 1e6), 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _in_subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=("both", "agreement", "real", "speed"), default="both")
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "deepcrack537")
    ap.add_argument("--real-count", type=int, default=4)
    ap.add_argument("--real-configs", default="192/64,256/64,192/96,192/128", help="CORE/OVERLAP pairs")
    ap.add_argument("--overlaps", default="0,32,64,96,128,192")
    ap.add_argument("--core", type=int, default=512, help="core size of the agreement tiles")
    ap.add_argument("--configs", default="768/64,1024/64,1024/128,1536/64,1536/128,2048/64",
                    help="TILE/OVERLAP pairs of the speed runs")
    ap.add_argument("--size", default="3072x2304")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", nargs=5, metavar=("W", "H", "TILE", "OVERLAP", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(speed(*map(int, args.child))))
        return
    if args.part in ("both", "agreement"):
        print("| overlap px | tile px | tiles | crack IoU vs whole | pixels differing | max prob diff |")
        print("|---|---|---|---|---|---|")
        for r in agreement([int(v) for v in args.overlaps.split(",")], args.core, args.threads):
            print(f"| {r['overlap']} | {r['tile']} | {r['tiles']} | {r['crack_iou']:.5f} | {r['pixels_differing']} "
                  f"| {r['max_prob_diff']:.4f} |", flush=True)
    if args.part == "real":
        configs = [tuple(map(int, c.split("/"))) for c in args.real_configs.split(",")]
        print(f"| core px | overlap px | crack IoU vs whole ({args.real.name}, {args.real_count} test images) | pixels differing |")
        print("|---|---|---|---|")
        for r in agreement_real(args.real, args.real_count, configs, args.threads):
            print(f"| {r['core']} | {r['overlap']} | {r['crack_iou']:.4f} | {r['pixels_differing']} |", flush=True)
    if args.part in ("both", "speed"):
        w, h = map(int, args.size.split("x"))
        base = _in_subprocess(["2048", "1536", "2048", "0", str(args.threads)])
        print(f"baseline: whole 2048x1536 {base['s_per_mp']} s/MP, peak RSS {base['peak_rss_mb']} MB")
        print(f"| tile px | overlap px | tiles of {args.size} | s/MP | vs whole 2048x1536 | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        for config in args.configs.split(","):
            tile, overlap = config.split("/")
            r = _in_subprocess([str(w), str(h), tile, overlap, str(args.threads)])
            print(f"| {tile} | {overlap} | {r['tiles']} | {r['s_per_mp']:.3f} | {r['s_per_mp'] / base['s_per_mp']:.2f} "
                  f"| {r['peak_rss_mb']} |", flush=True)


if __name__ == "__main__":
    main()
