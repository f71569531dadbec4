"""The ``crackrender`` command line. Each command is a thin layer over a library function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from crackrender.errors import CrackRenderError
from crackrender.io import DEFAULT_MAX_PIXELS
from crackrender.straight_lines import DEFAULT_MIN_LENGTH, check_min_length
from crackrender.tiling import DEFAULT_OVERLAP, DEFAULT_TILE

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-grained crack segmentation and measurement for high-resolution images.")
data_app = typer.Typer(no_args_is_help=True, help="Dataset tools: check a dataset folder, generate synthetic cracks.")
app.add_typer(data_app, name="data")

_MAX_PIXELS_HELP = ("refuse images of more pixels than this, checked from the file header before decoding "
                    "(0: no limit; README.md, 'Large images')")
_TILE_HELP = "images larger than this (px, a multiple of 32) run as overlapping tiles of this size"
_OVERLAP_HELP = "context (px, a multiple of 32) each tile adds around the part of it that is kept"


def _max_pixels(value: int) -> int | None:
    if value < 0:
        raise CrackRenderError(f"--max-pixels must be 0 (no limit) or more, got {value}")
    return value or None


@data_app.command("check")
def data_check(root: Annotated[Path, typer.Argument(help="dataset folder with images/, masks/ and split lists")],
               quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False):
    """Validate every image/mask pair; print counts per split, sizes, crack share and every bad file."""
    from crackrender.data.check import check_dataset

    report = check_dataset(root, progress=not quiet)
    typer.echo(report.format())
    raise typer.Exit(0 if report.ok else 1)


@data_app.command("synth")
def data_synth(out: Annotated[Path, typer.Argument(help="folder to write images/, masks/, train.txt, val.txt")],
               n: Annotated[int, typer.Option(help="number of images")] = 16,
               width: Annotated[int, typer.Option(help="image width")] = 512,
               height: Annotated[int, typer.Option(help="image height")] = 384,
               seed: Annotated[int, typer.Option(help="random seed")] = 0,
               surface: Annotated[str, typer.Option(help="concrete or asphalt")] = "concrete",
               distractors: Annotated[str, typer.Option(help="hard negatives drawn as background: all, none, or family names, comma-separated (paint_lines, sawn_joints, shadow_edges, ...)")] = "none",
               negatives: Annotated[float, typer.Option(help="share of scenes without cracks, 0-1")] = 0.0,
               crack_widths: Annotated[str, typer.Option(help="LOW,HIGH: the range random crack widths are drawn from, in px (0.5-64)")] = "1,8"):
    """Write a synthetic crack dataset with exact masks, in the project's dataset layout
    (with --distractors also distractors/<stem>.png, the distractor pixels)."""
    from crackrender.data.synthetic import write_synthetic_dataset

    if n < 1:
        raise CrackRenderError(f"--n must be at least 1, got {n}")
    try:
        low, high = (float(v) for v in crack_widths.split(","))
    except ValueError:
        raise CrackRenderError(f"--crack-widths must be LOW,HIGH in px, e.g. 1,8; got {crack_widths!r}") from None
    try:
        root = write_synthetic_dataset(out, n, size=(width, height), seed=seed, surface=surface,
                                       distractors=distractors, negatives=negatives, width_range=(low, high))
    except ValueError as exc:
        raise CrackRenderError(str(exc)) from None
    typer.echo(f"wrote {n} synthetic image/mask pairs to {root}")


@data_app.command("falsealarm")
def data_falsealarm(out: Annotated[Path, typer.Argument(help="folder to write images/, masks/, distractors/, test.txt")],
                    n: Annotated[int, typer.Option(help="number of scenes (half with cracks)")] = 60,
                    width: Annotated[int, typer.Option(help="image width")] = 1920,
                    height: Annotated[int, typer.Option(help="image height")] = 1080,
                    seed: Annotated[int, typer.Option(help="random seed")] = 0):
    """Write the false-alarm benchmark: scenes full of distractors (paint, joints, shadows...), half
    with cracks. Score a model with `segment OUT --split test` then `evaluate ... --distractors OUT/distractors`."""
    from crackrender.data.synthetic import write_false_alarm_set

    if n < 1:
        raise CrackRenderError(f"--n must be at least 1, got {n}")
    try:
        root = write_false_alarm_set(out, n, size=(width, height), seed=seed)
    except ValueError as exc:
        raise CrackRenderError(str(exc)) from None
    typer.echo(f"wrote {n} false-alarm scenes ({(n + 1) // 2} with cracks) to {root}")


@app.command("evaluate")
def evaluate(pred: Annotated[Path, typer.Argument(help="folder of predicted masks or 8-bit probability maps")],
             gt: Annotated[Path, typer.Argument(help="folder of ground-truth masks")],
             json_path: Annotated[Optional[Path], typer.Option("--json", help="write the full result as JSON")] = None,
             threshold: Annotated[float, typer.Option(help="threshold for probability maps")] = 0.5,
             boundary_d: Annotated[Optional[int], typer.Option(help="Boundary IoU band width in px (default: 0.5% of the diagonal)")] = None,
             distractors: Annotated[Optional[Path], typer.Option("--distractors", help="folder of distractor masks by stem (false-alarm benchmark): also report the share of distractor pixels predicted crack and false-positive px per megapixel")] = None,
             max_pixels: Annotated[int, typer.Option("--max-pixels", help=_MAX_PIXELS_HELP)] = DEFAULT_MAX_PIXELS,
             quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False):
    """Score predictions against ground truth: IoU, mIoU, F1, precision, recall, mBA, Boundary IoU, ODS/OIS
    (and false alarms on distractors with --distractors)."""
    from crackrender.evaluate import evaluate_folders, format_table
    from crackrender.io import atomic_write_json

    if not 0.0 < threshold < 1.0:
        raise CrackRenderError(f"--threshold must lie in (0, 1), got {threshold}")
    result = evaluate_folders(pred, gt, threshold=threshold, boundary_d=boundary_d, progress=not quiet,
                              distractors_dir=distractors, max_pixels=_max_pixels(max_pixels))
    typer.echo(format_table(result))
    if json_path is not None:
        atomic_write_json(json_path, result)
        typer.echo(f"wrote {json_path}")


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise CrackRenderError(f"expected comma-separated numbers, got {text!r}") from None


@app.command("quantify")
def quantify(masks: Annotated[list[Path], typer.Argument(help="binary crack masks: files and/or folders")],
             out: Annotated[Path, typer.Option("--out", help="folder for the reports")],
             image: Annotated[Optional[Path], typer.Option(help="the photo for one mask, or a folder of photos matched by stem")] = None,
             gsd: Annotated[Optional[float], typer.Option(help="ground sampling distance, mm per pixel")] = None,
             focal_mm: Annotated[Optional[float], typer.Option(help="camera focal length, mm (with --pixel-um and --distance-mm)")] = None,
             pixel_um: Annotated[Optional[float], typer.Option(help="sensor pixel pitch, micrometres")] = None,
             distance_mm: Annotated[Optional[float], typer.Option(help="distance from camera to surface, mm")] = None,
             axis_deg: Annotated[float, typer.Option(help="member axis angle in degrees from image x (for longitudinal/transverse)")] = 0.0,
             width_bins: Annotated[str, typer.Option(help="width class limits in mm, comma-separated")] = "0.1,0.2,0.3",
             min_length: Annotated[float, typer.Option(help="ignore cracks shorter than this, px")] = 10.0,
             quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False):
    """Measure cracks in binary masks: length, width profile, orientation, width classes; JSON, CSV, GeoJSON, overlay, HTML."""
    from crackrender.quantify import run_quantify

    camera = None
    if any(v is not None for v in (focal_mm, pixel_um, distance_mm)):
        camera = (focal_mm, pixel_um, distance_mm)
    results = run_quantify(masks, out, image=image, gsd=gsd, camera=camera, member_axis_deg=axis_deg,
                           width_bins_mm=_float_list(width_bins), min_length_px=min_length, progress=not quiet)
    for stem, result in results.items():
        s = result.summary()
        unit = s["units"]
        typer.echo(f"{stem}: {s['count']} crack(s), {s['branches']} branch(es), total length {s['total_length']:.1f} {unit}, "
                   f"max width {s['max_width']:.2f} {unit}, {s['below_resolution']} below resolution")
    typer.echo(f"wrote reports to {out}")


@app.command("train")
def train(config: Annotated[Path, typer.Argument(help="experiment YAML (see configs/)")],
          overrides: Annotated[Optional[list[str]], typer.Argument(help="key.sub=value overrides, e.g. trainer.max_epochs=5")] = None,
          resume: Annotated[bool, typer.Option("--resume", help="continue the run from its last checkpoint")] = False,
          overwrite: Annotated[bool, typer.Option("--overwrite", help="start afresh, replacing an earlier run of this name")] = False,
          out: Annotated[Optional[Path], typer.Option("--out", help="parent folder of the run (default: the config's out)")] = None):
    """Train a model as an experiment config says; checkpoints, logs and safetensors models go to OUT/NAME."""
    from crackrender.train.config import load_config
    from crackrender.train.run import run_training

    cfg = load_config(config, overrides or [])
    if resume and overwrite:
        raise CrackRenderError("--resume and --overwrite exclude each other")
    folder = run_training(cfg, resume=resume, overwrite=overwrite, out=out)
    typer.echo(f"run folder: {folder}")


@app.command("segment")
def segment(inputs: Annotated[list[Path], typer.Argument(help="images and/or folders of images")],
            out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("crackrender-out"),
            checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="model file (.safetensors, or a training .ckpt); default: the shipped model (MODEL.md)")] = None,
            prob: Annotated[bool, typer.Option("--prob", help="also write <stem>_prob.png (8-bit probability)")] = False,
            overlay: Annotated[bool, typer.Option("--overlay", help="also write <stem>_overlay.jpg")] = False,
            quantify: Annotated[bool, typer.Option("--quantify", help="also measure the cracks (reports in OUT/quantify)")] = False,
            gsd: Annotated[Optional[float], typer.Option(help="mm per pixel for --quantify")] = None,
            alpha: Annotated[Optional[float], typer.Option(help="lower probability of the band the point head re-predicts")] = None,
            beta: Annotated[Optional[float], typer.Option(help="upper probability of that band")] = None,
            device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
            bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 autocast (fast on CPUs with AMX)")] = False,
            split: Annotated[Optional[str], typer.Option(help="inputs are dataset folders: segment the images their SPLIT.txt lists")] = None,
            threshold: Annotated[Optional[float], typer.Option(help="crack where p >= THRESHOLD; default: the model file's own (crackrender calibrate), else 0.5")] = None,
            tile: Annotated[int, typer.Option(help=_TILE_HELP)] = DEFAULT_TILE,
            overlap: Annotated[int, typer.Option(help=_OVERLAP_HELP)] = DEFAULT_OVERLAP,
            straight_lines: Annotated[int, typer.Option("--straight-lines", help="drop crack along straight lines at least this long (px): joints, paint and shadow edges; 0 keeps them (MODEL.md)")] = DEFAULT_MIN_LENGTH,
            flips: Annotated[int, typer.Option("--flips", help="average the probability over 1, 2, 4 or 8 flipped views of each tile (each view one more model pass; MODEL.md, 'Test-time views')")] = 1,
            scales: Annotated[str, typer.Option("--scales", help="and over the tile resized by each of these factors, e.g. 0.75,1,1.25 (a view at scale s costs about s^2 passes)")] = "1",
            max_pixels: Annotated[int, typer.Option("--max-pixels", help=_MAX_PIXELS_HELP)] = DEFAULT_MAX_PIXELS,
            resume: Annotated[bool, typer.Option("--resume", help="skip images whose outputs in OUT are complete (their sidecar lists them, same model and settings, input unchanged)")] = False,
            backend: Annotated[str, typer.Option(help="torch, or onnxruntime to run an exported --checkpoint MODEL.onnx (crackrender export; docs/deploy.md)")] = "torch",
            quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False):
    """Segment whole images at native resolution: <stem>.png masks and <stem>.json sidecars in OUT
    (GeoTIFFs and very large TIFFs: <stem>.tif GeoTIFF masks, read and written window by window)."""
    from crackrender.segment import segment_paths

    if gsd is not None and not quantify:
        raise CrackRenderError("--gsd only applies with --quantify")
    sidecars = segment_paths(inputs, checkpoint, out, device=device, bf16=bf16, alpha=alpha, beta=beta,
                             save_prob=prob, save_overlay=overlay, quantify=quantify, quantify_gsd=gsd,
                             split=split, progress=not quiet, threshold=threshold, resume=resume,
                             tile=tile, overlap=overlap, straight_lines=straight_lines, flips=flips,
                             scales=scales, max_pixels=_max_pixels(max_pixels), backend=backend)
    for stem, s in sidecars.items():
        typer.echo(f"{stem}: {s['width']}x{s['height']}, {s['crack_pixels']} crack px, "
                   f"{s['refined_points']} points refined, {s['timings_s']['total']:.2f} s"
                   + (" (complete before: skipped)" if s.get("resumed") else ""))
    resumed = sum(bool(s.get("resumed")) for s in sidecars.values())
    typer.echo(f"wrote {len(sidecars) - resumed} mask(s) to {out}" + (f", {resumed} complete before" if resumed else ""))


@app.command("export")
def export(paths: Annotated[list[Path], typer.Argument(help="[MODEL] OUT.onnx: the model file (default: the shipped model) and the ONNX file to write")],
           int8: Annotated[bool, typer.Option("--int8", help="quantise the network to INT8, calibrated on --calibration; measured on v1: -0.07 pt crack IoU on DeepCrack537, 1.2-1.4x faster than float32 (docs/deploy.md)")] = False,
           calibration: Annotated[Optional[list[Path]], typer.Option("--calibration", help="with --int8: a dataset folder (its train split) or a folder of images; repeatable")] = None,
           calibration_images: Annotated[int, typer.Option(help="with --int8: this many calibration images, evenly spaced")] = 32,
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False):
    """Export a CBPRN model to ONNX: OUT.onnx (the network) and OUT.points.onnx (the point head);
    run them with `segment --backend onnxruntime --checkpoint OUT.onnx`."""
    from crackrender.deploy import export_onnx

    if len(paths) > 2:
        raise CrackRenderError(f"expected [MODEL] OUT.onnx, got {len(paths)} paths")
    model, out = (None, paths[0]) if len(paths) == 1 else paths
    if calibration and not int8:
        raise CrackRenderError("--calibration only applies with --int8")
    network, points = export_onnx(model, out, int8=int8, calibration=calibration, calibration_images=calibration_images,
                                  progress=not quiet)
    typer.echo(f"wrote {network} and {points}")


@app.command("calibrate")
def calibrate(out: Annotated[Path, typer.Argument(help="model file to write: the model with its threshold")],
              val: Annotated[list[str], typer.Option("--val", help="DATASET_DIR[:SPLIT] (split default val), repeatable")],
              checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="model file; default: the shipped model")] = None,
              limit: Annotated[Optional[int], typer.Option(help="at most this many images per split, evenly spaced")] = None,
              device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
              flips: Annotated[int, typer.Option("--flips", help="choose it for segment with these test-time flips (recorded for them only)")] = 1,
              scales: Annotated[str, typer.Option("--scales", help="and these scales, e.g. 0.75,1,1.25")] = "1",
              straight_lines: Annotated[int, typer.Option("--straight-lines", help="choose it for segment with this straight-line filter (px; 0: off)")] = DEFAULT_MIN_LENGTH,
              quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False):
    """Choose a model's decision threshold on validation splits (the one maximising the mean F1
    over datasets of segment's output, straight-line filter included) and write the model with it:
    segment, demo and the Python API then use it. With --flips/--scales it is chosen for those
    test-time views and used whenever they are."""
    from crackrender.test_time_views import check_flips, check_scales
    from crackrender.threshold import calibrate as run_calibration

    flips, scale_list = check_flips(flips), check_scales(scales)  # bad settings before any folder is looked at
    check_min_length(straight_lines)
    splits = []
    for spec in val:
        root, _, split = spec.partition(":") if not Path(spec).is_dir() else (spec, "", "")
        if not Path(root).is_dir():
            raise CrackRenderError(f"--val {spec}: no dataset folder {root}")
        splits.append((Path(root), split or "val"))
    record = run_calibration(checkpoint, splits, out, limit=limit, device=device, progress=not quiet,
                             flips=flips, scales=scale_list, straight_lines=straight_lines)
    per = ", ".join(f"{k} {v:.3f}" for k, v in record["threshold_val_f1"].items())
    at_half = ", ".join(f"{k} {v:.3f}" for k, v in record["threshold_f1_at_0.5"].items())
    typer.echo(f"threshold {record['threshold']:.3f} for {record['views']} ({record['threshold_rule']})")
    typer.echo(f"val F1 there: {per}; at 0.5: {at_half}")
    if "threshold_before_filter" in record:
        typer.echo(f"before the filter the rule chose {record['threshold_before_filter']:.3f}")
    typer.echo(f"wrote {out}")


@app.command("average")
def average(out: Annotated[Path, typer.Argument(help="model file to write")],
            models: Annotated[list[Path], typer.Argument(help="two or more model files of one architecture")],
            half: Annotated[bool, typer.Option("--half", help="store float16 weights (half the size)")] = False):
    """Write the even mean of several models' weights (e.g. a fine-tuned model and its start);
    calibrate the result's threshold afterwards."""
    from crackrender.averaging import average_models

    if out.resolve() in {m.resolve() for m in models}:
        raise CrackRenderError(f"{out} is one of the models to average: write the mean to another file")
    average_models(models, out, half=half)
    typer.echo(f"wrote {out}: the mean of {len(models)} models (no threshold: run crackrender calibrate on it)")


