"""Post-processing choices for one model, scored on the val splits (issue 15): the straight-line
filter's length, dropping small crack components, and flip test-time augmentation (TTA).

Each val image's probability is computed once (plain, left-right and up-down flipped; cached as
8-bit maps per split under --cache) and every combination of the settings is scored by the rule
segment's defaults were chosen by: the mean over the datasets of the dataset-aggregated F1 (each
dataset counts once). Masks are p >= the model's threshold, then the filter, as `segment` does
(val images run as one tile).

    python benchmarks/postprocess_val.py shipped
    python benchmarks/postprocess_val.py shipped --lines 0 200 --min-area 0 20 100 160 --tta none lr flips

--tta: none, lr (mean with the left-right flip), flips (mean with left-right and up-down flips).
--min-area N drops 8-connected crack components of fewer than N px (0: keeps all).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VAL_SPLITS = ("crack500", "deepcrack537", "cfd", "uavcrackx", "kaggle-uav", "masonry")
DEFAULT_CACHE = Path.home() / ".cache" / "crackrender" / "postprocess"
TTA = {"none": ("plain",), "lr": ("plain", "lr"), "flips": ("plain", "lr", "ud")}


def cached_probabilities(seg, root: Path, cache: Path) -> Path:
    """``<cache>/<split>.npz``: per image its mask and 8-bit probabilities (plain, lr, ud)."""
    from crackrender.data.datasets import CrackDataset
    from crackrender.io import atomic_write_bytes

    path = cache / f"{root.name}.npz"
    if path.is_file():
        return path
    ds = CrackDataset(root, "val")
    arrays = {}
    for i in range(len(ds)):
        image, mask = ds.load(i)
        arrays[f"{i}/gt"] = mask.astype(bool)
        for name, flip in (("plain", lambda a: a), ("lr", lambda a: a[:, ::-1]), ("ud", lambda a: a[::-1])):
            prob = seg(np.ascontiguousarray(flip(image))).prob_float()
            arrays[f"{i}/{name}"] = np.round(flip(prob) * 255).astype(np.uint8)
        print(f"\r{root.name}:val {i + 1}/{len(ds)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def postprocess(probs: list[np.ndarray], threshold: float, lines: int, min_area: int) -> np.ndarray:
    """The mask segment would give from these 8-bit probabilities (averaged), plus the area filter."""
    from skimage.morphology import remove_small_objects

    from crackrender.straight_lines import drop_straight_lines

    mean = sum(p.astype(np.float32) for p in probs) / (255 * len(probs))
    mask = drop_straight_lines(mean >= threshold, lines)
    return remove_small_objects(mask, max_size=min_area - 1, connectivity=2) if min_area > 1 else mask


def split_f1(npz: Path, threshold: float, lines: int, min_area: int, tta: str) -> float:
    """Dataset-aggregated F1 of the split's masks under these settings."""
    from crackrender.metrics import confusion, scores

    data = np.load(npz)
    total = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for i in sorted({int(k.split("/")[0]) for k in data.files}):
        mask = postprocess([data[f"{i}/{v}"] for v in TTA[tta]], threshold, lines, min_area)
        for k, v in confusion(mask, data[f"{i}/gt"]).items():
            total[k] += v
    return scores(total)["f1"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a model file; 'shipped' for the package's model")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--datasets", nargs="+", default=list(VAL_SPLITS), help="datasets under --data (val splits)")
    parser.add_argument("--threshold", type=float, default=None, help="default: the model's own")
    parser.add_argument("--lines", type=int, nargs="+", default=[0, 200], help="straight-line lengths, px (0: off)")
    parser.add_argument("--min-area", type=int, nargs="+", default=[0, 20, 100], help="smallest component kept, px")
    parser.add_argument("--tta", nargs="+", default=list(TTA), choices=list(TTA))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from crackrender.errors import CrackRenderError
    from crackrender.segment import Segmenter
    from crackrender.straight_lines import check_min_length
    from crackrender.weights import model_label, model_path

    try:
        for length in args.lines:
            check_min_length(length)
        seg = Segmenter.from_checkpoint(model_path(args.model), device=args.device, straight_lines=0)
    except CrackRenderError as exc:
        sys.exit(f"error: {exc}")
    threshold = seg.threshold if args.threshold is None else args.threshold
    # the cache is per model file and its contents, so a retrained file gets new probabilities
    digest = hashlib.sha256(Path(seg.source).read_bytes()).hexdigest()[:12]
    cache = args.cache / f"{model_label(args.model)}-{digest}"
    cache.mkdir(parents=True, exist_ok=True)
    npz = {name: cached_probabilities(seg, args.data / name, cache) for name in args.datasets}

    print(f"{model_label(args.model)}, threshold {threshold:.3f}: dataset-aggregated val F1\n")
    print("| tta | lines | min area | " + " | ".join(npz) + " | mean |")
    print("|---|---|---|" + "---|" * (len(npz) + 1))
    for tta, lines, area in itertools.product(args.tta, args.lines, args.min_area):
        f1 = [split_f1(path, threshold, lines, area, tta) for path in npz.values()]
        print(f"| {tta} | {lines or 'off'} | {area or 'all'} | " + " | ".join(f"{v:.3f}" for v in f1)
              + f" | {sum(f1) / len(f1):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
