"""Training step time in float32 against bf16 autocast on this CPU, in one process, interleaved.

CPUs differ: an AMX Xeon ran a ResNet18 UNet step 2.5x faster in bf16, an AVX2 EPYC 9x slower, a
Zen 4 EPYC (avx512_bf16) ran CBPRN inference 1.7x slower. Measure before a long run:

    python benchmarks/train_step_precision.py [--config configs/cbprn_light.yaml] [--steps 4]

Prints the median step time of each and the ratio bf16 / fp32 (below 1: bf16 is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from crackrender.models import create_model
from crackrender.train.config import load_config
from crackrender.train.losses import segmentation_losses


def step_time(model, opt, images, masks, loss_weights, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model.training_outputs(images, masks, generator=torch.Generator().manual_seed(0))
        loss = segmentation_losses(out, masks, loss_weights)["loss"]
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/cbprn_light.yaml")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    model = create_model(**{**cfg["model"], "pretrained": False}).train().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=g).contiguous(memory_format=torch.channels_last)
    masks = (torch.rand(args.batch, 1, args.size, args.size, generator=g) > 0.95).float()
    times = {False: [], True: []}
    for bf16 in (False, True):  # warm-up, both paths
        step_time(model, opt, images, masks, cfg["loss"], bf16)
    for _ in range(args.steps):
        for bf16 in (False, True):
            times[bf16].append(step_time(model, opt, images, masks, cfg["loss"], bf16))
    fp32, bf16 = statistics.median(times[False]), statistics.median(times[True])
    print(f"{cfg['name']}: batch {args.batch} at {args.size}px, {torch.get_num_threads()} threads, "
          f"bf16 supported by oneDNN: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    print(f"fp32 {fp32:.2f} s/step, bf16 {bf16:.2f} s/step, bf16/fp32 = {bf16 / fp32:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
