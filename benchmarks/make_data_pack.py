"""Build the compact data pack a GPU run carries with it (``benchmarks/gpu_run.sh``).

A device run takes at most 64 MiB of working tree and carried folders together, and the
repository alone is most of that, so the public datasets (``../shared/data``, hundreds of MB)
travel as a small pack in the ignored folder ``.pack/``, one folder per dataset in the project's
layout (``images/``, ``masks/``, ``train.txt``, ``val.txt``):

- train: an evenly spaced subset of each dataset's train split, scaled down (never up) so the
  short side is ``--side`` px (aspect kept, so ``mode: crop`` configs keep their geometry and
  ``mode: resize`` ones still resize to the paper's 256x256), JPEG;
- val: an evenly spaced subset of the val split at native size (validation runs at native size),
  JPEG at a higher quality;
- masks: 1-bit PNG (``crackrender.io.read_mask`` reads them), area-resized and thresholded at 0.5.

The pack is built in a temporary folder beside ``--out`` and swapped in only when complete and
within ``--max-mb``, so a failed build leaves an earlier pack as it was. ``PACK.json`` records
what went in. Nothing of the pack is ever committed (research-only licences).

    python benchmarks/make_data_pack.py                          # .pack/ from ../shared/data
    python benchmarks/make_data_pack.py --train-per-dataset 60 --max-mb 10
    python benchmarks/make_data_pack.py --synthetic 5 --out /tmp/pack    # no data needed: a CPU dry run
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: the package beside it

from crackrender.data.datasets import CrackDataset  # noqa: E402
from crackrender.errors import CrackRenderError, InputError  # noqa: E402
from crackrender.io import atomic_write_bytes, atomic_write_json, encode_image  # noqa: E402

DATASETS = ("cfd", "deepcrack537", "crack500", "uavcrackx", "kaggle-uav", "masonry")
MB = 1e6


def evenly_spaced(n: int, k: int | None) -> list[int]:
    """``k`` indices spread over ``range(n)`` (all of them when ``k`` is None or >= n).

    Examples:
        >>> evenly_spaced(10, 3), evenly_spaced(2, 5)
        ([0, 4, 9], [0, 1])
    """
    if k is None or k >= n:
        return list(range(n))
    return np.linspace(0, n - 1, k).round().astype(int).tolist()


def shrink(image: np.ndarray, mask: np.ndarray, side: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Scale image and mask down so the short side is ``side`` (never up; None: unchanged).

    Examples:
        >>> img, m = shrink(np.zeros((100, 300, 3), np.uint8), np.ones((100, 300), bool), 50)
        >>> img.shape, m.shape, bool(m.all())
        ((50, 150, 3), (50, 150), True)
    """
    h, w = mask.shape
    if side is None or min(h, w) <= side:
        return image, mask
    s = side / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # area-average the label, then threshold: a crack keeps its (scaled) width, not a 1-px staircase
    mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    return image, mask


