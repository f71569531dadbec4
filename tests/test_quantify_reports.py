"""Crack quantification's outputs: the report files, run_quantify over folders, and bad input."""

from __future__ import annotations

import csv
import json
import os

import cv2
import numpy as np
import pytest

from crackrender.errors import InputError
from crackrender.quantify import quantify_mask, run_quantify, write_report
from crackrender.quantify import shapes

REPORT_FILES = ("{s}.json", "{s}_cracks.csv", "{s}_branches.csv", "{s}.geojson", "{s}_overlay.png", "{s}_report.html")


# ------------------------------------------------------------------ reports


def test_write_report_files(tmp_path):
    mask, _ = shapes.branching(6, arm=80)
    image = np.full(mask.shape + (3,), 170, np.uint8)
    image[mask] = 60
    r = quantify_mask(mask, gsd=0.05)
    paths = write_report(r, tmp_path, "y", image=image)
    for name in REPORT_FILES:
        assert (tmp_path / name.format(s="y")).is_file()
    assert paths["html"] == tmp_path / "y_report.html"
    data = json.loads((tmp_path / "y.json").read_text())
    assert data["summary"]["count"] == 1 and data["summary"]["branches"] == 3
    assert data["cracks"][0]["width_class"] == ">=0.3"
    rows = list(csv.DictReader((tmp_path / "y_cracks.csv").open()))
    assert len(rows) == 1 and float(rows[0]["length_mm"]) == pytest.approx(data["cracks"][0]["length_mm"])
    assert float(rows[0]["width_resolution_mm"]) == 0.05 and data["cracks"][0]["width_resolution_px"] == 1.0
    assert len(list(csv.DictReader((tmp_path / "y_branches.csv").open()))) == 3
    gj = json.loads((tmp_path / "y.geojson").read_text())
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == 3
    f = gj["features"][0]
    assert f["geometry"]["type"] == "LineString" and len(f["geometry"]["coordinates"]) >= 2
    assert {"id", "length", "width", "crack_id"} <= set(f["properties"])
    ov = cv2.imread(str(tmp_path / "y_overlay.png"))[..., ::-1]
    assert ov.shape == image.shape
    assert np.abs(ov[mask].astype(int) - image[mask]).mean() > 30  # crack pixels tinted
    far = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
    assert (ov[far] == image[far]).all(axis=1).mean() > 0.99  # background untouched but for the id label
    html = (tmp_path / "y_report.html").read_text()
    assert "data:image/png;base64," in html and "<svg" in html and "0.05 mm/px" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained
    assert oct(os.stat(tmp_path / "y.json").st_mode & 0o777) != "0o600"


def test_crack_free_mask_gives_empty_valid_report(tmp_path):
    mask = np.zeros((64, 80), bool)
    r = quantify_mask(mask, gsd=0.1)
    assert r.cracks == [] and r.summary()["count"] == 0 and r.summary()["total_length"] == 0
    write_report(r, tmp_path, "empty")
    for name in REPORT_FILES:
        assert (tmp_path / name.format(s="empty")).is_file()
    data = json.loads((tmp_path / "empty.json").read_text())
    assert data["cracks"] == [] and data["summary"]["count"] == 0
    assert json.loads((tmp_path / "empty.geojson").read_text())["features"] == []
    assert "No cracks found" in (tmp_path / "empty_report.html").read_text()


def _write_masks(folder, masks: dict):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, m in masks.items():
        cv2.imwrite(str(folder / f"{stem}.png"), m.astype(np.uint8) * 255)


