"""Checks of user-supplied settings, each raising the project's one input error.

Every failure is an :class:`~crackrender.errors.InputError`: a CrackRenderError, so the command line
prints it as one line and exits 2, and a ValueError, so library callers catch it the usual way.
Each check returns the value it accepted, so ``self.n = positive_int(n, "n")`` checks and keeps.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from crackrender.errors import InputError

__all__ = ["choice", "in_range", "non_negative_int", "positive_int"]


def _is_int(value) -> bool:
    # bool is an Integral, but True as a width is a typo, never a choice
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """``value`` as an int if it is an integer >= 1.

    Examples:
        >>> positive_int(3, "width")
        3
        >>> positive_int(0, "width")
        Traceback (most recent call last):
        crackrender.errors.InputError: width must be a positive int, got 0
    """
    if not _is_int(value) or value <= 0:
        raise InputError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(value, name: str) -> int:
    """``value`` as an int if it is an integer >= 0.

    Examples:
        >>> non_negative_int(0, "k")
        0
        >>> non_negative_int(1.5, "k")
        Traceback (most recent call last):
        crackrender.errors.InputError: k must be a non-negative int, got 1.5
    """
    if not _is_int(value) or value < 0:
        raise InputError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _describe_range(low, high, open_low: bool, open_high: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    if low is not None:
        return f"{'>' if open_low else '>='} {low}"
    return f"{'<' if open_high else '<='} {high}"


def in_range(value, name: str, low: float | None = None, high: float | None = None, *,
             open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a float if it is a finite real number within the bounds (closed unless
    ``open_low`` / ``open_high``; None: unbounded on that side).

    Examples:
        >>> in_range(0.75, "importance", 0, 1)
        0.75
        >>> in_range(0, "eps", 0, open_low=True)
        Traceback (most recent call last):
        crackrender.errors.InputError: eps must be a number > 0, got 0
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        raise InputError(f"{name} must be a number {_describe_range(low, high, open_low, open_high)}, got {value!r}")
    return float(value)


def choice(value, name: str, choices: Iterable):
    """``value`` if it is one of ``choices``.

    Examples:
        >>> choice("unet", "coarse network", ("fcn", "unet"))
        'unet'
        >>> choice("segnet", "coarse network", ("fcn", "unet"))
        Traceback (most recent call last):
        crackrender.errors.InputError: unknown coarse network 'segnet'; choose one of fcn, unet
    """
    choices = list(choices)
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value


def flag(value, name: str) -> bool:
    """``value`` if it is a bool (a switch given as 0/1 or "yes" is refused, not guessed).

    Examples:
        >>> flag(True, "point_fine")
        True
        >>> flag(1, "point_fine")
        Traceback (most recent call last):
        crackrender.errors.InputError: point_fine must be true or false, got 1
    """
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, got {value!r}")
    return value
