"""Reading images and masks with validation, and writing result files atomically.

Every reader returns plain numpy arrays and raises :class:`InputError` with a one-line
message naming the file when the input cannot be used.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from crackrender.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# The largest image the readers decode unless told otherwise (--max-pixels), checked from the
# file's header before decoding: a small file can declare a huge image (a 300 MP PNG of a few
# hundred KB), whose decoded copies alone would exhaust memory. At this size `segment` (tiled)
# stays within the bound README.md, "Large images", states.
DEFAULT_MAX_PIXELS = 150_000_000
# That check replaces PIL's decompression-bomb guard, which would warn (a second line on stderr)
# or refuse on its own terms, and would override a limit the user raised.
Image.MAX_IMAGE_PIXELS = None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def expand_inputs(items: str | os.PathLike | Sequence[str | os.PathLike], what: str = "images") -> list[Path]:
    """Files and folders -> the image files they name (a folder's images, sorted); never empty."""
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = list_images(item)
            if not found:
                raise InputError(f"{item}: no {what} found in folder (looked for {', '.join(IMAGE_EXTENSIONS)})")
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            raise InputError(f"{item}: no such file or folder")
    if not paths:
        raise InputError(f"no {what} given")
    return paths


def index_by_stem(paths: Sequence[Path], where: str | os.PathLike) -> dict[str, Path]:
    """Map file stem -> path; two files with one stem are an error (outputs and matches are by stem)."""
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise InputError(f"{where}: two files share the stem {p.stem!r} ({out[p.stem]}, {p})")
        out[p.stem] = p
    return out


def check_pixels(path: str | os.PathLike, width: int, height: int, max_pixels: int | None) -> None:
    """An InputError naming the file and its size when width x height exceeds ``max_pixels``
    (None or 0: no limit).

    Examples:
        >>> check_pixels("big.png", 20000, 15000, 150_000_000)
        Traceback (most recent call last):
        crackrender.errors.InputError: big.png: 20000x15000 = 300,000,000 pixels, over the limit of 150,000,000 (--max-pixels)
    """
    if max_pixels and width * height > max_pixels:
        raise InputError(f"{path}: {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
                         "(--max-pixels)")


def _open_pil(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode ``path`` with EXIF orientation applied; an image over ``max_pixels``
    is refused from its header, before anything is decoded."""
    try:
        with Image.open(path) as img:
            check_pixels(path, img.width, img.height, max_pixels)
            img.load()  # forces decoding, so truncated files fail here and not later
            return ImageOps.exif_transpose(img)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: unreadable or truncated image ({exc})") from None


def _read_with_opencv(path: Path) -> np.ndarray | None:
    """Fallback for files PIL opens but cannot convert (e.g. 16-bit RGB TIFF); BGR order."""
    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None:
        return None
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return arr


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype in (np.uint16, np.int32, np.int64, np.uint32) or np.issubdtype(arr.dtype, np.integer):
        top = 65535 if arr.max(initial=0) > 255 else 255
        return (arr.astype(np.float32) * (255.0 / top) + 0.5).clip(0, 255).astype(np.uint8)
    # float images: assume [0, 1]
    return (arr.astype(np.float32) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def read_image_array(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to a numpy array in its native depth and channels (RGB order, EXIF honoured).
    Images over ``max_pixels`` (None or 0: no limit) are refused before decoding."""
    path = Path(path)
    img = _open_pil(path, max_pixels)
    if img.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB")
    if img.mode == "I;16B":
        img = img.convert("I")
    arr = np.asarray(img)
    if arr.dtype == object or arr.size == 0:
        alt = _read_with_opencv(path)
        if alt is None:
            raise InputError(f"{path}: unsupported image mode {img.mode!r}")
        arr = alt
    return arr


def read_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as an (H, W, 3) uint8 RGB array.

    Accepts JPEG, PNG, BMP and TIFF; 8 or 16 bit; gray, RGB or RGBA (alpha dropped).
    16-bit data is scaled to 8 bit. EXIF orientation is applied. An image of more than
    ``max_pixels`` pixels (None or 0: no limit) is refused from its header, before decoding.

    Examples:
        >>> img = read_image("photo.jpg")  # doctest: +SKIP
        >>> img.shape, img.dtype  # doctest: +SKIP
        ((1536, 2048, 3), dtype('uint8'))
    """
    arr = _to_uint8(read_image_array(path, max_pixels))
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    elif arr.shape[2] == 2:  # gray + alpha
        arr = np.repeat(arr[:, :, :1], 3, axis=2)
    # PIL hands out read-only buffers; torch.from_numpy needs a writable array
    return arr if arr.flags.writeable and arr.flags.c_contiguous else np.array(arr, order="C")


def _describe_values(values: np.ndarray) -> str:
    shown = ", ".join(str(v) for v in values[:6])
    return f"{{{shown}{', ...' if len(values) > 6 else ''}}} ({len(values)} distinct)"


def binarize_mask(arr: np.ndarray, name: str = "mask") -> np.ndarray:
    """Validate a mask array and return it as (H, W) bool, crack = True.

    Accepted: bool; 0/255, 0/1 (8 or 16 bit, also 0/65535); a single colour on black (RGB/RGBA,
    alpha ignored). Soft or multi-valued masks raise :class:`InputError` naming the values found.

    Examples:
        >>> binarize_mask(np.array([[0, 255], [255, 0]], np.uint8)).tolist()
        [[False, True], [True, False]]
    """
    return _binarize(arr, name)[0]


def _binarize(arr: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    """The mask and a word for its encoding, which ``data check`` reports."""
    if arr.dtype == np.bool_:
        return (arr if arr.ndim == 2 else arr.any(axis=2)), "bool"
    if arr.ndim == 3:
        rgb = arr[:, :, :3] if arr.shape[2] >= 3 else arr[:, :, :1]
        colours = np.unique(rgb.reshape(-1, rgb.shape[2]), axis=0)
        non_black = colours[colours.any(axis=1)]
        if len(non_black) > 1 or len(colours) > 2:
            found = ", ".join(str(tuple(int(c) for c in col)) for col in colours[:4])
            raise InputError(
                f"{name}: not a binary mask: {len(colours)} colours found ({found}{', ...' if len(colours) > 4 else ''});"
                " expected one colour on black"
            )
        colour = "/".join(str(int(c)) for c in non_black[0]) if len(non_black) else "none"
        return rgb.any(axis=2), f"colour {colour} on black"
    if arr.ndim != 2:
        raise InputError(f"{name}: mask must be 2-D, got shape {arr.shape}")
    values = np.unique(arr)
    allowed = {"0/1": {0, 1}, "0/255": {0, 255}, "0/65535": {0, 65535}}
    for kind, ok in allowed.items():
        if set(values.tolist()) <= ok:
            return arr > 0, f"{arr.dtype.itemsize * 8}-bit {kind}"
    hint = " (JPEG masks are lossy: store masks as PNG)" if name.lower().endswith((".jpg", ".jpeg")) else ""
    raise InputError(f"{name}: not a binary mask: values {_describe_values(values)}; expected 0/255, 0/1 or bool{hint}")


def read_mask(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a binary mask file as (H, W) bool, validating its values (see :func:`binarize_mask`).

    EXIF orientation is applied, as for images, so a mask stays aligned with its photo. Masks
    over ``max_pixels`` are refused before decoding, as images are.
    """
    return read_mask_with_encoding(path, max_pixels)[0]


def read_mask_with_encoding(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS
                            ) -> tuple[np.ndarray, str]:
    """:func:`read_mask`, plus how the file encodes the mask (``"1-bit"``, ``"8-bit 0/255"``, ...)."""
    path = Path(path)
    img = _open_pil(path, max_pixels)
    if img.mode == "1":
        return np.asarray(img, dtype=bool), "1-bit"
    if img.mode in ("P", "PA"):
        img = img.convert("RGB")
    if img.mode == "I;16B":
        img = img.convert("I")
    return _binarize(np.asarray(img), str(path))


def read_probability(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an 8/16-bit gray probability map (or a binary mask) as float32 in [0, 1]."""
    return probability_from_array(read_image_array(path, max_pixels), str(path))


def probability_from_array(arr: np.ndarray, name: str = "probability map") -> np.ndarray:
    """A decoded gray probability map (8/16 bit, or 0/1, or bool) as float32 in [0, 1]."""
    if arr.ndim == 3:
        if arr.shape[2] >= 3 and not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
            raise InputError(f"{name}: probability map must be gray, got colour image")
        arr = arr[..., 0]
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    top = 65535.0 if arr.dtype == np.uint16 and arr.max(initial=0) > 255 else 255.0
    if arr.dtype != np.uint8 and set(np.unique(arr).tolist()) <= {0, 1}:
        top = 1.0
    if arr.dtype == np.uint8 and arr.max(initial=0) <= 1:
        top = 1.0  # a 0/1 mask stored as 8 bit
    return arr.astype(np.float32) / top


# ---------------------------------------------------------------- atomic writing

def reserve_temp_file(folder: Path, name: str) -> tuple[int, Path]:
    """A new, uniquely named file beside ``name``, opened for writing.

    Created with mode 0o666 like a plain ``open()``, so the kernel applies the umask (and any
    default ACL) when the file is created; ``tempfile.mkstemp`` would fix it at 0o600 instead.
    """
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: no free temporary name for {name}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = reserve_temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n")


def json_default(obj):
    """``json.dumps``'s ``default=`` for what sidecars hold: numpy scalars and arrays, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def encode_image(arr: np.ndarray, suffix: str = ".png", quality: int = 95) -> bytes:
    """Encode an (H, W) or (H, W, 3) RGB uint8/bool/uint16 array to file bytes."""
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, arr, params)
    if not ok:
        raise InputError(f"cannot encode image as {suffix}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, arr: np.ndarray, quality: int = 95) -> Path:
    """Atomically write an image; format from the suffix; bool masks are written as 0/255."""
    path = Path(path)
    return atomic_write_bytes(path, encode_image(arr, path.suffix or ".png", quality))


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Atomically write a binary mask as an 8-bit PNG with values 0 and 255."""
    return write_image(path, np.asarray(mask, dtype=bool))
