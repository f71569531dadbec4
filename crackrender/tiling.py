"""Overlapping tiles, so an image of any size is segmented with memory bounded by the tile.

Each tile is a window of the image the model sees whole; only its *core* is kept. Cores are
disjoint and together cover the image exactly once, and every core lies at least ``overlap``
pixels inside its tile wherever the tile does not end at the image's edge, so every kept pixel
sees ``overlap`` pixels of context on each side, as it would in the whole image.

Tile origins are multiples of :data:`ALIGN` (32 px): CBPRN pads its input to a multiple of 32
(ResNet's stride) and its Swin windows are 8 tokens of 4 px, so a tile aligned to 32 computes its
convolutions and attention windows on the very grid the whole image would. A core pixel's
prediction then differs from the whole image's only through context further than ``overlap``
away (measured in BENCHMARKS.md, "Large images").

Examples:
    >>> [(t.window, t.core) for t in plan_tiles(100, 300, tile=192, overlap=32)]  # doctest: +NORMALIZE_WHITESPACE
    [(Window(top=0, left=0, height=100, width=192), Window(top=0, left=0, height=100, width=160)),
     (Window(top=0, left=128, height=100, width=172), Window(top=0, left=160, height=100, width=140))]
"""

from __future__ import annotations

from typing import NamedTuple

from crackrender.errors import InputError

# tile sizes and origins are multiples of this (see the module's notes)
ALIGN = 32
# chosen by measurement: BENCHMARKS.md, "Large images" (speed vs tile size, agreement vs overlap)
DEFAULT_TILE = 1536
DEFAULT_OVERLAP = 64


class Window(NamedTuple):
    """A rectangle of the image, in pixels."""

    top: int
    left: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index an (H, W, ...) array with it: ``array[window.slices]``."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)

    def relative_to(self, outer: "Window") -> "Window":
        """This window in the coordinates of ``outer``, which contains it."""
        return Window(self.top - outer.top, self.left - outer.left, self.height, self.width)


class Tile(NamedTuple):
    window: Window  # what the model sees
    core: Window    # the part of its prediction that is kept


def check_tiling(tile: int, overlap: int) -> tuple[int, int]:
    """(tile, overlap) if both are multiples of :data:`ALIGN` and a tile keeps a core, else an
    InputError.

    Examples:
        >>> check_tiling(1024, 128)
        (1024, 128)
        >>> check_tiling(1000, 128)
        Traceback (most recent call last):
        crackrender.errors.InputError: tile must be a positive multiple of 32 px, got 1000
    """
    if isinstance(tile, bool) or not isinstance(tile, int) or tile <= 0 or tile % ALIGN:
        raise InputError(f"tile must be a positive multiple of {ALIGN} px, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0 or overlap % ALIGN:
        raise InputError(f"overlap must be a multiple of {ALIGN} px (0 or more), got {overlap!r}")
    if tile <= 2 * overlap:
        raise InputError(f"tile ({tile} px) must exceed twice the overlap ({overlap} px) to keep a core")
    return tile, overlap


def axis_spans(length: int, tile: int, overlap: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Along one axis of ``length`` px: ((start, stop) of each tile, (start, stop) of its core).

    Tiles start every ``tile - 2 * overlap`` px; the last one is cut at the image's edge. An axis
    no longer than a tile is one tile.

    Examples:
        >>> axis_spans(500, 256, 64)
        [((0, 256), (0, 192)), ((128, 384), (192, 320)), ((256, 500), (320, 500))]
    """
    if length <= tile:
        return [((0, length), (0, length))]
    step = tile - 2 * overlap
    spans = []
    start = 0
    while True:
        stop = min(start + tile, length)
        last = stop == length
        core = (0 if start == 0 else start + overlap, length if last else stop - overlap)
        spans.append(((start, stop), core))
        if last:
            return spans
        start += step


def plan_tiles(height: int, width: int, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> list[Tile]:
    """The tiles of a ``height`` x ``width`` image, row by row; their cores partition the image."""
    tile, overlap = check_tiling(tile, overlap)
    if height <= 0 or width <= 0:
        raise InputError(f"image size must be positive, got {width}x{height}")
    rows, cols = axis_spans(height, tile, overlap), axis_spans(width, tile, overlap)
    return [Tile(Window(r0, c0, r1 - r0, c1 - c0), Window(cr0, cc0, cr1 - cr0, cc1 - cc0))
            for (r0, r1), (cr0, cr1) in rows for (c0, c1), (cc0, cc1) in cols]