@app.command("demo")
def demo(out: Annotated[Path, typer.Option("--out", help="output folder")] = Path("crackrender-demo"),
         width: Annotated[int, typer.Option(help="scene width in pixels")] = 2048,
         height: Annotated[int, typer.Option(help="scene height in pixels")] = 1536,
         seed: Annotated[int, typer.Option(help="scene seed (same seed, same scene)")] = 0,
         surface: Annotated[str, typer.Option(help="concrete or asphalt")] = "concrete",
         gsd: Annotated[float, typer.Option(help="mm per pixel of the imagined camera")] = 0.2,
         checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", "-c", help="model file; default: the shipped model")] = None,
         device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
         tile: Annotated[int, typer.Option(help=_TILE_HELP)] = DEFAULT_TILE,
         overlap: Annotated[int, typer.Option(help=_OVERLAP_HELP)] = DEFAULT_OVERLAP,
         max_pixels: Annotated[int, typer.Option("--max-pixels", help=_MAX_PIXELS_HELP)] = DEFAULT_MAX_PIXELS):
    """Render a synthetic high-resolution crack scene, segment it with the shipped model, measure
    the cracks in mm and score the mask against the scene's exact ground truth."""
    from crackrender.demo import run_demo

    typer.echo(f"rendering a {width}x{height} {surface} scene and segmenting it ...")
    s = run_demo(out, width=width, height=height, seed=seed, surface=surface, gsd=gsd, checkpoint=checkpoint,
                 device=device, tile=tile, overlap=overlap, max_pixels=_max_pixels(max_pixels))
    a, m = s["accuracy"], s["measured"] or {}
    typer.echo(f"segmented in {s['segment']['timings_s']['total']:.2f} s on {s['segment']['device']}, "
               f"{s['segment']['refined_points']} boundary points re-rendered")
    typer.echo(f"against the exact truth: crack IoU {a['iou']:.3f}, mIoU {a['miou']:.3f}, Dice {a['f1']:.3f}, mBA {a['mba']:.3f}")
    if m:
        typer.echo(f"measured {m.get('count', '?')} crack(s), total length {m.get('total_length', float('nan')):.1f} mm, "
                   f"max width {m.get('max_width', float('nan')):.2f} mm")
    typer.echo(f"wrote {out}/: scene_overlay.jpg (mask on photo), scene_errors.png (green hit, red false, "
               f"blue missed), quantify/scene_report.html, demo.json")


