"""Whole-image `segment` time of the shipped model with the edge branch as it was (torchvision's
shifted-window attention, the six-box-filter guided filter on a channels-last image) and as it is
(SDPA window attention, the four-box-filter self-guided filter), against the UNet peer.

All three run in one process on the same image, interleaved round by round (the order reversed
every other round, so drift from the shared machine falls on all of them alike), after a warm-up
round; medians are reported, with each total as a ratio to the UNet's. The old and new models
share their weights, so the script also reports how far their probabilities and masks differ.

    python benchmarks/edge_branch_speed.py                      # 2048x1536, 2 threads, 5 rounds
    python benchmarks/edge_branch_speed.py --size 1920x1080 --repeats 7 --json edge.json
    python benchmarks/edge_branch_speed.py --paper-width        # + the branch alone, dim 60
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from functools import partial

import torch
from torch import nn
from torchvision.models.swin_transformer import ShiftedWindowAttention
from tqdm import tqdm

from crackrender.ops.guided_filter import guided_filter


class _LegacyGuidedFilter(nn.Module):
    """The guided filter as the edge branch ran it before: general form, six box filters."""

    def __init__(self, radius: int, eps: float):
        super().__init__()
        self.radius, self.eps = radius, eps

    def forward(self, x):
        return guided_filter(x, x, self.radius, self.eps)


def legacy_branch(branch: nn.Module) -> nn.Module:
    """A copy of an EdgeGuidedBranch (same weights) that computes as before the speed-up."""
    from crackrender.models.swin_attention import WindowAttention

    old = copy.deepcopy(branch)
    for module in old.modules():
        if type(module) is WindowAttention:
            # the subclass adds no state, so torchvision's class runs the very same module
            module.__class__ = ShiftedWindowAttention
    old.guided_filter = _LegacyGuidedFilter(old.guided_filter.radius, old.guided_filter.eps)
    return old


def legacy_model(model: nn.Module) -> nn.Module:
    """``model`` with its edge branch as before the speed-up."""
    old = copy.copy(model)  # shares every part but the edge branch, which legacy_branch copies
    old._modules = dict(model._modules, edge_branch=legacy_branch(model.edge_branch))
    return old


def interleaved(calls: dict, repeats: int, desc: str) -> tuple[dict, dict]:
    """Run every call once per round, the order reversed every other round, after a warm-up
    round whose results are returned; and every timed round's timings."""
    names = list(calls)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    first = {}
    for round_ in tqdm(range(repeats + 1), desc=desc, unit="round"):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            result, timings = calls[name]()
            timings = dict(timings, wall=time.perf_counter() - start)
            if round_ == 0:
                first[name] = result
            else:
                runs[name].append(timings)
    return first, runs


def medians(runs: dict) -> dict:
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2048x1536", help="WxH of the synthetic crack scene")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds after the warm-up round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", help="model file (default: the shipped one)")
    ap.add_argument("--paper-width", action="store_true",
                    help="also time the branch alone at the paper variant's width (dim 60, 6 heads), old vs new")
    ap.add_argument("--json", help="write the medians and every run here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from crackrender.checkpoint import load_model
    from crackrender.data.synthetic import render_crack_scene
    from crackrender.inference import prepare_model
    from crackrender.models import create_model
    from crackrender.models.edge_branch import EdgeGuidedBranch
    from crackrender.segment import Segmenter
    from crackrender.weights import default_model_path

    w, h = (int(v) for v in args.size.split("x"))
    image = render_crack_scene(w, h, seed=0).image
    tile = 32 * math.ceil(max(w, h) / 32)  # one tile: the whole image in one forward
    device = torch.device("cpu")
    path = args.model or str(default_model_path())
    new = prepare_model(load_model(path, device=device).eval(), device)
    torch.manual_seed(0)
    unet = prepare_model(create_model("unet").eval(), device)
    segmenters = {"unet": Segmenter(unet, device, tile=tile),
                  "cbprn old edge branch": Segmenter(legacy_model(new), device, tile=tile),
                  "cbprn new edge branch": Segmenter(new, device, tile=tile)}

    def segment(name):
        result = segmenters[name](image)
        return result, result.timings

    results, runs = interleaved({name: partial(segment, name) for name in segmenters}, args.repeats, "whole image")
    names = list(segmenters)
    med = medians(runs)
    base = med["unet"]["total"]
    old, fresh = results["cbprn old edge branch"], results["cbprn new edge branch"]
    agreement = {"max_prob_difference": float(abs(old.prob - fresh.prob).max()),
                 "mask_pixels_differing": int((old.mask != fresh.mask).sum()),
                 "refined_points": [old.refined_points, fresh.refined_points]}
    print(f"{args.size}, {args.threads} threads, median of {args.repeats} interleaved rounds (model: {path})")
    print("| configuration | edge branch (s) | total (s) | total / UNet |")
    print("|---|---|---|---|")
    for name in names:
        m = med[name]
        edge = f"{m['edge_branch']:.2f}" if "edge_branch" in m else "-"
        print(f"| {name} | {edge} | {m['total']:.2f} | {m['total'] / base:.2f}x |")
    old_m, new_m = med["cbprn old edge branch"], med["cbprn new edge branch"]
    print(f"edge branch {old_m['edge_branch'] / new_m['edge_branch']:.2f}x faster, "
          f"whole image {old_m['total'] / new_m['total']:.2f}x faster")
    print("old vs new outputs:", json.dumps(agreement))
    report = {"size": args.size, "threads": args.threads, "model": path, "medians": med, "runs": runs,
              "agreement": agreement}

    if args.paper_width:
        # the branch alone at the paper variant's width (random init: speed does not depend on it)
        torch.manual_seed(0)
        wide = EdgeGuidedBranch(dim=60, num_heads=6).eval().to(memory_format=torch.channels_last)
        branches = {"old": legacy_branch(wide), "new": wide}
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
        x = x.contiguous(memory_format=torch.channels_last)

        def branch(name):
            with torch.inference_mode():
                return branches[name](x), {}

        outs, runs = interleaved({name: partial(branch, name) for name in branches}, args.repeats, "paper width")
        wide_med = {name: m["wall"] for name, m in medians(runs).items()}
        print(f"edge branch alone at the paper's width (dim 60, 6 heads): old {wide_med['old']:.2f} s, "
              f"new {wide_med['new']:.2f} s ({wide_med['old'] / wide_med['new']:.2f}x); max difference "
              f"{float((outs['old'] - outs['new']).abs().max()):.2g}")
        report["paper_width_s"] = wide_med
    if args.json:
        from crackrender.io import atomic_write_json

        atomic_write_json(args.json, report)


if __name__ == "__main__":
    main()
