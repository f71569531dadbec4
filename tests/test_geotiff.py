"""GeoTIFF in and out: windowed reading, tiled GeoTIFF masks with the input's CRS and transform,
and quantify on georeferenced masks (pixel size as GSD, GeoJSON in the raster's CRS)."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from rasterio import Affine  # noqa: E402

from crackrender.data.synthetic import render_crack_scene  # noqa: E402
from crackrender.errors import InputError  # noqa: E402
from crackrender.geotiff import Georef, RasterReader, RasterWriter, segment_raster, takes_windowed_path  # noqa: E402
from crackrender.segment import Segmenter  # noqa: E402
from crackrender.tiling import Window  # noqa: E402

UTM = "EPSG:32633"
# 0.5 mm pixels somewhere in UTM zone 33N: a bridge deck's orthomosaic
TRANSFORM = Affine(0.0005, 0.0, 500000.0, 0.0, -0.0005, 4500000.0)


def write_raster(path, bands: np.ndarray, crs=UTM, transform=TRANSFORM, **extra):
    """bands: (count, h, w); crs=None and transform=None make a plain TIFF."""
    profile = dict(driver="GTiff", count=bands.shape[0], height=bands.shape[1], width=bands.shape[2],
                   dtype=bands.dtype, **extra)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # plain TIFFs on purpose
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(bands)
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def scene():
    return render_crack_scene(300, 200, seed=1).image  # (200, 300, 3)


# ------------------------------------------------------------------ reading


def test_reader_gives_rgb_windows_for_every_band_layout(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    win = Window(5, 7, 20, 30)
    expect = np.moveaxis(rgb, 0, -1)[win.slices]
    with RasterReader(write_raster(tmp_path / "rgb.tif", rgb)) as r:
        assert (r.height, r.width) == (40, 50) and r.all_valid
        np.testing.assert_array_equal(r(win), expect)
    alpha = np.full((1, 40, 50), 255, np.uint8)
    with RasterReader(write_raster(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]))) as r:
        np.testing.assert_array_equal(r(win), expect)  # the 4th band is not colour
    with RasterReader(write_raster(tmp_path / "gray.tif", rgb[:1])) as r:
        out = r(win)
        assert out.shape == (20, 30, 3) and (out == rgb[0][win.slices][..., None]).all()
    # uint16 by the stated rule, round(v * 255 / 65535)
    wide = np.array([[[0, 257, 32767, 32768, 65535, 128]]], np.uint16)
    with RasterReader(write_raster(tmp_path / "u16.tif", wide)) as r:
        assert r(Window(0, 0, 1, 6))[0, :, 0].tolist() == [0, 1, 127, 128, 255, 0]


def test_reader_refuses_what_it_cannot_show(tmp_path):
    with pytest.raises(InputError, match="5 bands"):
        RasterReader(write_raster(tmp_path / "b5.tif", np.zeros((5, 8, 8), np.uint8)))
    with pytest.raises(InputError, match="float32.*uint8 or uint16"):
        RasterReader(write_raster(tmp_path / "f.tif", np.zeros((3, 8, 8), np.float32)))
    with pytest.raises(InputError, match="unreadable raster"):
        (tmp_path / "bad.tif").write_bytes(b"II*\x00 not really")
        RasterReader(tmp_path / "bad.tif")


def test_which_tiffs_take_the_windowed_path(tmp_path):
    img = np.zeros((3, 16, 16), np.uint8)
    assert takes_windowed_path(write_raster(tmp_path / "geo.tif", img))
    assert takes_windowed_path(write_raster(tmp_path / "crs_only.tif", img, transform=None))
    plain = write_raster(tmp_path / "plain.tif", img, crs=None, transform=None)
    assert not takes_windowed_path(plain)  # an ordinary picture: read_image reads it
    (tmp_path / "photo.jpg").write_bytes(b"")
    assert not takes_windowed_path(tmp_path / "photo.jpg")
    assert takes_windowed_path(plain, max_pixels=255)  # too large to decode whole
    assert not takes_windowed_path(plain, max_pixels=256) and not takes_windowed_path(plain, max_pixels=None)


def test_pixel_size_in_mm_from_the_crs_unit_and_a_rotated_transform():
    wkt = lambda code: rasterio.crs.CRS.from_string(code).to_wkt()  # noqa: E731
    assert Georef(wkt(UTM), tuple(TRANSFORM)[:6]).gsd_mm() == 0.5
    c, s = np.cos(0.3), np.sin(0.3)  # a raster turned by 0.3 rad keeps its 2 mm pixels
    assert abs(Georef(wkt(UTM), (0.002 * c, -0.002 * s, 0, 0.002 * s, 0.002 * c, 0)).gsd_mm() - 2.0) < 1e-9
    feet = Georef(wkt("EPSG:2263"), (0.01, 0, 0, 0, -0.01, 0)).gsd_mm()  # NY State Plane, US survey feet
    assert abs(feet - 3.048006) < 1e-6
    with pytest.raises(InputError, match="not square"):
        Georef(wkt(UTM), (0.002, 0, 0, 0, -0.003, 0)).gsd_mm()
    with pytest.raises(InputError, match="no CRS"):
        Georef(None, (0.002, 0, 0, 0, -0.002, 0)).gsd_mm()


# ------------------------------------------------------------------ writing


def test_writer_round_trips_values_crs_and_transform_in_unaligned_windows(tmp_path):
    georef = Georef(rasterio.crs.CRS.from_string(UTM).to_wkt(), tuple(TRANSFORM)[:6])
    values = np.random.default_rng(1).integers(0, 256, (700, 600), dtype=np.uint8)
    with RasterWriter(tmp_path / "m.tif", 700, 600, georef) as w:
        for top in range(0, 700, 300):  # windows that straddle the 512 px blocks
            for left in range(0, 600, 250):
                win = Window(top, left, min(300, 700 - top), min(250, 600 - left))
                w.write(win, values[win.slices])
        w.commit()
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == TRANSFORM
        assert ds.profile["tiled"] and ds.block_shapes == [(512, 512)] and ds.compression.name == "deflate"
        assert ds.dtypes == ("uint8",) and ds.count == 1
        np.testing.assert_array_equal(ds.read(1), values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif"]  # no temporary left


def test_writer_takes_rows_in_order_and_refuses_to_commit_a_gap(tmp_path):
    with RasterWriter(tmp_path / "m.tif", 1100, 50, None) as w:
        w.write(Window(0, 0, 600, 50), np.zeros((600, 50), np.uint8))  # rows 0-511 go to GDAL
        with pytest.raises(ValueError, match="above rows already written"):
            w.write(Window(500, 0, 10, 50), np.zeros((10, 50), np.uint8))
        w.write(Window(600, 0, 400, 50), np.zeros((400, 50), np.uint8))
        with pytest.raises(ValueError, match="rows 1000 to 1100 were never written"):
            w.commit()
    assert not (tmp_path / "m.tif").exists() and not list(tmp_path.iterdir())


def test_writer_error_keeps_the_earlier_file(tmp_path):
    target = tmp_path / "m.tif"
    target.write_bytes(b"earlier result")
    with pytest.raises(RuntimeError):
        with RasterWriter(target, 10, 10, None) as w:
            w.write(Window(0, 0, 10, 10), np.zeros((10, 10), np.uint8))
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tif"]


# ------------------------------------------------------------------ segmenting a raster


def test_segment_raster_matches_in_memory_tiling(model_file, scene, tmp_path):
    from crackrender.tiling import plan_tiles

    # an untrained model's probabilities lie close together: a threshold among them makes some crack
    one_tile = Segmenter.from_checkpoint(model_file, device="cpu")(scene).prob
    seg = Segmenter.from_checkpoint(model_file, device="cpu", tile=128, overlap=32,
                                    threshold=float(np.quantile(one_tile, 0.8)))
    whole = seg(scene)
    assert 0 < whole.mask.sum() < whole.mask.size
    src = write_raster(tmp_path / "ortho.tif", np.moveaxis(scene, -1, 0))
    result, georef = segment_raster(seg, src, tmp_path / "o.tif", tmp_path / "o_prob.tif")
    assert len(plan_tiles(200, 300, 128, 32)) == result.sidecar["tiles"] > 1
    assert result.mask is None and result.sidecar["image"] == str(src)
    assert result.sidecar["crack_pixels"] == int(whole.mask.sum())
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == TRANSFORM
        mask = ds.read(1)
        assert set(np.unique(mask)) == {0, 255}
        np.testing.assert_array_equal(mask > 0, whole.mask)
    with rasterio.open(tmp_path / "o_prob.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), whole.prob_uint8())
    assert georef.gsd_mm() == 0.5


def test_no_data_is_never_crack(model_file, scene, tmp_path):
    seg = Segmenter.from_checkpoint(model_file, device="cpu", threshold=0.01)  # nearly everything crack
    bands = np.moveaxis(scene, -1, 0).copy()
    bands[:, :, :100] = 0  # the black margin of an orthomosaic
    src = write_raster(tmp_path / "ortho.tif", bands, nodata=0)
    result, _ = segment_raster(seg, src, tmp_path / "o.tif", tmp_path / "o_prob.tif")
    with rasterio.open(tmp_path / "o.tif") as ds:
        mask, valid = ds.read(1), ds.dataset_mask()
    assert (mask[:, :100] == 0).all() and (valid[:, :100] == 0).all() and (valid[:, 100:] == 255).all()
    assert mask[:, 100:].any() and result.sidecar["crack_pixels"] == int((mask > 0).sum())
    with rasterio.open(tmp_path / "o_prob.tif") as ds:
        assert (ds.read(1)[:, :100] == 0).all()


def test_segment_cli_writes_geotiffs_and_georeferenced_measurements(model_file, scene, tmp_path):
    src = write_raster(tmp_path / "deck.tif", np.moveaxis(scene, -1, 0))
    out = tmp_path / "out"
    r = _cli("segment", src, "-c", model_file, "--out", out, "--prob", "--overlay", "--quantify",
             "--threshold", "0.3", "-q")
    assert r.returncode == 0, r.stderr
    side = json.loads((out / "deck.json").read_text())
    assert side["files"] == {"mask": "deck.tif", "probability": "deck_prob.tif", "overlay": "deck_overlay.jpg"}
    assert side["georeference"]["epsg"] == 32633 and side["georeference"]["transform"] == list(TRANSFORM)[:6]
    for name in ("deck.tif", "deck_prob.tif"):
        with rasterio.open(out / name) as ds:
            assert ds.crs.to_epsg() == 32633 and ds.transform == TRANSFORM and (ds.height, ds.width) == (200, 300)
    report = json.loads((out / "quantify" / "deck.json").read_text())
    assert report["units"] == "mm" and report["resolution"]["gsd_mm_per_px"] == 0.5  # the pixel size
    assert report["georeference"]["epsg"] == 32633
    gj = json.loads((out / "quantify" / "deck.geojson").read_text())
    assert gj["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    # a GSD that disagrees with the raster's pixel size is refused before anything is segmented
    r = _cli("segment", src, "-c", model_file, "--out", tmp_path / "bad", "--quantify", "--gsd", "0.2")
    assert r.returncode == 2 and "disagrees" in r.stderr and not (tmp_path / "bad").exists()


# ------------------------------------------------------------------ quantify on a georeferenced mask


def _line_mask_raster(path, crs=UTM, transform=TRANSFORM):
    mask = np.zeros((1, 60, 200), np.uint8)
    mask[0, 28:34, 20:180] = 255  # 160 x 6 px
    return write_raster(path, mask, crs=crs, transform=transform)


def test_quantify_takes_pixel_size_and_writes_geojson_in_the_crs(tmp_path):
    path = _line_mask_raster(tmp_path / "m.tif")
    ortho = write_raster(tmp_path / "ortho.tif", np.full((3, 60, 200), 90, np.uint8))  # the photo, also a GeoTIFF
    r = _cli("quantify", path, "--image", ortho, "--out", tmp_path / "q", "-q")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "q" / "m_overlay.png").is_file() and (tmp_path / "q" / "m_report.html").is_file()
    report = json.loads((tmp_path / "q" / "m.json").read_text())
    crack = report["cracks"][0]
    assert report["units"] == "mm" and abs(crack["length_mm"] - 160 * 0.5) < 1.0
    assert abs(crack["max_width_mm"] - 3.0) < 0.3 and crack["width_class"] == ">=0.3"
    gj = json.loads((tmp_path / "q" / "m.geojson").read_text())
    line = gj["features"][0]["geometry"]["coordinates"]
    (x0, y0), (x1, y1) = line[0], line[-1]
    # the crack runs along row ~30.5 from about column 20 to 180: map it by hand
    assert abs(min(y0, y1) - (4500000 - 31 * 0.0005)) < 0.002
    assert 500000 + 15 * 0.0005 < min(x0, x1) < 500000 + 25 * 0.0005
    assert 500000 + 175 * 0.0005 < max(x0, x1) < 500000 + 185 * 0.0005
    # the JSON keeps pixel polylines beside the mm values
    assert all(0 <= x <= 200 for x, _ in crack["branches"][0]["polyline"])


def test_quantify_refuses_a_pixel_size_without_length(tmp_path):
    degrees = _line_mask_raster(tmp_path / "deg.tif", crs="EPSG:4326", transform=Affine(1e-8, 0.0, 15.0, 0.0, -1e-8, 45.0))
    r = _cli("quantify", degrees, "--out", tmp_path / "q")
    assert r.returncode == 2 and "geographic" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "q").exists()
    r = _cli("quantify", degrees, "--out", tmp_path / "q", "--gsd", "0.5", "-q")
    assert r.returncode == 0, r.stderr  # a GSD given stands where the raster has no length unit
    r = _cli("quantify", _line_mask_raster(tmp_path / "m.tif"), "--out", tmp_path / "q2", "--gsd", "0.2")
    assert r.returncode == 2 and "disagrees" in r.stderr


def test_quantify_refuses_masks_past_its_size_limit_before_decoding(tmp_path, monkeypatch):
    from crackrender.quantify import core, run_quantify

    path = _line_mask_raster(tmp_path / "m.tif")
    monkeypatch.setattr(core, "MAX_QUANTIFY_PIXELS", 60 * 200 - 1)
    with pytest.raises(InputError, match=r"200x60 is 0 Mpx; quantify measures a mask whole.*cut the mask into parts"):
        run_quantify([path], tmp_path / "q", progress=False)
    assert not (tmp_path / "q").exists()


def test_reports_of_huge_masks_skip_the_pictures(tmp_path, monkeypatch):
    from crackrender.quantify import quantify_mask, report, write_report

    monkeypatch.setattr(report, "REPORT_PICTURE_MAX_PIXELS", 100)
    m = np.zeros((60, 200), bool)
    m[28:34, 20:180] = True
    paths = write_report(quantify_mask(m), tmp_path, "big")
    assert set(paths) == {"json", "cracks_csv", "branches_csv", "geojson"}
    assert "no overlay or HTML page" in json.loads((tmp_path / "big.json").read_text())["pictures"]
