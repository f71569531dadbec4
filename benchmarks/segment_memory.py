"""Peak memory and seconds per megapixel of `crackrender segment` as the image grows.

For each size a synthetic crack scene is written as a JPEG (quality 90) to a temporary folder,
then one `crackrender segment` process segments it with the shipped model. Each size runs under
its own wrapper process, whose only child is that `segment` process, so the wrapper's
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that process's peak RSS alone (the scene
rendering happens in the wrapper and is not counted). Seconds per MP come from the sidecar's
``timings_s.total`` (model load and process start excluded); the process's wall time is given too.

``--before PATH`` also runs, in the same run, the code in PATH (e.g. an older commit exported
with ``git archive``) at ``--before-sizes``, as a baseline: the table gives every row's s/MP as a
ratio to the 2 MP row of the current code and to the baseline's.

    python benchmarks/segment_memory.py                             # 2, 12, 24, 50 MP
    mkdir /tmp/before && git archive HEAD | tar -x -C /tmp/before
    python benchmarks/segment_memory.py --before /tmp/before --before-sizes 2,12
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# megapixels -> (width, height), 4:3 like a camera's sensor
SIZES = {2: (1632, 1224), 12: (4000, 3000), 24: (5664, 4248), 50: (8192, 6144)}


def _write_scene(path: Path, width: int, height: int) -> None:
    import cv2

    from crackrender.data.synthetic import render_crack_scene

    image = render_crack_scene(width, height, seed=7).image
    cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])


def child(code: Path, width: int, height: int, threads: int, extra: list[str]) -> dict:
    """In the wrapper: write the scene, run one `segment` process on it, report its peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / f"scene_{width}x{height}.jpg"
        _write_scene(photo, width, height)
        env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "crackrender.cli", "segment", str(photo), "--out", str(Path(tmp) / "out"),
                              "-q", *extra], env=env, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - start
        if run.returncode:
            raise SystemExit(f"segment failed ({run.returncode}): {run.stderr.strip()}")
        sidecar = json.loads((Path(tmp) / "out" / f"{photo.stem}.json").read_text())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    mp = width * height / 1e6
    seconds = sidecar["timings_s"]["total"]
    return {"size": f"{width}x{height}", "mp": round(mp, 2), "seconds": seconds, "s_per_mp": round(seconds / mp, 3),
            "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb), "tiles": sidecar.get("tiles", 1)}


def _measure(code: Path, mp: int, threads: int, extra: list[str]) -> dict:
    w, h = SIZES[mp]
    out = subprocess.run([sys.executable, __file__, "--child", str(code), str(w), str(h), str(threads), *extra],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(out.stderr.strip() or out.stdout.strip())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2,12,24,50", help=f"megapixels, from {sorted(SIZES)}")
    ap.add_argument("--before", type=Path, help="a source tree of older code to measure as a baseline")
    ap.add_argument("--before-sizes", default="2,12")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--segment-args", default="", help="extra `segment` options, e.g. '--tile 1536'")
    ap.add_argument("--child", nargs=4, metavar=("CODE", "W", "H", "THREADS"), help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.child:
        code, w, h, threads = args.child
        print(json.dumps(child(Path(code), int(w), int(h), int(threads), rest)))
        return
    extra = args.segment_args.split()
    runs = []
    if args.before:
        for mp in (int(v) for v in args.before_sizes.split(",")):
            runs.append(("before", _measure(args.before.resolve(), mp, args.threads, [])))
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    for mp in (int(v) for v in args.sizes.split(",")):
        runs.append(("now", _measure(ROOT, mp, args.threads, extra)))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    base_now = next((r["s_per_mp"] for code, r in runs if code == "now" and r["mp"] < 3), None)
    base_before = next((r["s_per_mp"] for code, r in runs if code == "before" and r["mp"] < 3), None)
    print(f"| code | size | MP | tiles | seconds | s/MP | vs now at 2 MP | vs before at 2 MP | process wall s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for code, r in runs:
        ratio_now = f"{r['s_per_mp'] / base_now:.2f}" if base_now else "-"
        ratio_before = f"{r['s_per_mp'] / base_before:.2f}" if base_before else "-"
        print(f"| {code} | {r['size']} | {r['mp']} | {r['tiles']} | {r['seconds']:.1f} | {r['s_per_mp']:.3f} | {ratio_now} "
              f"| {ratio_before} | {r['wall_s']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
