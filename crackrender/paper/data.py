"""Where the tables' rows train, validate and test: the shared public data, or synthetic cracks.

``shared``: train splits of CFD, DeepCrack537 and CRACK500 (as ``configs/paper/base.yaml``), their
val splits, and for testing CFD's test split and DeepCrack537's official one (CRACK500's test
split is withheld here, docs/design.md, "Data"). ``synthetic``: a dataset written under OUT by
:func:`crackrender.data.synthetic.write_synthetic_dataset`, with a test split of its own, so
the tables run on any machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from crackrender.errors import CrackRenderError
from crackrender.io import atomic_write_text

SHARED_ROOT = Path("../shared/data")   # from the project root, as the configs say
SHARED_TRAIN = ("cfd", "deepcrack537", "crack500")
SHARED_TEST = ("cfd", "deepcrack537")

# (images, (width, height), split fractions): quick runs need only a handful of each
SYNTHETIC = {
    "quick": (40, (128, 128), {"train": 0.6, "val": 0.2, "test": 0.2}),
    "full": (600, (384, 288), {"train": 0.8, "val": 0.1, "test": 0.1}),
}


@dataclass(frozen=True)
class DataSource:
    kind: str                       # shared or synthetic
    train: list[dict]               # data.train entries of a config
    val: list[dict]
    test: list[tuple[str, Path, str]]   # (name, root, split)

    def overrides(self) -> list[str]:
        """``load_config`` overrides that point a row's config at this data."""
        return [f"data.train={json.dumps(self.train)}", f"data.val={json.dumps(self.val)}"]


def shared_source(root: Path = SHARED_ROOT) -> DataSource:
    root = Path(root)
    for name in SHARED_TRAIN:
        folder = root / name
        if not folder.is_dir():
            raise CrackRenderError(f"dataset folder not found: {folder} (--data shared reads "
                                   f"{root}/{{{','.join(SHARED_TRAIN)}}}, relative to the working directory; "
                                   f"--data-root points elsewhere, --data synthetic runs without it)")
    entries = lambda split: [{"root": str(root / n), "split": split} for n in SHARED_TRAIN]  # noqa: E731
    return DataSource("shared", entries("train"), entries("val"), [(n, root / n, "test") for n in SHARED_TEST])


def synthetic_source(out: Path, quick: bool) -> DataSource:
    """Write (once; reused while its parameters match) and describe the synthetic dataset."""
    from crackrender.data.synthetic import write_synthetic_dataset

    mode = "quick" if quick else "full"
    n, size, splits = SYNTHETIC[mode]
    root = out / "data" / f"synthetic-{mode}"
    params = {"n": n, "size": list(size), "splits": splits, "seed": 0}
    stamp = root / "synthetic.json"
    if not (stamp.is_file() and json.loads(stamp.read_text()) == params):
        write_synthetic_dataset(root, n, size=size, seed=0, splits=splits)
        atomic_write_text(stamp, json.dumps(params) + "\n")  # written last: marks a complete dataset
    return DataSource("synthetic", [{"root": str(root), "split": "train"}], [{"root": str(root), "split": "val"}],
                      [("synthetic", root, "test")])


def data_source(kind: str, out: Path, quick: bool, root: Path | None = None) -> DataSource:
    """``root``: where the shared datasets lie (default ../shared/data; e.g. a pack carried to a GPU)."""
    if kind == "shared":
        return shared_source(SHARED_ROOT if root is None else root)
    if root is not None:
        raise CrackRenderError("--data-root applies to --data shared")
    if kind == "synthetic":
        return synthetic_source(out, quick)
    raise CrackRenderError(f"--data must be shared or synthetic, got {kind!r}")
