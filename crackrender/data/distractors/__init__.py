"""Hard negatives: things in field photos that look like cracks but are not, drawn as background.

Each family is ``f(image, rng, density=1.0) -> (image, touched)``: ``image`` a float32 RGB
(H, W, 3) array in 0-255, changed in place and returned; ``rng`` a ``numpy.random.Generator``
(same state, same drawing); ``density`` scales how many elements it draws (0 draws none, 1
about one to two); ``touched`` is the bool mask of the pixels it changed. A scene keeps the
union as its distractor mask; the crack mask never includes them, and cracks drawn afterwards
stay cracks where they cross one (see :func:`crackrender.data.synthetic.render_crack_scene`).

Examples:
    >>> import numpy as np
    >>> image = np.full((96, 128, 3), 150, np.float32)
    >>> out, touched = FAMILIES["sawn_joints"](image, np.random.default_rng(0))
    >>> touched.shape, bool(touched.any()), bool((out[touched] != 150).any())
    ((96, 128), True, True)
    >>> parse_families("paint_lines,scratches")
    ('paint_lines', 'scratches')
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from crackrender.data.distractors.joints import expansion_joints, formwork_marks, mortar_joints, sawn_joints, scratches
from crackrender.data.distractors.markings import (kerbs, manholes, oil_spots, paint_arrows, paint_lines, patch_edges,
                                                   tyre_marks)
from crackrender.data.distractors.shading import shadow_edges, stains, thin_shadows

__all__ = ["FAMILIES", "parse_families", "apply_distractors", "choose_families"]

Family = Callable[[np.ndarray, np.random.Generator, float], tuple[np.ndarray, np.ndarray]]

# In drawing (layer) order, as on a real surface: the surface's own make-up, then what lies on it
# (stains, rubber, paint), then what cuts through the paint (joints, scratches), then shadows over all.
FAMILIES: dict[str, Family] = {
    "mortar_joints": mortar_joints,
    "formwork_marks": formwork_marks,
    "patch_edges": patch_edges,
    "kerbs": kerbs,
    "manholes": manholes,
    "expansion_joints": expansion_joints,
    "stains": stains,
    "oil_spots": oil_spots,
    "tyre_marks": tyre_marks,
    "paint_lines": paint_lines,
    "paint_arrows": paint_arrows,
    "sawn_joints": sawn_joints,
    "scratches": scratches,
    "shadow_edges": shadow_edges,
    "thin_shadows": thin_shadows,
}


def parse_families(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"all"`` -> every family; ``None``, ``""`` or ``"none"`` -> none; ``"a,b"`` or ``["a", "b"]``
    -> those, checked, in layer order (:data:`FAMILIES`'s). An unknown name is a one-line
    ``ValueError`` listing the known ones.

    Examples:
        >>> len(parse_families("all")) == len(FAMILIES), parse_families("none")
        (True, ())
    """
    if spec is None:
        return ()
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else [str(n).strip() for n in spec]
    names = [n for n in names if n]
    if names in ([], ["none"]):
        return ()
    if names == ["all"]:
        return tuple(FAMILIES)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown distractor famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                         f"expected all, none or names from: {', '.join(FAMILIES)}")
    return tuple(f for f in FAMILIES if f in names)


def choose_families(rng: np.random.Generator, families: Sequence[str], most: int = 3) -> tuple[str, ...]:
    """A scene's share of ``families``: between one and ``most`` of them, in layer order."""
    if not families:
        return ()
    k = int(rng.integers(1, min(most, len(families)) + 1))
    picked = set(rng.choice(len(families), size=k, replace=False).tolist())
    return parse_families([f for i, f in enumerate(families) if i in picked])


def apply_distractors(image: np.ndarray, rng: np.random.Generator, families: Sequence[str],
                      density: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``families`` in layer order into a float RGB image; returns the image (float32, clipped
    to 0-255) and the union of the pixels they touched.

    Examples:
        >>> img, touched = apply_distractors(np.full((64, 64, 3), 120.0), np.random.default_rng(1), ["scratches"])
        >>> img.dtype, bool(touched.any())
        (dtype('float32'), True)
    """
    if not (np.isfinite(density) and density >= 0):
        raise ValueError(f"distractor density must be a finite number >= 0, got {density}")
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"distractors draw into an (H, W, 3) RGB image, got shape {image.shape}")
    touched = np.zeros(image.shape[:2], bool)
    for name in parse_families(list(families)):
        image, t = FAMILIES[name](image, rng, density)
        touched |= t
    np.clip(image, 0, 255, out=image)
    return image, touched
