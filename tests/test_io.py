import numpy as np
import pytest
from PIL import Image

from crackrender.errors import InputError
from crackrender.io import binarize_mask, read_image, read_mask, read_probability, write_mask

RNG = np.random.default_rng(0)
# smooth colours, so JPEG's loss stays small and comparable
_y, _x = np.mgrid[0:20, 0:30]
RGB = np.stack([_x * 8, _y * 12, 255 - _x * 8], axis=2).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".tif"])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_read_image_formats_and_modes(tmp_path, suffix, mode):
    if suffix in (".jpg",) and mode == "RGBA":
        pytest.skip("JPEG has no alpha channel")
    img = Image.fromarray(RGB).convert(mode)
    path = tmp_path / f"x{suffix}"
    img.save(path)
    out = read_image(path)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    expected = np.asarray(img.convert("RGB"))
    tol = 6 if suffix == ".jpg" else 0  # JPEG is lossy
    assert np.abs(out.astype(int) - expected.astype(int)).mean() <= tol


def test_read_image_16bit_gray_png_is_scaled(tmp_path):
    arr = np.linspace(0, 65535, 20 * 30).reshape(20, 30).astype(np.uint16)
    path = tmp_path / "x16.png"
    Image.fromarray(arr).save(path)
    out = read_image(path)
    assert out.shape == (20, 30, 3)
    np.testing.assert_allclose(out[..., 0].astype(float), arr / 257.0, atol=1.0)


def test_read_image_16bit_rgb_tiff(tmp_path):
    import cv2

    arr = (RGB.astype(np.uint16) * 257)
    path = tmp_path / "x16.tif"
    cv2.imwrite(str(path), arr[..., ::-1])
    out = read_image(path)
    np.testing.assert_array_equal(out, RGB)


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.fromarray(RGB)  # 30 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=100)
    assert read_image(path).shape == (30, 20, 3)


def test_truncated_and_unreadable_files_name_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(RGB).resize((300, 200)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    for path in (truncated, text, tmp_path / "missing.png"):
        with pytest.raises(InputError, match=path.name) as info:
            read_image(path)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "values, mode",
    [((0, 255), "L"), ((0, 1), "L"), ((0, 255), "1")],
)
def test_binary_masks_accepted(tmp_path, values, mode):
    mask = RNG.random((16, 16)) > 0.7
    arr = np.where(mask, values[1], values[0]).astype(np.uint8)
    path = tmp_path / "m.png"
    Image.fromarray(arr).convert(mode).save(path) if mode == "1" else Image.fromarray(arr, mode).save(path)
    np.testing.assert_array_equal(read_mask(path), mask)


def test_single_colour_rgb_mask_and_bool_accepted(tmp_path):
    mask = RNG.random((16, 16)) > 0.7
    rgb = np.zeros((16, 16, 4), np.uint8)
    rgb[mask] = (255, 0, 0, 255)
    rgb[..., 3] = 255
    path = tmp_path / "red.png"
    Image.fromarray(rgb, "RGBA").save(path)
    np.testing.assert_array_equal(read_mask(path), mask)
    np.testing.assert_array_equal(binarize_mask(mask), mask)


def test_soft_and_multicolour_masks_rejected_with_values(tmp_path):
    soft = np.array([[0, 128], [255, 0]], np.uint8)
    path = tmp_path / "soft.png"
    Image.fromarray(soft).save(path)
    with pytest.raises(InputError, match=r"soft\.png.*0, 128, 255"):
        read_mask(path)
    two = np.zeros((4, 4, 3), np.uint8)
    two[0, 0] = (255, 0, 0)
    two[1, 1] = (0, 255, 0)
    path = tmp_path / "two.png"
    Image.fromarray(two).save(path)
    with pytest.raises(InputError, match=r"two\.png.*3 colours"):
        read_mask(path)


def test_jpeg_mask_rejected_with_hint(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 10:50] = 255
    path = tmp_path / "m.jpg"
    Image.fromarray(mask).save(path, quality=70)
    with pytest.raises(InputError, match="lossy"):
        read_mask(path)


def test_read_probability_scales(tmp_path):
    arr = np.array([[0, 51], [204, 255]], np.uint8)
    path = tmp_path / "p.png"
    Image.fromarray(arr).save(path)
    np.testing.assert_allclose(read_probability(path), arr / 255.0)


def test_write_mask_is_atomic_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "out.png"
    mask = RNG.random((8, 8)) > 0.5
    write_mask(path, mask)
    np.testing.assert_array_equal(read_mask(path), mask)
    before = path.read_bytes()
    with pytest.raises(Exception):
        write_mask(path, np.zeros((0, 0), bool))  # cannot be encoded
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temp files left behind


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_gives_a_new_file_the_mode_plain_open_gives(tmp_path, umask):
    import os

    from crackrender.io import atomic_write_bytes

    old = os.umask(umask)  # set after crackrender.io was imported: the write must follow it
    try:
        atomic_write_bytes(tmp_path / "atomic.bin", b"x")
        (tmp_path / "plain.bin").write_bytes(b"x")
    finally:
        os.umask(old)
    mode = (tmp_path / "atomic.bin").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == (tmp_path / "plain.bin").stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atomic.bin", "plain.bin"]


def test_importing_io_leaves_the_umask_alone():
    import subprocess
    import sys

    # a umask change at import would show up as a call to os.umask while the module loads
    code = ("import os; calls = []; real = os.umask\n"
            "os.umask = lambda m: calls.append(m) or real(m)\n"
            "import crackrender.io; print(calls)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
