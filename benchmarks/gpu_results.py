"""The GPU run's results: ``results.json`` (rewritten atomically after every stage, so a run killed
at its limit still returns what it finished), ``report.md`` rendered from it, and the weight
shards that fit the device tool's return limits.

Used by ``benchmarks/gpu_run.sh`` (subcommands ``env``, ``stage``, ``junit``, ``report``,
``travel``) and by people here afterwards:

    python benchmarks/gpu_results.py merge RESULTS_DIR gpu-light -o gpu-light.safetensors
    crackrender segment photo.jpg --checkpoint gpu-light.safetensors

What comes back from a device run: at most 8 files, each at most 16 MiB, 64 MiB in all
(``/work/.library/device/README.md``): results.json, report.md, logs.tar.gz and the shards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: the package beside it

from crackrender.errors import CrackRenderError, InputError  # noqa: E402
from crackrender.io import atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: E402

MiB = 2**20
RETURN_FILES, RETURN_FILE_BYTES, RETURN_TOTAL_BYTES = 8, 16 * MiB, 64 * MiB
TRAVEL_BYTES = 64 * MiB
# results.json, report.md and logs.tar.gz come back too: the shards get the rest, less a margin
TEXT_FILES, TEXT_RESERVE = 3, 2 * MiB
SHARD_BYTES = 15 * MiB + MiB // 2  # under 16 MiB with room for the header and metadata
SHARD_FORMAT = "crackrender-model-shard/1"
SHARD_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)\.shard-(?P<i>\d+)-of-(?P<n>\d+)\.safetensors$")


# ---------------------------------------------------------------- results.json

def load(path: Path) -> dict:
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def update(path: Path, *keys: str, value) -> dict:
    """Set ``results[keys[0]][keys[1]]... = value`` and rewrite the file atomically."""
    results = load(path)
    node = results
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    atomic_write_json(path, results)
    return results


# ---------------------------------------------------------------- weight shards

def shard_plan(state: dict, max_bytes: int) -> list[list[str]]:
    """Tensor names grouped into shards of at most ``max_bytes`` of data, in state order.

    Examples:
        >>> import torch
        >>> state = {k: torch.zeros(n, dtype=torch.float16) for k, n in (("a", 300), ("b", 300), ("c", 500))}
        >>> shard_plan(state, max_bytes=1200)
        [['a', 'b'], ['c']]
    """
    shards: list[list[str]] = [[]]
    used = 0
    for key, tensor in state.items():
        size = tensor.numel() * tensor.element_size()
        if size > max_bytes:
            raise CrackRenderError(f"tensor {key} alone ({size / MiB:.1f} MiB) exceeds a shard ({max_bytes / MiB:.1f} MiB)")
        if used + size > max_bytes and shards[-1]:
            shards.append([])
            used = 0
        shards[-1].append(key)
        used += size
    return shards


def returned_files(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_file()) if out.is_dir() else []


def write_shards(model_file: Path, out: Path, name: str) -> dict:
    """``model_file``'s weights as float16 shards ``<name>.shard-<i>-of-<n>.safetensors`` in
    ``out``, if they fit what is left of the return limits; else nothing is written and the
    record says why. Returns {"files", "mib"} or {"not_returned": reason}."""
    from safetensors.torch import save

    from crackrender.checkpoint import read_checkpoint

    config, state, info = read_checkpoint(model_file)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    plan = shard_plan(state, SHARD_BYTES)
    need = sum(v.numel() * v.element_size() for v in state.values())
    others = [p for p in returned_files(out) if not SHARD_NAME.match(p.name) or SHARD_NAME.match(p.name)["name"] != name]
    files_left = RETURN_FILES - TEXT_FILES - sum(1 for p in others if SHARD_NAME.match(p.name))
    bytes_left = RETURN_TOTAL_BYTES - TEXT_RESERVE - sum(p.stat().st_size for p in others if SHARD_NAME.match(p.name))
    if len(plan) > files_left or need + len(plan) * 64 * 1024 > bytes_left:
        return {"not_returned": f"{need / MiB:.1f} MiB in {len(plan)} shards does not fit what the device tool "
                                f"returns beside the earlier files ({max(0, files_left)} files, "
                                f"{max(0, bytes_left) / MiB:.1f} MiB left of 8 files, 64 MiB)",
                "mib": round(need / MiB, 1)}
    meta = {"format": SHARD_FORMAT, "config": json.dumps(config), "info": json.dumps(info, default=str),
            "shards": str(len(plan))}
    files = []
    for i, keys in enumerate(plan, 1):
        path = out / f"{name}.shard-{i}-of-{len(plan)}.safetensors"
        atomic_write_bytes(path, save({k: state[k] for k in keys}, metadata={**meta, "shard": str(i)}))
        files.append(path.name)
    for stale in returned_files(out):
        m = SHARD_NAME.match(stale.name)
        if m and m["name"] == name and stale.name not in files:
            stale.unlink()
    return {"files": files, "mib": round(need / MiB, 1), "dtype": "float16"}


def merge_shards(folder: Path, name: str, dest: Path) -> Path:
    """Join ``folder``'s shards of ``name`` into one crackrender model file ``dest`` (the format
    ``crackrender segment --checkpoint`` reads). Every shard must be there and the weights must
    fit their architecture, checked before ``dest`` is written."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save

    from crackrender.checkpoint import FORMAT, load_state
    from crackrender.models import create_model

    found = {int(m["i"]): (int(m["n"]), p) for p in sorted(folder.glob(f"{name}.shard-*.safetensors"))
             if (m := SHARD_NAME.match(p.name)) and m["name"] == name}
    if not found:
        raise InputError(f"{folder}: no shards named {name}.shard-<i>-of-<n>.safetensors")
    counts = sorted({n for n, _ in found.values()})
    if len(counts) > 1:
        raise InputError(f"{folder}: shards of {name} from different runs (of {' and of '.join(map(str, counts))})")
    missing = sorted(set(range(1, counts[0] + 1)) - set(found))
    if missing:
        raise InputError(f"{folder}: incomplete shards of {name}: {', '.join(map(str, missing))} of {counts[0]} missing")
    state, config, info = {}, None, "{}"
    for i in sorted(found):
        path = found[i][1]
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != SHARD_FORMAT:
            raise InputError(f"{path}: not a crackrender shard (format {meta.get('format')!r})")
        if config is not None and meta["config"] != config:
            raise InputError(f"{path}: its model config differs from shard 1's")
        config, info = meta["config"], meta.get("info", "{}")
        part = load_file(str(path))
        if set(part) & set(state):
            raise InputError(f"{path}: repeats tensors of an earlier shard")
        state.update(part)
    settings = {**json.loads(config), "pretrained": False}
    load_state(create_model(**settings), state, source=f"{folder}/{name}.shard-*")  # every key, every shape
    return atomic_write_bytes(dest, save(state, metadata={"format": FORMAT, "config": config, "info": info}))


