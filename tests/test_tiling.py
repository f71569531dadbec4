"""Tiled inference (crackrender.tiling, Segmenter.segment_windows) and the pixel limit on decoded
images: tiles are seamless, memory is the tile's, and a tiny file declaring a huge image is refused
from its header."""

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from conftest import shared_dataset, tiny

from crackrender.data.synthetic import render_crack_scene
from crackrender.errors import InputError
from crackrender.inference import prepare_model
from crackrender.io import DEFAULT_MAX_PIXELS, read_image, read_mask, write_image, write_mask
from crackrender.segment import ResultWriter, Segmenter
from crackrender.tiling import ALIGN, Window, check_tiling, plan_tiles

HUGE = (20000, 15000)  # 300 MP: the size of the PNG that exhausted memory


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "crackrender.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def _crack_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def write_blank_png(path, width: int, height: int) -> None:
    """A 1-bit black PNG streamed row by row: a file of a few hundred KB whose decoded RGB would
    take 900 MB, never held in memory here."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    write_blank_png(path, *HUGE)
    return path


@pytest.fixture(scope="module")
def tiny_segmenter():
    def make(**options):
        return Segmenter(prepare_model(tiny().eval(), "cpu"), torch.device("cpu"), **options)
    return make


# ------------------------------------------------------------------ the plan


@pytest.mark.parametrize("height,width", [(100, 300), (31, 33), (1536, 2048), (1000, 1537), (1025, 700)])
@pytest.mark.parametrize("tile,overlap", [(1024, 128), (256, 64), (64, 0), (96, 32)])
def test_cores_cover_the_image_once_with_aligned_tiles_and_full_context(height, width, tile, overlap):
    tiles = plan_tiles(height, width, tile, overlap)
    cover = np.zeros((height, width), np.int32)
    for window, core in tiles:
        cover[core.slices] += 1
        assert window.top % ALIGN == 0 and window.left % ALIGN == 0
        assert 0 < window.height <= tile and 0 < window.width <= tile
        assert window.top + window.height <= height and window.left + window.width <= width
        # every kept pixel has `overlap` px of context on each side, or the image's edge
        assert core.top == 0 or core.top - window.top >= overlap
        assert core.left == 0 or core.left - window.left >= overlap
        assert core.top + core.height == height or window.top + window.height - (core.top + core.height) >= overlap
        assert core.left + core.width == width or window.left + window.width - (core.left + core.width) >= overlap
    assert (cover == 1).all()


def test_an_image_within_one_tile_runs_whole():
    assert plan_tiles(768, 1024, 1024, 128) == [(Window(0, 0, 768, 1024), Window(0, 0, 768, 1024))]


@pytest.mark.parametrize("tile,overlap,message", [(1000, 128, "multiple of 32"), (0, 0, "multiple of 32"),
                                                  (1024, 100, "multiple of 32"), (256, 128, "twice the overlap"),
                                                  (1024, -32, "multiple of 32")])
def test_bad_tile_settings_are_input_errors(tile, overlap, message):
    with pytest.raises(InputError, match=message):
        check_tiling(tile, overlap)
    with pytest.raises(InputError, match=message):
        Segmenter(None, torch.device("cpu"), tile=tile, overlap=overlap)


# ------------------------------------------------------------------ the segmenter


class LocalModel:
    """A stand-in backend whose every output pixel reads only the 9x9 pixels around it, so tiles
    with an overlap of 32 px must reproduce the whole image exactly."""

    def predict(self, x, timings=None):
        from crackrender.models.base import Prediction

        local = torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 9, stride=1, padding=4, count_include_pad=False)
        timings["local"] = 0.001
        return Prediction.from_logits((0.54 - local) * 40, [int(x.shape[-1])])


def test_tiles_reproduce_a_local_model_exactly():
    image = render_crack_scene(300, 200, seed=1).image
    whole = Segmenter(LocalModel(), torch.device("cpu"), tile=320, overlap=0)(image)
    tiled = Segmenter(LocalModel(), torch.device("cpu"), tile=128, overlap=32)(image)
    assert whole.prob.dtype == np.float32 and tiled.prob.dtype == np.uint8  # no float map of a tiled image
    assert 0.001 < whole.mask.mean() < 0.5 and tiled.sidecar["tiles"] == 4 * 3
    np.testing.assert_array_equal(tiled.mask, whole.mask)
    np.testing.assert_array_equal(tiled.prob, whole.prob_uint8())
    assert tiled.sidecar["crack_pixels"] == int(whole.mask.sum())
    assert tiled.timings["local"] == pytest.approx(0.012)  # summed over the tiles
    assert tiled.refined_points == 3 * (3 * 128 + 108)  # so are the points: 3 rows of tiles 128, 128, 128, 108 wide
    # without overlap, the tiles' edges show
    seams = Segmenter(LocalModel(), torch.device("cpu"), tile=128, overlap=0)(image)
    assert (seams.prob != whole.prob_uint8()).any()


def test_tiles_of_cbprn_agree_with_the_whole_image(tiny_segmenter):
    image = render_crack_scene(256, 192, seed=1).image
    whole = tiny_segmenter(tile=256, overlap=0)(image)
    tiled = tiny_segmenter(tile=128, overlap=32)(image)
    assert tiled.sidecar["tiles"] == 6 and (tiled.sidecar["tile"], tiled.sidecar["overlap"]) == (128, 32)
    levels = np.abs(tiled.prob.astype(int) - np.round(whole.prob * 255).astype(int))
    assert levels.max() <= 1  # the 8-bit probabilities agree to rounding


def test_segment_windows_reads_and_writes_window_by_window(tiny_segmenter):
    image = render_crack_scene(160, 120, seed=2).image
    seg = tiny_segmenter(tile=96, overlap=32)
    reads, writes = [], []
    prob = np.zeros((120, 160), np.uint8)

    def read(window: Window) -> np.ndarray:
        reads.append(window)
        return image[window.slices]

    def write(core: Window, mask: np.ndarray, p: np.ndarray) -> None:
        writes.append((core, int(mask.sum())))
        assert mask.shape == p.shape == (core.height, core.width) and mask.dtype == bool and p.dtype == np.uint8
        prob[core.slices] = p

    result = seg.segment_windows(read, 120, 160, write, keep_prob=True, source="scene.png")
    tiles = plan_tiles(120, 160, 96, 32)
    assert reads == [t.window for t in tiles] and [c for c, _ in writes] == [t.core for t in tiles]
    assert result.mask is None and result.prob is None
    in_memory = seg(image)
    np.testing.assert_array_equal(prob, in_memory.prob)
    side = result.sidecar
    assert side["crack_pixels"] == sum(n for _, n in writes) == int(in_memory.mask.sum())
    assert (side["tiles"], side["image"], side["width"], side["height"]) == (len(tiles), "scene.png", 160, 120)
    assert result.refined_points == in_memory.refined_points and "backbone" in result.timings
    # without keep_prob the writer gets no probability
    seg.segment_windows(lambda w: image[w.slices], 120, 160, lambda c, m, p: writes.append(p))
    assert writes[-1] is None


def test_a_reader_giving_the_wrong_window_is_an_input_error(tiny_segmenter):
    seg = tiny_segmenter(tile=64, overlap=0)
    with pytest.raises(InputError, match=r"expected \(64, 64, 3\) uint8"):
        seg.segment_windows(lambda w: np.zeros((10, 10, 3), np.uint8), 100, 100, lambda *a: None)


def test_result_writer_writes_a_tiled_probability_as_8_bit(tiny_segmenter, tmp_path):
    image = render_crack_scene(130, 100, seed=3).image
    result = tiny_segmenter(tile=64, overlap=0)(image)
    ResultWriter(tmp_path, prob=True).write("a", image, result)
    written = read_image(tmp_path / "a_prob.png")[..., 0]
    np.testing.assert_array_equal(written, result.prob)
    np.testing.assert_allclose(result.prob_float(), result.prob / 255, atol=1e-7)


def test_shipped_model_tiles_match_whole_image_at_2048x1536():
    scene = render_crack_scene(2048, 1536, seed=3)
    seg = Segmenter.from_checkpoint(device="cpu", tile=2048)
    whole = seg(scene.image, keep_prob=False).mask
    tiled = Segmenter.from_checkpoint(device="cpu")(scene.image, keep_prob=False)
    assert tiled.sidecar["tiles"] > 1
    assert _crack_iou(tiled.mask, whole) >= 0.99


def test_shipped_model_tiles_match_whole_image_on_deepcrack537():
    root = shared_dataset("deepcrack537")
    stems = (root / "test.txt").read_text().split()[:4]
    whole = Segmenter.from_checkpoint(device="cpu")  # 544x384: one tile
    tiled = Segmenter.from_checkpoint(device="cpu", tile=384)  # 2 tiles of a 544x384 image, default overlap
    a, b = [], []
    for stem in stems:
        image = read_image(next((root / "images").glob(f"{stem}.*")))
        a.append(whole(image, keep_prob=False).mask)
        result = tiled(image, keep_prob=False)
        assert result.sidecar["tiles"] > 1
        b.append(result.mask)
    # a tile of 384 gives the edge branch's attention less context than the whole image, so the
    # masks differ a little (measured crack IoU: v2 0.994, v3 0.989); a misplaced or badly blended
    # tile costs far more
    assert _crack_iou(np.stack(b), np.stack(a)) >= 0.98


# ------------------------------------------------------------------ the pixel limit


def test_the_default_limit_refuses_a_tiny_file_of_a_huge_image_before_decoding(huge_png, monkeypatch):
    assert huge_png.stat().st_size < 1_000_000 and HUGE[0] * HUGE[1] > DEFAULT_MAX_PIXELS

    def no_decoding(self):
        raise AssertionError("decoded")

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    for reader in (read_image, read_mask):
        with pytest.raises(InputError, match=r"huge\.png: 20000x15000 = 300,000,000 pixels, over the limit of 150,000,000"):
            reader(huge_png)


def test_max_pixels_is_the_callers_choice(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(InputError, match="50x40"):
        read_image(tmp_path / "a.png", max_pixels=1999)
    assert read_image(tmp_path / "a.png", max_pixels=2000).shape == (40, 50, 3)
    assert read_image(tmp_path / "a.png", max_pixels=None).shape == (40, 50, 3)


def test_cli_refuses_a_huge_image_in_one_line_and_keeps_earlier_output(huge_png, model_file, tmp_path):
    out = tmp_path / "out"
    write_mask(out / "huge.png", np.ones((8, 8), bool))  # a mask written by an earlier run
    before = (out / "huge.png").read_bytes()
    r = _cli("segment", huge_png, "--out", out, "-c", model_file, "-q")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "huge.png: 20000x15000 = 300,000,000 pixels, over the limit" in r.stderr
    assert (out / "huge.png").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["huge.png"]

    gt = tmp_path / "gt"
    write_mask(gt / "huge.png", np.ones((8, 8), bool))
    (tmp_path / "scores.json").write_text("{}")
    r = _cli("evaluate", huge_png.parent, gt, "--json", tmp_path / "scores.json", "-q")
    assert r.returncode == 2 and "huge.png: 20000x15000" in r.stderr and r.stderr.count("\n") == 1
    assert json.loads((tmp_path / "scores.json").read_text()) == {}

    r = _cli("demo", "--out", tmp_path / "demo", "--width", HUGE[0], "--height", HUGE[1], "-c", model_file)
    assert r.returncode == 2 and "demo scene: 20000x15000" in r.stderr and not (tmp_path / "demo").exists()

    r = _cli("segment", huge_png, "--out", out, "--tile", 1000)
    assert r.returncode == 2 and "tile must be a positive multiple of 32" in r.stderr


def test_cli_max_pixels_option_sets_the_limit(model_file, tmp_path):
    write_image(tmp_path / "in" / "photo.png", render_crack_scene(96, 64, seed=0).image)
    r = _cli("segment", tmp_path / "in", "--out", tmp_path / "out", "-c", model_file, "--max-pixels", 6000, "-q")
    assert r.returncode == 2 and "photo.png: 96x64 = 6,144 pixels, over the limit of 6,000" in r.stderr
    r = _cli("segment", tmp_path / "in", "--out", tmp_path / "out", "-c", model_file, "--max-pixels", 6144, "-q",
             "--tile", 64, "--overlap", 0)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out" / "photo.json").read_text())["tiles"] == 2