@app.command("tables")
def tables(table: Annotated[int, typer.Argument(help="the paper's table: 1, 2 or 3")],
           quick: Annotated[bool, typer.Option("--quick", help="tiny models, a few steps, few images: minutes on a CPU")] = False,
           out: Annotated[Path, typer.Option("--out", help="folder for runs/, tableN.md and tableN.json")] = Path("paper_runs"),
           data: Annotated[str, typer.Option(help="shared (../shared/data) or synthetic (generated under OUT)")] = "shared",
           data_root: Annotated[Optional[Path], typer.Option(help="folder holding cfd/, deepcrack537/, crack500/ (default ../shared/data)")] = None,
           long_edge: Annotated[Optional[int], typer.Option(help="Table 3: PointRend's coarse nets see images scaled to this long edge (default 900; 0: off)")] = None,
           rows: Annotated[Optional[list[str]], typer.Option("--rows", help="only these rows (keys or set numbers, comma-separated or repeated)")] = None,
           retrain: Annotated[bool, typer.Option("--retrain", help="train every selected row afresh instead of reusing finished runs")] = False,
           device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False):
    """Reproduce one of the paper's tables: train (or reuse), evaluate and time every row; write OUT/tableN.md beside the paper's numbers."""
    from crackrender.paper.runner import command_line, run_table

    keys = [k.strip() for item in rows or [] for k in item.split(",") if k.strip()]
    run_table(table, quick=quick, out=out, data=data, data_root=data_root, long_edge=long_edge, rows=keys,
              retrain=retrain, device=device, command=command_line(), progress=not quiet)
    typer.echo(f"wrote {out / f'table{table}.md'}")


def main() -> None:
    """Entry point: a user error prints one line and exits with status 2, never a traceback."""
    try:
        # non-standalone mode returns the code of a typer.Exit instead of raising it
        code = app(standalone_mode=False)
    except CrackRenderError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except OSError as exc:
        # the file system refused (an output path under a file, no permission, a full disk): that is
        # the user's to fix, so one line, as for other bad input
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        # usage errors from typer's bundled click arrive here in non-standalone mode
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
