"""A model's settings, declared once: the keyword arguments of its ``__init__`` (plus the fields of
one grouped dataclass, such as the encoder's options) are recorded as ``model.config`` when it is
built, the way smp's hub mixin records its models' arguments. A model file stores that config and
rebuilds the architecture from it, so a new setting is one new keyword, never a hand-kept dict.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable

__all__ = ["plain", "record_settings", "settings_signature"]


def plain(value):
    """``value`` in JSON's own shapes (tuples become lists, copied), as a model file stores it.

    Examples:
        >>> plain({"strata_ratios": (0.3, 0.4, 0.3)})
        {'strata_ratios': [0.3, 0.4, 0.3]}
    """
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def settings_signature(init: Callable, group: type | None = None) -> inspect.Signature:
    """``init``'s signature, its ``**options`` replaced by ``group``'s dataclass fields (keyword-only,
    with their defaults) placed first, so tools that read the signature see every setting.

    Examples:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Widths:
        ...     dim: int = 8
        >>> def init(self, *, depth: int = 2, **widths): ...
        >>> [(p.name, p.default) for p in settings_signature(init, Widths).parameters.values()][1:]
        [('dim', 8), ('depth', 2)]
    """
    sig = inspect.signature(init)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    takes_options = len(params) < len(sig.parameters)
    if takes_options != (group is not None):
        raise TypeError(f"{init.__qualname__} must take **options exactly when its class groups options "
                        f"(group: {group!r})")
    if group is None:
        return sig
    grouped = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
               for f in dataclasses.fields(group)]
    return sig.replace(parameters=[params[0], *grouped, *params[1:]])


def record_settings(init: Callable, group: type | None = None) -> Callable:
    """Wrap a model's ``__init__`` so that, once it has run, ``self.config`` holds the class's
    registry ``name`` and every setting (given or default) in signature order. An unknown or
    positional setting is refused before ``init`` runs, with Python's usual TypeError. A subclass's
    wrapper runs last, so the most derived class's settings win."""
    sig = settings_signature(init, group)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        settings = {k: plain(v) for k, v in list(bound.arguments.items())[1:]}
        init(self, *args, **kwargs)
        self.config = {"name": type(self).name, **settings}

    wrapper.__signature__ = sig
    return wrapper
