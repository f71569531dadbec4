"""Peak memory of segmenting a GeoTIFF window by window (crackrender.geotiff.segment_raster)
against the baseline of decoding it whole and segmenting it in memory (read_image + Segmenter,
mask and probability written as PNG), at growing raster sizes.

Each (size, mode) runs in its own subprocess, so each peak RSS is its own: the number is the
peak above what the process held after loading the model. Both modes run the same tiles (the
``--tile`` and ``--overlap`` given to both), so the network's memory per tile is the same in
both; what differs is everything held whole. By default the model is a stand-in (a brightness
threshold with the network's interface, no weights) so that large rasters take minutes on a CPU
and the pipeline's own memory is not hidden under the network's per-tile activations, which
are bounded by the tile either way; ``--checkpoint`` runs a real model file instead.

The rasters are 3-band uint8 tiled GeoTIFFs tiled from one synthetic crack scene and written
window by window, so making them needs no whole-raster array either.

    python benchmarks/geotiff_memory.py                           # 4096, 8192, 16384 px square
    python benchmarks/geotiff_memory.py --sizes 2048 4096 --checkpoint model.safetensors
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_raster(path: Path, side: int) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from crackrender.data.synthetic import render_crack_scene

    block = render_crack_scene(1024, 1024, seed=0).image
    with rasterio.open(path, "w", driver="GTiff", height=side, width=side, count=3, dtype="uint8", tiled=True,
                       blockxsize=512, blockysize=512, compress="deflate", crs="EPSG:32633",
                       transform=from_origin(500000, 4500000, 0.0005, 0.0005)) as ds:
        for top in range(0, side, 1024):
            for left in range(0, side, 1024):
                h, w = min(1024, side - top), min(1024, side - left)
                ds.write(np.moveaxis(block[:h, :w], -1, 0), window=Window(left, top, w, h))


class StandIn:
    """The network's predict() interface without a network: dark pixels are crack."""

    def predict(self, x, timings=None):
        from crackrender.models.base import Prediction

        return Prediction.from_logits(8 * (0.35 - x.mean(dim=1, keepdim=True)), [0] * x.shape[0])


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(path: str, mode: str, out: str, checkpoint: str | None, tile: int, overlap: int) -> None:
    import torch

    from crackrender.segment import Segmenter

    if checkpoint:
        seg = Segmenter.from_checkpoint(checkpoint, device="cpu", tile=tile, overlap=overlap)
    else:
        seg = Segmenter(StandIn(), torch.device("cpu"), tile=tile, overlap=overlap)
    before = _rss_mib()
    start = time.perf_counter()
    if mode == "windowed":
        from crackrender.geotiff import segment_raster

        result, _ = segment_raster(seg, path, Path(out) / "mask.tif", Path(out) / "prob.tif")
    else:
        from crackrender.io import read_image, write_image, write_mask

        image = read_image(path, None)  # no size limit: this is the baseline being measured
        result = seg(image)
        write_mask(Path(out) / "mask.png", result.mask)
        write_image(Path(out) / "prob.png", result.prob_uint8())
    print(json.dumps({"seconds": round(time.perf_counter() - start, 1), "peak_above_mib": round(_rss_mib() - before),
                      "tiles": result.sidecar["tiles"]}))


def main() -> None:
    from crackrender.tiling import DEFAULT_OVERLAP, DEFAULT_TILE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384], help="raster sides, px")
    ap.add_argument("--modes", nargs="+", default=["in-memory", "windowed"], choices=["in-memory", "windowed"])
    ap.add_argument("--checkpoint", default=None, help="a model file (default: the stand-in, see above)")
    ap.add_argument("--tile", type=int, default=DEFAULT_TILE)
    ap.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child, args.checkpoint, args.tile, args.overlap)
    print(f"model: {args.checkpoint or 'stand-in (no network)'}; tile {args.tile}, overlap {args.overlap}\n")
    print("| raster | Mpx | decoded RGB MiB | mode | tiles | time s | peak above the model MiB | ratio to in-memory |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sizes:
            path = Path(tmp) / f"r{side}.tif"
            make_raster(path, side)
            base = None
            for mode in args.modes:
                cmd = [sys.executable, __file__, "--child", str(path), mode, tmp, "--tile", str(args.tile),
                       "--overlap", str(args.overlap)] + (["--checkpoint", args.checkpoint] if args.checkpoint else [])
                r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
                base = r["peak_above_mib"] if mode == "in-memory" else base
                ratio = f"{r['peak_above_mib'] / base:.3f}" if base else "-"
                print(f"| {side}x{side} | {side * side / 1e6:.1f} | {side * side * 3 / 2**20:.0f} | {mode} | {r['tiles']} | "
                      f"{r['seconds']} | {r['peak_above_mib']} | {ratio} |", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