def test_run_quantify_folder_with_images_and_summary(tmp_path):
    a, _ = shapes.straight(6, 150, 10)
    b = np.zeros((80, 90), bool)
    _write_masks(tmp_path / "masks", {"a": a, "b": b})
    (tmp_path / "images").mkdir()
    for stem, m in {"a": a, "b": b}.items():
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.jpg"), np.full(m.shape + (3,), 150, np.uint8))
    res = run_quantify([tmp_path / "masks"], tmp_path / "out", image=tmp_path / "images", gsd=0.1, progress=False)
    assert list(res) == ["a", "b"] and len(res["a"].cracks) == 1 and res["b"].cracks == []
    for stem in ("a", "b"):
        for name in REPORT_FILES:
            assert (tmp_path / "out" / name.format(s=stem)).is_file()
    summ = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summ["totals"]["images"] == 2 and summ["totals"]["cracks"] == 1 and summ["units"] == "mm"
    assert "a_report.html" in (tmp_path / "out" / "summary.html").read_text()
    # a single mask: no summary; camera data instead of a GSD
    res = run_quantify([tmp_path / "masks" / "a.png"], tmp_path / "one", camera=(50, 4.0, 2000), progress=False)
    assert res["a"].gsd_mm == pytest.approx(0.16) and not (tmp_path / "one" / "summary.json").exists()


# ------------------------------------------------------------------ bad input


def test_bad_mask_arrays():
    with pytest.raises(InputError, match="not a binary mask"):
        quantify_mask(np.arange(100, dtype=np.uint8).reshape(10, 10))
    with pytest.raises(InputError, match="2-D"):
        quantify_mask(np.zeros((4, 4, 4, 4)))
    for bad in (-0.1, 0, float("nan"), "abc"):
        with pytest.raises(InputError, match="GSD"):
            quantify_mask(np.zeros((8, 8), bool), gsd=bad)
    with pytest.raises(InputError, match="member axis"):
        quantify_mask(np.zeros((8, 8), bool), member_axis_deg=float("inf"))


def test_bad_inputs_to_run(tmp_path):
    a, _ = shapes.straight(4, 60, 0)
    _write_masks(tmp_path / "masks", {"a": a, "b": a})
    out = tmp_path / "out"
    with pytest.raises(InputError, match="no such file or folder"):
        run_quantify([tmp_path / "nope.png"], out, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no masks found in folder"):
        run_quantify([tmp_path / "empty"], out, progress=False)
    with pytest.raises(InputError, match="GSD"):
        run_quantify([tmp_path / "masks"], out, gsd=-1, progress=False)
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(InputError, match="junk.png"):
        run_quantify([tmp_path / "junk.png"], out, progress=False)
    grey = tmp_path / "grey"
    grey.mkdir()
    cv2.imwrite(str(grey / "g.png"), np.arange(64 * 64, dtype=np.uint16).reshape(64, 64).astype(np.uint8))
    with pytest.raises(InputError, match="not a binary mask"):
        run_quantify([grey / "g.png"], out, progress=False)
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="does not match|is 10x10"):
        run_quantify([tmp_path / "masks" / "a.png"], out, image=big, progress=False)
    with pytest.raises(InputError, match="one image given for 2 masks"):
        run_quantify([tmp_path / "masks"], out, image=big, progress=False)
    with pytest.raises(InputError, match="no image named"):
        run_quantify([tmp_path / "masks"], out, image=grey, progress=False)
    with pytest.raises(InputError, match="share the stem"):
        run_quantify([tmp_path / "masks", tmp_path / "masks" / "a.png"], out, progress=False)
    with pytest.raises(InputError):
        write_report(quantify_mask(a), out, "x", image=np.zeros((5, 5, 3), np.uint8))
    assert not out.exists()  # nothing was written by any failed call


def test_failed_run_leaves_earlier_outputs_untouched(tmp_path):
    a, _ = shapes.straight(4, 60, 0)
    _write_masks(tmp_path / "masks", {"a": a})
    out = tmp_path / "out"
    run_quantify([tmp_path / "masks" / "a.png"], out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (tmp_path / "masks" / "z.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(InputError, match="z.png"):
        run_quantify([tmp_path / "masks"], out, gsd=0.1, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no partial or temporary files


def test_real_mask_if_available():
    from conftest import shared_dataset

    from crackrender.io import read_mask

    root = shared_dataset("deepcrack537")
    stem = (root / "test.txt").read_text().split()[0]
    r = quantify_mask(read_mask(root / "masks" / f"{stem}.png"), gsd=0.1)
    assert r.cracks and all(c.length_px >= r.min_length_px for c in r.cracks)
    json.dumps(r.to_dict())