# ---------------------------------------------------------------- stages

def env_record() -> dict:
    """What ran: Python, torch, CUDA, the GPU, the packages the models need, the commit."""
    import importlib.metadata as md

    import torch

    rec = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cuda_available": torch.cuda.is_available(), "host": platform.node(), "cpus": os.cpu_count(),
           "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        rec.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
                   multiprocessors=p.multi_processor_count, bf16_supported=torch.cuda.is_bf16_supported(),
                   cudnn=torch.backends.cudnn.version())
    versions = {}
    for pkg in ("segmentation_models_pytorch", "timm", "torchvision", "pytorch_lightning", "safetensors", "numpy",
                "opencv-python-headless"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    rec["packages"] = versions
    try:
        rec["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                       text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rec["commit"] = None  # the device machine's copy has no .git
    return rec


def stage_record(rc: int, seconds: float, timeout: float | None, log: Path | None) -> dict:
    status = "ok" if rc == 0 else "timeout" if rc in (124, 137) else "skipped" if rc == -1 else "failed"
    rec = {"status": status, "rc": rc, "seconds": round(seconds, 1), "timeout_s": timeout}
    if status in ("failed", "timeout") and log is not None and log.is_file():
        rec["log_tail"] = log.read_text(errors="replace").splitlines()[-15:]
    return rec


def junit_counts(path: Path) -> dict:
    """Counts and the first lines of each failure from a pytest ``--junitxml`` file."""
    import xml.etree.ElementTree as ET

    if not path.is_file():
        return {"error": f"no junit file {path.name}: pytest did not finish"}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    problems, skips = [], []
    for case in root.iter("testcase"):
        label = f"{case.get('classname')}::{case.get('name')}"
        for child in case:
            message = (child.get("message") or child.tag).strip().splitlines()
            if child.tag in ("failure", "error"):
                problems.append(f"{label}: {message[0][:300] if message else child.tag}")
            elif child.tag == "skipped":
                skips.append(f"{label}: {message[0][:200] if message else 'skipped'}")
    counts["problems"], counts["skipped_tests"] = problems, skips
    return counts


def travel_bytes(carry: list[str]) -> dict:
    """What a device call would send: tracked and untracked-not-ignored files, plus ``carry``."""
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    files = [p for p in out.decode().split("\0") if p and (REPO / p).is_file()]
    tree = sum((REPO / p).stat().st_size for p in files)
    # kept training states: part of the tree, never read on the device
    kept = sum((REPO / p).stat().st_size for p in files if p.startswith("checkpoints/"))
    carried = {c: sum(f.stat().st_size for f in (REPO / c).rglob("*") if f.is_file()) for c in carry if (REPO / c).exists()}
    return {"tree_mib": round(tree / MiB, 1), "checkpoints_mib": round(kept / MiB, 1),
            "carried_mib": {k: round(v / MiB, 1) for k, v in carried.items()},
            "total_mib": round((tree + sum(carried.values())) / MiB, 1), "limit_mib": TRAVEL_BYTES // MiB,
            "fits": tree + sum(carried.values()) <= TRAVEL_BYTES}


def travel_hint(rec: dict) -> str:
    """What to leave behind when a device call would carry too much (``rec``: :func:`travel_bytes`)."""
    if rec["checkpoints_mib"] and rec["total_mib"] - rec["checkpoints_mib"] <= rec["limit_mib"]:
        return (f"checkpoints/ ({rec['checkpoints_mib']} MiB, not read on the device) travels with the tree: "
                "move its files out of the checkout for the call; git checkout -- checkpoints brings them back")
    return "make the pack smaller (make_data_pack.py --max-mb)"


# ---------------------------------------------------------------- report.md

def _fmt(value, spec: str = ".2f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def timing_table(timing: dict, baseline: str = "pointrend-unet") -> list[str]:
    lines = ["| model | size | precision | FPS | median s | x PointRend-UNet FPS | peak GPU MiB | "
             "x PointRend-UNet memory | refined points | stages (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for model, sizes in timing.items():
        for size, variants in sizes.items():
            for variant, r in variants.items():
                if "error" in r:
                    lines.append(f"| {model} | {size} | {variant} | error: {r['error'][:120]} | | | | | | |")
                    continue
                base = timing.get(baseline, {}).get(size, {}).get(variant, {})
                fps_x = r["fps"] / base["fps"] if base.get("fps") else None
                mem_x = r["peak_mib"] / base["peak_mib"] if base.get("peak_mib") else None
                stages = ", ".join(f"{k} {v:.3f}" for k, v in r.get("stages_s", {}).items() if k != "total")
                lines.append(f"| {model} | {size} | {variant} | {r['fps']:.2f} | {r['median_s']:.3f} | {_fmt(fps_x)} | "
                             f"{_fmt(r.get('peak_mib'), '.0f')} | {_fmt(mem_x)} | {r.get('refined_points', 0):,} | {stages} |")
    return lines


def train_table(train: dict) -> list[str]:
    lines = ["| model | fit s (with start, val) | steps | images/s | schedule done | val mIoU | crack IoU | F1 | mBA | weights |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in train.items():
        if "error" in r:
            lines.append(f"| {key} | error: {r['error'][:150]} | | | | | | | | |")
            continue
        v = r.get("val", {}).get("all", {})
        w = r.get("weights", {})
        weights = ", ".join(w["files"]) if "files" in w else w.get("not_returned", "-")
        lines.append(f"| {key} | {_fmt(r.get('fit_s'), '.0f')} | {r.get('global_step', 0)} | {_fmt(r.get('images_per_s'), '.1f')} | "
                     f"{_fmt(r.get('schedule_done'), '.0%')} | {_fmt(v.get('miou'), '.3f')} | {_fmt(v.get('iou'), '.3f')} | "
                     f"{_fmt(v.get('dice'), '.3f')} | {_fmt(v.get('mba'), '.3f')} | {weights} |")
    return lines


def render(results: dict) -> str:
    run, env = results.get("run", {}), results.get("env", {})
    lines = [f"# GPU run ({run.get('mode', '?')})", "",
             f"{env.get('gpu') or 'no GPU'}; torch {env.get('torch')} (CUDA {env.get('cuda')}), Python {env.get('python')}, "
             f"commit {env.get('commit') or 'unknown'}; budget {run.get('budget_s')} s, started {run.get('started')}.", "",
             "## Stages", "", "| stage | status | seconds | limit s |", "|---|---|---|---|"]
    for name, s in results.get("stages", {}).items():
        lines.append(f"| {name} | {s['status']} | {s['seconds']} | {_fmt(s.get('timeout_s'), '.0f')} |")
    tests = results.get("tests")
    if tests:
        lines += ["", "## CUDA tests", "", f"files: {', '.join(tests.get('files', []))}; "
                  + ("; ".join(f"{k} {tests[k]}" for k in ("passed", "failures", "errors", "skipped") if k in tests)
                     or tests.get("error", ""))]
        lines += [f"- {p}" for p in tests.get("problems", [])]
    if results.get("timing"):
        lines += ["", "## segment: FPS and peak memory", "",
                  "One process per model and size; median over the timed calls of `Segmenter` (upload, "
                  "model, mask back to the host). Random-init models refine every pixel whose heatmap "
                  "is near 0.5, i.e. nearly all: the refined-point count says how many.", ""]
        lines += timing_table(results["timing"])
    if results.get("train"):
        lines += ["", "## Training from the data pack", "",
                  "Validation: the pack's val images at native size, metrics aggregated over all of them "
                  "(per dataset in results.json).", ""]
        lines += train_table(results["train"])
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- command line

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("env", help="record the machine; with --require-cuda fail without a GPU")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--mode", default="gpu")
    p.add_argument("--budget-s", type=int)
    p.add_argument("--require-cuda", action="store_true")
    p = sub.add_parser("stage", help="record a stage's exit status and time")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("name")
    p.add_argument("rc", type=int)
    p.add_argument("seconds", type=float)
    p.add_argument("--timeout", type=float)
    p.add_argument("--log", type=Path)
    p = sub.add_parser("junit", help="record pytest's junit counts")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("junit", type=Path)
    p.add_argument("files", nargs="*")
    p = sub.add_parser("report", help="render report.md beside results.json")
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--print", action="store_true")
    p = sub.add_parser("travel", help="the size a device call would carry")
    p.add_argument("carry", nargs="*")
    p = sub.add_parser("merge", help="join returned shards into one model file")
    p.add_argument("folder", type=Path)
    p.add_argument("name")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "env":
            rec = env_record()
            update(args.results, "env", value=rec)
            update(args.results, "run", value={"mode": args.mode, "budget_s": args.budget_s, "started": rec["time"]})
            print(f"env: {rec.get('gpu') or 'no GPU'}, torch {rec['torch']}, CUDA {rec['cuda']}, Python {rec['python']}")
            if args.require_cuda and not rec["cuda_available"]:
                raise CrackRenderError("no CUDA device here: a GPU run needs one (on a CPU use --dry-run)")
        elif args.cmd == "stage":
            update(args.results, "stages", args.name, value=stage_record(args.rc, args.seconds, args.timeout, args.log))
        elif args.cmd == "junit":
            update(args.results, "tests", value={"files": args.files, **junit_counts(args.junit)})
        elif args.cmd == "report":
            text = render(load(args.results))
            atomic_write_text(args.results.with_name("report.md"), text)
            if args.print:
                print(text)
        elif args.cmd == "travel":
            rec = travel_bytes(args.carry)
            print(json.dumps(rec))
            if not rec["fits"]:
                raise CrackRenderError(f"a device call would carry {rec['total_mib']} MiB, over its "
                                       f"{rec['limit_mib']} MiB: {travel_hint(rec)}")
        elif args.cmd == "merge":
            print(merge_shards(args.folder, args.name, args.output))
    except CrackRenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
