"""The synthetic sets of ``configs/gpu_light.yaml``, made on the device by ``gpu_run.sh`` (nothing
to carry): the four of the CPU models' mix (``configs/cbprn_v2_wide.yaml``; seeds and settings as
in ``checkpoints/README.md``'s regeneration commands), smaller, one process each.

- ``synthetic-negatives-concrete`` / ``-asphalt``: hard-negative scenes (every distractor family),
  half of them without cracks;
- ``synthetic-wide-concrete`` / ``-asphalt``: cracks 6-24 px wide among distractors, a quarter
  without cracks.

    python benchmarks/gpu_synth.py --pack .pack --n 150 --size 512x512
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: the package beside it

SETS = {
    "synthetic-negatives-concrete": dict(seed=21, surface="concrete", negatives=0.5, width_range=(1.0, 8.0)),
    "synthetic-negatives-asphalt": dict(seed=22, surface="asphalt", negatives=0.5, width_range=(1.0, 8.0)),
    "synthetic-wide-concrete": dict(seed=23, surface="concrete", negatives=0.25, width_range=(6.0, 24.0)),
    "synthetic-wide-asphalt": dict(seed=24, surface="asphalt", negatives=0.25, width_range=(6.0, 24.0)),
}


def make_set(root: Path, n: int, size: tuple[int, int], settings: dict) -> str:
    from crackrender.data.synthetic import write_synthetic_dataset

    return str(write_synthetic_dataset(root, n, size=size, distractors="all", **settings))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pack", type=Path, required=True, help="the data pack the sets go into")
    ap.add_argument("--n", type=int, default=150, help="scenes per set")
    ap.add_argument("--size", default="512x512", help="WxH of the scenes")
    args = ap.parse_args(argv)
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        if len(size) != 2 or min(size) < 32 or args.n < 1:
            raise ValueError
    except ValueError:
        ap.error(f"need --n >= 1 and --size WxH of at least 32x32, got --n {args.n} --size {args.size}")
    with ProcessPoolExecutor(len(SETS)) as pool:
        jobs = {name: pool.submit(make_set, args.pack / name, args.n, size, settings) for name, settings in SETS.items()}
        for name, job in jobs.items():
            print(f"{name}: {args.n} scenes of {args.size} in {job.result()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
