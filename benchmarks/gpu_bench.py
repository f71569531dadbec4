"""FPS and peak GPU memory of ``segment`` for one model at one size, fp16 and bf16 autocast, and
optionally ``torch.compile``: one process of ``benchmarks/gpu_run.sh``'s timing stage.

Models (the paper's Table 3 comparison; random weights are fine for timing):

- ``shipped``: the shipped light CBPRN (``crackrender/weights``), trained weights;
- ``cbprn-r50``: the paper's ResNet50 CBPRN (``configs/paper/cbprn-k2.yaml``), random init: its
  heatmap sits near 0.5, so nearly every pixel is refined (the worst case; the count is recorded);
- ``pointrend-unet``: PointRend on a UNet-ResNet34 (``configs/paper/pointrend-unet.yaml``), random
  init, its coarse net fed the image scaled to a long edge of 900 as Table 3 does.

Each precision is timed through ``Segmenter.__call__`` (what ``crackrender segment`` runs: upload,
model, mask back to the host), median over calls after a warm-up, with the straight-line filter
off: it runs on the CPU, and on a random-init model's speckled mask it measures the speckle, not
the network (PointRend-UNet at 2048x1536: 4.3 s a call with it, of which the network took 0.014 s;
GPU run of 2026-11-29). The shipped model is also timed with the filter on (``fp16+filter``),
which is what ``segment`` runs by default. Peak memory is
``torch.cuda.max_memory_allocated`` from a reset before each precision's warm-up (on a CPU, the
process's peak RSS, which spans every precision). Each variant's error (out of memory, a dtype
mismatch under autocast...) is recorded and the next one still runs.

    python benchmarks/gpu_bench.py --model shipped --size 2048x1536 --results out/results.json
    python benchmarks/gpu_bench.py --model cbprn-r50 --size 128x96 --device cpu   # a CPU check
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: the package beside it
sys.path.insert(0, str(Path(__file__).resolve().parent))

from crackrender.segment import Segmenter  # noqa: E402
from crackrender.straight_lines import DEFAULT_MIN_LENGTH  # noqa: E402

MODELS = ("shipped", "cbprn-r50", "pointrend-unet")
PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
TABLE3_LONG_EDGE = 900  # crackrender.paper.runner.DEFAULT_LONG_EDGE


class FixedPrecisionSegmenter(Segmenter):
    """A Segmenter whose autocast dtype is given, so fp16 and bf16 are both timed on one device."""

    def __init__(self, model, device: torch.device, dtype: torch.dtype, threshold: float, straight_lines: int = 0):
        super().__init__(model, device, threshold=threshold, straight_lines=straight_lines)
        self._dtype = dtype

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype


def build_model(name: str, device: torch.device) -> tuple[torch.nn.Module, float]:
    """(model ready for inference on ``device``, decision threshold)."""
    from crackrender.inference import prepare_model
    from crackrender.models import create_model
    from crackrender.paper.configs import row_config
    from crackrender.threshold import DEFAULT_THRESHOLD

    if name == "shipped":
        seg = Segmenter.from_checkpoint(None, device=str(device))
        return seg.model, seg.threshold
    run = {"cbprn-r50": "cbprn-k2", "pointrend-unet": "pointrend-unet"}[name]
    settings = dict(row_config(run)["model"])
    if name == "pointrend-unet":
        settings["coarse_long_edge"] = TABLE3_LONG_EDGE
    torch.manual_seed(0)
    model = create_model(settings.pop("name"), **settings).to(device).eval()
    return prepare_model(model, device), DEFAULT_THRESHOLD


def compiled(model: torch.nn.Module, backend: str) -> torch.nn.Module:
    """The model with its dense parts compiled; the point head stays eager, since the number of
    points it gets changes with every image."""
    for name, child in list(model.named_children()):
        if name != "point_head":
            setattr(model, name, torch.compile(child, backend=backend, dynamic=False))
    return model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(seg: Segmenter, image, *, warmup: int, min_calls: int, max_calls: int, max_seconds: float) -> dict:
    """Median of at least ``min_calls`` timed calls (more, up to ``max_calls``, while under
    ``max_seconds``) after ``warmup`` untimed ones; the first call's time is kept (compilation)."""
    first = None
    for i in range(warmup):
        _sync(seg.device)
        start = time.perf_counter()
        seg(image, keep_prob=False)
        _sync(seg.device)
        first = first if first is not None else time.perf_counter() - start
    times, stages, refined = [], [], 0
    spent = time.perf_counter()
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() - spent < max_seconds):
        _sync(seg.device)
        start = time.perf_counter()
        result = seg(image, keep_prob=False)
        _sync(seg.device)
        times.append(time.perf_counter() - start)
        stages.append(result.timings)
        refined = result.refined_points
    median = statistics.median(times)
    return {"fps": 1.0 / median, "median_s": median, "times_s": [round(t, 5) for t in times],
            "first_call_s": first, "refined_points": int(refined),
            "stages_s": {k: statistics.median(s[k] for s in stages) for k in stages[0]}}


