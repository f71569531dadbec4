"""`segment` on folders: decoding and writing overlap the model (prefetch) without changing a
byte of the output, and --resume skips exactly the images whose outputs are complete."""

import json
import os
import subprocess
import sys

import pytest

from crackrender.data.synthetic import render_crack_scene
from crackrender.errors import InputError
from crackrender.io import write_image
from crackrender.segment import segment_paths

STEMS = ("p0", "p1", "p2")


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    for i, stem in enumerate(STEMS):
        write_image(folder / f"{stem}.jpg", render_crack_scene(64 + 8 * i, 48, seed=i).image)
    return folder


def run(model_file, photos, out, **kw):
    kw.setdefault("threshold", 0.45)  # an untrained model: below its probabilities, so cracks to measure
    return segment_paths([photos], model_file, out, device="cpu", progress=False, **kw)


def stamps(out):
    """mtime of every output file (the summary, rewritten each run, aside)."""
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*")
            if p.is_file() and not p.name.startswith("summary.")}


def without_timings(side: dict) -> dict:
    return {k: v for k, v in side.items() if k not in ("timings_s", "resumed")}


def test_prefetch_writes_the_same_files_as_one_at_a_time(model_file, photos, tmp_path):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 truncated")  # an unreadable image in the middle
    outs = {}
    for prefetch in (0, 2):
        out = outs[prefetch] = tmp_path / f"out{prefetch}"
        with pytest.raises(InputError, match="1 of 4 images could not be read"):
            run(model_file, photos, out, prefetch=prefetch, save_prob=True, save_overlay=True, quantify=True)
    files = sorted(p.relative_to(outs[0]).as_posix() for p in outs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(outs[2]).as_posix() for p in outs[2].rglob("*") if p.is_file())
    assert {f"{s}{suffix}" for s in STEMS for suffix in (".png", "_prob.png", "_overlay.jpg", ".json")} <= set(files)
    assert not any(f.startswith("broken") for f in files)
    for stem in STEMS:
        for name in (f"{stem}.png", f"{stem}_prob.png"):
            assert (outs[0] / name).read_bytes() == (outs[2] / name).read_bytes(), name
        sides = [json.loads((o / f"{stem}.json").read_text()) for o in outs.values()]
        assert without_timings(sides[0]) == without_timings(sides[1])
    summary = json.loads((outs[2] / "quantify" / "summary.json").read_text())
    assert [e["stem"] for e in summary["images"]] == list(STEMS)  # input order, whatever the threads did


def test_resume_skips_complete_images_and_redoes_the_rest(model_file, photos, tmp_path):
    out = tmp_path / "out"
    first = run(model_file, photos, out, quantify=True)
    before = stamps(out)
    again = run(model_file, photos, out, quantify=True, resume=True)
    assert all(side["resumed"] for side in again.values()) and list(again) == list(STEMS)
    assert stamps(out) == before  # nothing rewritten
    assert {k: without_timings(v) for k, v in again.items()} == {k: without_timings(v) for k, v in first.items()}
    summary = json.loads((out / "quantify" / "summary.json").read_text())
    assert [e["stem"] for e in summary["images"]] == list(STEMS)  # resumed images are measured too

    # interrupted before p1's sidecar; p2's mask lost; p0's photo changed since: those three redone
    (out / "p1.json").unlink()
    (out / "p2.png").unlink()
    earlier = (photos / "p0.jpg").stat().st_mtime - 60  # the photo is newer than its sidecar
    os.utime(out / "p0.json", (earlier, earlier))
    again = run(model_file, photos, out, quantify=True, resume=True)
    assert not any(side.get("resumed") for side in again.values())
    assert (out / "p1.json").is_file() and (out / "p2.png").is_file()

    # a half-written sidecar (never from us: they are atomic, but a copy can break one) is redone
    before = stamps(out)
    (out / "p1.json").write_text('{"image": ')
    again = run(model_file, photos, out, quantify=True, resume=True)
    assert [s for s, side in again.items() if not side.get("resumed")] == ["p1"]
    changed = {k for k, t in stamps(out).items() if before[k] != t}
    assert changed == {"p1.png", "p1.json", *(f"quantify/p1{x}" for x in (
        ".json", "_cracks.csv", "_branches.csv", ".geojson", "_overlay.png", "_report.html"))}


@pytest.mark.parametrize("change", [dict(threshold=0.46), dict(save_prob=True), dict(quantify=True, quantify_gsd=0.2),
                                    dict(alpha=0.2), dict(straight_lines=0), dict(flips=2),
                                    dict(scales=(1.0, 1.25))])
def test_resume_redoes_images_made_with_other_settings(model_file, photos, tmp_path, change):
    out = tmp_path / "out"
    run(model_file, photos, out, quantify=True)
    again = run(model_file, photos, out, resume=True, **{"quantify": True, **change})
    assert not any(side.get("resumed") for side in again.values())


def test_resume_takes_sidecars_written_before_test_time_views_existed(model_file, photos, tmp_path):
    out = tmp_path / "out"
    run(model_file, photos, out)
    for stem in STEMS:  # as segment wrote them before --flips and --scales: neither field
        path = out / f"{stem}.json"
        side = json.loads(path.read_text())
        del side["flips"], side["scales"]
        path.write_text(json.dumps(side))
        os.utime(path)
    assert all(side["resumed"] for side in run(model_file, photos, out, resume=True).values())
    assert not any(side.get("resumed") for side in run(model_file, photos, out, resume=True, flips=4).values())


def test_a_run_stopped_half_way_leaves_no_sidecar_vouching_for_replaced_files(model_file, photos, tmp_path,
                                                                                monkeypatch):
    import crackrender.segment as segment

    out = tmp_path / "out"
    run(model_file, photos, out)

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(segment, "atomic_write_json", crash)  # p0's new mask written, its sidecar not
    with pytest.raises(OSError, match="disk full"):
        run(model_file, photos, out, threshold=0.46)
    monkeypatch.undo()
    again = run(model_file, photos, out, resume=True)  # the first run's settings again
    assert not again["p0"].get("resumed")  # p0.png is the stopped run's: redone
    assert again["p1"]["resumed"] and again["p2"]["resumed"]


def test_resume_needs_the_same_input_file(model_file, photos, tmp_path):
    out = tmp_path / "out"
    run(model_file, photos, out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "p0.jpg").write_bytes((photos / "p1.jpg").read_bytes())  # same stem, another photo
    again = segment_paths([other], model_file, out, device="cpu", progress=False, threshold=0.45, resume=True)
    assert not again["p0"].get("resumed")


def test_a_failed_write_is_reported_not_lost(model_file, photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "quantify").write_text("a file where the reports go")
    with pytest.raises(OSError):
        run(model_file, photos, out, quantify=True)  # raised from the writing thread
    assert not (out / "p0.json").exists()  # no sidecar claims a complete image


def test_cli_resume(model_file, photos, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "crackrender.cli", "segment", str(photos), "-c", str(model_file), "--out", str(out), "-q"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "wrote 0 mask(s)" in again.stdout and "3 complete before" in again.stdout
