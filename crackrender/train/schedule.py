"""Learning-rate schedule of the paper: linear warm-up, then poly decay."""

from __future__ import annotations


def warmup_poly(step: int, total_steps: int, warmup_steps: int, power: float = 0.9) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based).

    Examples:
        >>> [round(warmup_poly(s, 10, 2), 3) for s in (0, 1, 2, 9)]
        [0.5, 1.0, 1.0, 0.154]
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return max(0.0, 1.0 - progress) ** power