def measure(model_name: str, size: tuple[int, int], device: torch.device, precisions: list[str], *, compile_: bool,
            warmup: int, min_calls: int, max_calls: int, max_seconds: float, progress=print) -> dict:
    from crackrender.data.synthetic import render_crack_scene

    w, h = size
    image = render_crack_scene(w, h, seed=0).image
    model, threshold = build_model(model_name, device)
    weights_mib = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
    # (precision, compile, straight-line filter's min length: 0 is off)
    variants = [(p, False, 0) for p in precisions]
    if model_name == "shipped":
        variants.append((precisions[0], False, DEFAULT_MIN_LENGTH))
    if compile_:
        variants.append((precisions[0], True, 0))
    out = {}
    for precision, comp, lines in variants:
        key = precision + ("+compile" if comp else "") + ("+filter" if lines else "")
        try:
            if comp:
                # inductor needs a GPU toolchain; a CPU check traces with dynamo alone
                model = compiled(model, "inductor" if device.type == "cuda" else "eager")
            seg = FixedPrecisionSegmenter(model, device, PRECISIONS[precision], threshold, lines)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            rec = time_calls(seg, image, warmup=warmup + 1 if comp else warmup, min_calls=min_calls, max_calls=max_calls,
                             max_seconds=max_seconds)
            if device.type == "cuda":
                rec["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
                rec["peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
            else:
                rec["peak_mib"] = None
                rec["process_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rec["weights_mib"] = weights_mib
            rec["straight_lines"] = lines
            out[key] = rec
            progress(f"{model_name} {w}x{h} {key}: {rec['fps']:.2f} FPS, peak {rec['peak_mib'] or 0:.0f} MiB, "
                     f"{rec['refined_points']:,} points refined")
        except Exception as exc:  # noqa: BLE001  (recorded, and the next variant still runs)
            message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            out[key] = {"error": message[:500]}
            progress(f"{model_name} {w}x{h} {key}: {message[:300]}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return out


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 2048x1536, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"size must be at least 32x32, got {text!r}")
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=MODELS, required=True)
    ap.add_argument("--size", type=parse_size, required=True, help="WxH, e.g. 2048x1536")
    ap.add_argument("--precisions", default="fp16,bf16", help="comma-separated: " + ", ".join(PRECISIONS))
    ap.add_argument("--compile", action="store_true", help="also time the first precision with torch.compile")
    ap.add_argument("--device", default="auto", help="auto (cuda if there is one), cuda or cpu")
    ap.add_argument("--warmup", type=int, default=1, help="untimed calls first (one more with --compile)")
    ap.add_argument("--min-calls", type=int, default=3)
    ap.add_argument("--max-calls", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=6.0, help="stop timing a variant after this (past min-calls)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--results", type=Path, help="add the record to this results.json (timing/<model>/<size>)")
    args = ap.parse_args(argv)
    precisions = [p for p in args.precisions.split(",") if p]
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        ap.error(f"unknown precision {unknown[0] if unknown else '(none)'}; choose from {', '.join(PRECISIONS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if args.warmup < 0 or args.min_calls < 1 or args.max_calls < args.min_calls:
        ap.error("need --warmup >= 0 and 1 <= --min-calls <= --max-calls")
    rec = measure(args.model, args.size, device, precisions, compile_=args.compile, warmup=args.warmup,
                  min_calls=args.min_calls,
                  max_calls=args.max_calls, max_seconds=args.max_seconds,
                  progress=lambda line: print(line, flush=True))
    size = f"{args.size[0]}x{args.size[1]}"
    if args.results:
        from gpu_results import update

        update(args.results, "timing", args.model, size, value=rec)
    else:
        print(json.dumps(rec, indent=1))
    # a variant that failed makes the process fail, so the stage says so; the others are recorded
    return 1 if any("error" in r for r in rec.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