def encode_mask(mask: np.ndarray) -> bytes:
    """A bool mask as a 1-bit PNG (a few hundred bytes for a 256-px crack mask)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(mask)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def pack_split(src: CrackDataset, dst: Path, count: int | None, side: int | None, quality: int) -> tuple[list[str], int]:
    """Write ``count`` evenly spaced pairs of ``src`` into ``dst``; returns their stems and bytes."""
    stems, total = [], 0
    for i in evenly_spaced(len(src), count):
        stem = src.pairs[i][0]
        image, mask = shrink(*src.load(i), side)
        jpg, png = encode_image(image, ".jpg", quality), encode_mask(mask)
        atomic_write_bytes(dst / "images" / f"{stem}.jpg", jpg)
        atomic_write_bytes(dst / "masks" / f"{stem}.png", png)
        total += len(jpg) + len(png)
        stems.append(stem)
    return stems, total


def build_pack(data: Path, out: Path, datasets: list[str], *, train_per_dataset: int | None, val_per_dataset: int | None,
               side: int | None, quality: int, val_quality: int, max_mb: float, progress: bool = True) -> dict:
    """Build the pack into ``out`` (see the module docstring); returns what ``PACK.json`` records."""
    from tqdm import tqdm

    for name in datasets:
        if not (data / name).is_dir():
            raise InputError(f"{data / name}: no such dataset folder (have: "
                             f"{', '.join(sorted(p.name for p in data.iterdir() if p.is_dir())) or 'none'})")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    record = {"source": str(data), "side": side, "quality": quality, "val_quality": val_quality,
              "train_per_dataset": train_per_dataset, "val_per_dataset": val_per_dataset, "datasets": {}}
    total = 0
    try:
        for name in tqdm(datasets, desc="pack", unit="dataset", disable=not progress):
            entry = {}
            for split, count, sd, q in (("train", train_per_dataset, side, quality),
                                        ("val", val_per_dataset, None, val_quality)):
                stems, size = pack_split(CrackDataset(data / name, split), tmp / name, count, sd, q)
                atomic_write_bytes(tmp / name / f"{split}.txt", "".join(f"{s}\n" for s in stems).encode())
                entry[split] = len(stems)
                entry[f"{split}_mb"] = round(size / MB, 2)
                total += size
                if total > max_mb * MB:
                    raise CrackRenderError(
                        f"the pack passed --max-mb {max_mb:g} at {name}/{split} ({total / MB:.1f} MB): "
                        f"lower --train-per-dataset, --val-per-dataset, --side or --quality")
            record["datasets"][name] = entry
        record["total_mb"] = round(total / MB, 2)
        atomic_write_json(tmp / "PACK.json", record)
        # swap in the complete pack; an earlier one goes only now
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def synthetic_sources(root: Path, datasets: list[str], n: int, size: tuple[int, int]) -> Path:
    """Tiny synthetic stand-ins under ``root``, named like the real datasets (``--synthetic``), so a
    dry run packs and trains through exactly the real configs without ../shared/data."""
    from crackrender.data.synthetic import write_synthetic_dataset

    for i, name in enumerate(datasets):
        write_synthetic_dataset(root / name, n, size=size, seed=i)
    return root


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="folder of dataset folders")
    ap.add_argument("--out", type=Path, default=REPO / ".pack")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated dataset folder names")
    # 90 in the first GPU run (12.9 MB); 300 use the room left once checkpoints/ stays behind
    ap.add_argument("--train-per-dataset", type=int, default=300)
    ap.add_argument("--val-per-dataset", type=int, default=8)
    ap.add_argument("--side", type=int, default=256, help="short side of the training images (0: native)")
    ap.add_argument("--quality", type=int, default=75, help="JPEG quality of the training images")
    ap.add_argument("--val-quality", type=int, default=85, help="JPEG quality of the validation images")
    ap.add_argument("--max-mb", type=float, default=34.0,
                    help="fail above this many MB (1e6 bytes); the repository without checkpoints/ is ~24 MiB of the 64")
    ap.add_argument("--synthetic", type=int, metavar="N",
                    help="pack N synthetic scenes per dataset name instead of --data (a dry run without data)")
    ap.add_argument("--synthetic-size", default="96x64", help="WxH of the synthetic scenes")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        for flag in ("train_per_dataset", "val_per_dataset", "quality", "val_quality"):
            if getattr(args, flag) < 1:
                raise InputError(f"--{flag.replace('_', '-')} must be >= 1")
        datasets = [d for d in args.datasets.split(",") if d]
        with tempfile.TemporaryDirectory(prefix="pack-src-") as scratch:
            if args.synthetic:
                w, h = (int(v) for v in args.synthetic_size.split("x"))
                args.data = synthetic_sources(Path(scratch), datasets, args.synthetic, (w, h))
            record = build_pack(args.data, args.out, datasets,
                                train_per_dataset=args.train_per_dataset, val_per_dataset=args.val_per_dataset,
                                side=args.side or None, quality=args.quality, val_quality=args.val_quality,
                                max_mb=args.max_mb, progress=not args.no_progress)
    except CrackRenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{k} {v['train']}+{v['val']}" for k, v in record["datasets"].items())
    print(f"{args.out}: {record['total_mb']:.1f} MB of images and masks ({folder_mb(args.out):.1f} MB on disk); "
          f"train+val per dataset: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
