"""``crackrender data check``: validate a dataset folder and summarise it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from crackrender.data.datasets import MASK_EXTENSIONS, find_file, read_split
from crackrender.errors import InputError
from crackrender.io import IMAGE_EXTENSIONS, list_images, read_image_array, read_mask_with_encoding


@dataclass
class SplitReport:
    name: str
    listed: int = 0
    valid: int = 0
    sizes: Counter = field(default_factory=Counter)  # (width, height) -> count
    crack_share_sum: float = 0.0
    empty_masks: int = 0

    @property
    def crack_share(self) -> float:
        return self.crack_share_sum / self.valid if self.valid else 0.0


@dataclass
class CheckReport:
    root: Path
    splits: list[SplitReport]
    problems: list[str]  # one line per bad file or inconsistency
    unlisted: list[str]  # stems with an image and a mask that no split lists
    encodings: Counter = field(default_factory=Counter)  # how the valid masks are stored

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        lines = [f"dataset {self.root}"]
        header = f"  {'split':<10}{'listed':>8}{'valid':>8}{'crack %':>9}{'empty':>7}  sizes (W x H: count)"
        lines.append(header)
        for s in self.splits:
            sizes = ", ".join(f"{w}x{h}: {n}" for (w, h), n in s.sizes.most_common(4))
            if len(s.sizes) > 4:
                sizes += f", ... ({len(s.sizes)} sizes)"
            lines.append(f"  {s.name:<10}{s.listed:>8}{s.valid:>8}{100 * s.crack_share:>9.2f}{s.empty_masks:>7}  {sizes}")
        total_valid = sum(s.valid for s in self.splits)
        total_listed = sum(s.listed for s in self.splits)
        lines.append(f"  {'total':<10}{total_listed:>8}{total_valid:>8}")
        lines.append(f"{total_valid} valid pairs")
        if self.encodings:
            lines.append("masks: " + ", ".join(f"{k}: {n}" for k, n in self.encodings.most_common()))
        if self.unlisted:
            lines.append(f"  {len(self.unlisted)} pairs not listed in any split (e.g. {self.unlisted[0]})")
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines.extend(f"  {p}" for p in self.problems)
        else:
            lines.append("all pairs valid")
        return "\n".join(lines)


def check_pair(image_path: Path, mask_path: Path) -> tuple[tuple[int, int], float, str]:
    """Validate one pair; return its (width, height), crack-pixel share and mask encoding, or raise."""
    image = read_image_array(image_path)
    mask, encoding = read_mask_with_encoding(mask_path)
    if image.shape[:2] != mask.shape:
        raise InputError(
            f"{mask_path}: size {mask.shape[1]}x{mask.shape[0]} differs from image "
            f"{image_path.name} {image.shape[1]}x{image.shape[0]}"
        )
    return (mask.shape[1], mask.shape[0]), float(mask.mean()), encoding


def check_dataset(root: str | Path, progress: bool = True) -> CheckReport:
    """Read every listed pair and report counts, sizes, crack share and every bad file.

    Without split lists, every image with a mask counts as one split named ``all``.
    """
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise InputError(f"{root}: not a dataset folder (expected images/ and masks/ inside)")
    images = {p.stem: p for p in list_images(images_dir)}
    masks = {p.stem: p for p in list_images(masks_dir) if p.suffix.lower() in MASK_EXTENSIONS}
    if not images:
        raise InputError(f"{images_dir}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    split_names = sorted(p.stem for p in root.glob("*.txt"))
    split_stems = {name: read_split(root, name) for name in split_names} or {"all": sorted(images)}

    problems: list[str] = []
    for stem in sorted(set(images) - set(masks)):
        problems.append(f"{images[stem]}: no mask")
    for stem in sorted(set(masks) - set(images)):
        problems.append(f"{masks[stem]}: no image")
    seen: dict[str, str] = {}
    for name, stems in split_stems.items():
        for stem in stems:
            if stem in seen and seen[stem] != name:
                problems.append(f"{root}: stem {stem!r} is in both {seen[stem]}.txt and {name}.txt")
            seen.setdefault(stem, name)

    reports = []
    encodings: Counter = Counter()
    checked: dict[str, tuple | None] = {}
    total = sum(len(s) for s in split_stems.values())
    bar = tqdm(total=total, desc="checking", unit="pair", disable=not progress, leave=False)
    for name, stems in split_stems.items():
        rep = SplitReport(name, listed=len(stems))
        for stem in stems:
            bar.update()
            if stem not in checked:
                image_path = images.get(stem) or find_file(images_dir, stem, IMAGE_EXTENSIONS)
                mask_path = masks.get(stem) or find_file(masks_dir, stem, MASK_EXTENSIONS)
                if image_path is None or mask_path is None:
                    if stem not in images and stem not in masks:
                        problems.append(f"{root / (name + '.txt')}: stem {stem!r} has no image and no mask")
                    checked[stem] = None
                    continue
                try:
                    checked[stem] = check_pair(image_path, mask_path)
                    encodings[checked[stem][2]] += 1
                except InputError as exc:
                    problems.append(str(exc))
                    checked[stem] = None
            result = checked[stem]
            if result is None:
                continue
            size, share, _ = result
            rep.valid += 1
            rep.sizes[size] += 1
            rep.crack_share_sum += share
            rep.empty_masks += share == 0.0
        reports.append(rep)
    bar.close()
    listed = set(seen) if split_names else set(images)
    unlisted = sorted((set(images) & set(masks)) - listed)
    return CheckReport(root, reports, problems, unlisted, encodings)
