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

__all__ = ["option_parameters", "plain", "record_settings", "settings_signature"]


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


def option_parameters(group: type | None) -> list[inspect.Parameter]:
    """A frozen dataclass's fields as keyword-only parameters with their defaults (none for None).

    Examples:
        >>> from crackrender.models.encoder import EncoderOptions
        >>> [p.name for p in option_parameters(EncoderOptions)][:3]
        ['backbone', 'pretrained', 'edge']
    """
    if group is None:
        return []
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
            for f in dataclasses.fields(group)]


def settings_signature(init: Callable, inherited: list[inspect.Parameter]) -> inspect.Signature:
    """``init``'s signature, its ``**options`` replaced by the ``inherited`` keyword-only parameters
    (an option group's fields, or the settings of the model it extends) placed first, so tools
    that read the signature see every setting.

    Examples:
        >>> @dataclasses.dataclass(frozen=True)
        ... class Widths:
        ...     dim: int = 8
        >>> def init(self, *, depth: int = 2, **widths): ...
        >>> [(p.name, p.default) for p in settings_signature(init, option_parameters(Widths)).parameters.values()][1:]
        [('dim', 8), ('depth', 2)]
    """
    sig = inspect.signature(init)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if len(params) == len(sig.parameters):
        return sig
    if not inherited:
        raise TypeError(f"{init.__qualname__} takes **options, but its class has no option_group to expand them")
    return sig.replace(parameters=[params[0], *inherited, *params[1:]])


def record_settings(init: Callable, inherited: list[inspect.Parameter]) -> Callable:
    """Wrap a model's ``__init__`` so that, once it has run, ``self.config`` holds the class's
    registry ``name`` and every setting (given or default) in signature order. An unknown or
    positional setting is refused before ``init`` runs, with Python's usual TypeError. A subclass's
    wrapper runs last, so the most derived class's settings win.

    Examples:
        >>> class Model:
        ...     name = "toy"
        ...     def __init__(self, *, width: int = 4, ratios=(1, 2)): ...
        >>> Model.__init__ = record_settings(Model.__init__, [])
        >>> Model(width=8).config
        {'name': 'toy', 'width': 8, 'ratios': [1, 2]}
    """
    sig = settings_signature(init, inherited)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        settings = {k: plain(v) for k, v in list(bound.arguments.items())[1:]}
        init(self, *args, **kwargs)
        self.config = {"name": type(self).name, **settings}

    wrapper.__signature__ = sig
    return wrapper
