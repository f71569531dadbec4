"""Wall time of `segment` on a folder of photos, one thing at a time (``prefetch=0``) against
decoding the next photo and writing the last one's files on threads while the model runs
(``prefetch=1``, the default).

The two settings alternate, ``--repeats`` times each, in one process with the model loaded once
per run as the command does; the table gives medians and the ratio of the two. The photos are
synthetic crack scenes saved as JPEG; with ``--overlay --prob`` each image also has a JPEG and a
PNG to encode, as a user asking for them has.

    python benchmarks/segment_folder.py                         # 8 photos, 2048x1536, shipped model
    python benchmarks/segment_folder.py --n 6 --width 1024 --height 768 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="photos in the folder")
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--height", type=int, default=1536)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", default=None, help="model file (default: the shipped model)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from crackrender.data.synthetic import render_crack_scene
    from crackrender.io import write_image
    from crackrender.segment import segment_paths

    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        for i in range(args.n):
            write_image(photos / f"p{i:02d}.jpg", render_crack_scene(args.width, args.height, seed=i).image)
        times: dict[int, list[float]] = {0: [], 1: []}
        for rep in range(args.repeats + 1):  # the first round warms caches and is not counted
            for prefetch in ((0, 1) if rep % 2 else (1, 0)):
                start = time.perf_counter()
                segment_paths([photos], args.checkpoint, Path(tmp) / f"out{prefetch}", device=args.device,
                              save_prob=True, save_overlay=True, progress=False, prefetch=prefetch)
                if rep:
                    times[prefetch].append(time.perf_counter() - start)
    seq, pre = statistics.median(times[0]), statistics.median(times[1])
    print(f"{args.n} photos {args.width}x{args.height}, --prob --overlay, {args.device}, "
          f"torch threads {torch.get_num_threads()}, {args.repeats} runs each (medians)\n")
    print("| setting | s per folder | s per photo | ratio to prefetch=0 |")
    print("|---|---:|---:|---:|")
    for name, t in (("prefetch=0 (one thing at a time)", seq), ("prefetch=1 (default)", pre)):
        print(f"| {name} | {t:.2f} | {t / args.n:.2f} | {t / seq:.3f} |")
    print(f"\nall runs, s: prefetch=0 {[round(t, 2) for t in times[0]]}, prefetch=1 {[round(t, 2) for t in times[1]]}")


if __name__ == "__main__":
    main()
