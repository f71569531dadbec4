"""Time and peak memory of whole-image `segment` at 2048x1536, split by stage.

Each variant runs in its own subprocess so peak memory is its own. The baseline is the plain
ResNet trunk forward of the same variant, measured in the same process; every stage is also
given as a ratio to it. On CPU, peak memory is the process's peak RSS above what it held after
loading the model and the image (the high-water mark of the whole
run, so of its largest stage); on CUDA, torch.cuda.max_memory_allocated.

    python benchmarks/segment_speed.py                       # CPU, 2 threads
    python benchmarks/segment_speed.py --device cuda
    python benchmarks/segment_speed.py --variants "resnet18 (light)"   # the shipped model only
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "resnet50 (paper)": {"backbone": "resnet50"},
    "resnet18 (light)": {"backbone": "resnet18", "edge_dim": 32, "edge_heads": 4, "fpn_dim": 64, "feature_dim": 64,
                         "heatmap_dim": 32, "point_hidden": 128},
}


def _shipped_model() -> str | None:
    from crackrender.errors import CrackRenderError
    from crackrender.weights import default_model_path

    try:
        return str(default_model_path())
    except CrackRenderError:
        return None


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(variant: str, checkpoint: str | None, device: str, size: tuple[int, int], repeats: int, threads: int,
            bf16: bool) -> dict:
    import torch

    from crackrender.data.synthetic import render_crack_scene
    from crackrender.models import create_model

    torch.set_num_threads(threads)
    if checkpoint:
        from crackrender.checkpoint import load_model

        model = load_model(checkpoint, device=device)
    else:
        torch.manual_seed(0)
        model = create_model("cbprn", **VARIANTS[variant]).to(device).eval()
    if device == "cpu":
        model = model.to(memory_format=torch.channels_last)
    w, h = size
    image = render_crack_scene(w, h, seed=0).image
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)
    x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    autocast = torch.autocast(x.device.type, dtype=torch.bfloat16 if bf16 or device == "cpu" else torch.float16,
                              enabled=bf16 or device.startswith("cuda"))

    def trunk():
        with torch.inference_mode(), autocast:
            sync()
            t = time.perf_counter()
            model.backbone(model.normalize(x))
            sync()
            return time.perf_counter() - t

    def full():
        timings: dict = {}
        with torch.inference_mode(), autocast:
            sync()
            t = time.perf_counter()
            pred = model.predict(x, timings=timings)
            sync()
            timings["total"] = time.perf_counter() - t
        return timings, pred.refined_points[0]

    rss_loaded = _rss_mb()  # model and image in memory, nothing run yet
    trunk()
    full()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trunk_times, runs = [], []
    for _ in range(repeats):
        trunk_times.append(trunk())
        runs.append(full())
    base = statistics.median(trunk_times)
    stages = {k: statistics.median(r[0][k] for r in runs) for k in runs[0][0]}
    points = runs[0][1]
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else _rss_mb() - rss_loaded)
    return {"variant": variant, "checkpoint": checkpoint, "device": device, "threads": threads, "bf16": bf16,
            "size": f"{w}x{h}", "repeats": repeats, "trunk_s": base, "stages_s": stages,
            "ratios": {k: v / base for k, v in stages.items()}, "refined_points": points,
            "point_us_per_point": 1e6 * stages["point_refinement"] / points if points else None,
            "peak_mb": peak, "peak_rss_mb": _rss_mb()}


def table(rows: list[dict]) -> str:
    stages = ["backbone", "edge_branch", "heatmap", "point_refinement", "total"]
    lines = ["| variant | trunk alone (s) | " + " | ".join(stages) + " | refined points | us per point | peak memory (MB) |",
             "|---|---|" + "---|" * len(stages) + "---|---|---|"]
    for r in rows:
        cells = [f"{r['stages_s'][s]:.2f} s ({r['ratios'][s]:.2f}x)" for s in stages]
        lines.append(f"| {r['variant']} | {r['trunk_s']:.2f} | " + " | ".join(cells) +
                     f" | {r['refined_points']:,} | {r['point_us_per_point'] or 0:.1f} | {r['peak_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="2048x1536")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (only fast on CPUs with native bf16)")
    ap.add_argument("--light-checkpoint", default=_shipped_model(),
                    help="trained light model (default: the shipped one): gives a realistic refined-point count")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS))
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if args.one:
        ckpt = args.light_checkpoint if "light" in args.one else None
        print(json.dumps(measure(args.one, ckpt, args.device, size, args.repeats, args.threads, args.bf16)))
        return
    rows = []
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            ap.error(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        cmd = [sys.executable, __file__, "--one", variant, "--device", args.device, "--size", args.size,
               "--repeats", str(args.repeats), "--threads", str(args.threads)]
        cmd += ["--bf16"] if args.bf16 else []
        cmd += ["--light-checkpoint", args.light_checkpoint] if args.light_checkpoint else []
        print(f"measuring {variant} ...", file=sys.stderr, flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
