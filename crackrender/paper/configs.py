"""Training configs of the tables' rows: ``configs/paper/base.yaml`` (the paper's recipe), then
the row's ``configs/paper/<run>.yaml`` (name and model), then, in quick mode, ``quick.yaml``.

Each file is a partial experiment config in ``crackrender train``'s schema, so they merge with
the same rules (``load_config``'s overrides) and every one also loads on its own.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from crackrender.errors import CrackRenderError
from crackrender.train.config import load_config, read_config_file

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "paper"
BASE, QUICK = "base", "quick"


def config_path(name: str, config_dir: Path | None = None) -> Path:
    path = (config_dir or CONFIG_DIR) / f"{name}.yaml"
    if not path.is_file():
        raise CrackRenderError(f"no paper config {path} (the tables need the repository's configs/paper/)")
    return path


def _as_overrides(section: dict) -> list[str]:
    # JSON is valid YAML flow syntax, so each top-level section becomes one `key=value` override
    # and load_config merges it (nested dicts key by key) and checks every key as `train` does.
    return [f"{key}={json.dumps(value)}" for key, value in section.items()]


def model_keywords(name: str) -> set[str] | None:
    """Keyword arguments the registered model ``name`` accepts (None: any, or unknown model)."""
    from crackrender.models import MODELS

    cls = MODELS.get(name)
    if cls is None:
        return None
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name != "self"}


def row_config(run: str, *, quick: bool = False, overrides: list[str] | tuple[str, ...] = (),
               config_dir: Path | None = None) -> dict:
    """The merged training config of run ``run`` (e.g. ``cbprn-k2``).

    Examples:
        >>> cfg = row_config("cbprn-k0", quick=True)
        >>> cfg["name"], cfg["model"]["band_k"], cfg["model"]["backbone"], cfg["optim"]["lr"]
        ('cbprn-k0', 0, 'resnet18', 0.003)
    """
    row = read_config_file(config_path(run, config_dir))
    if row.get("name") != run:
        raise CrackRenderError(f"{config_path(run, config_dir)}: name must be {run!r}, got {row.get('name')!r}")
    layers = _as_overrides(row)
    if quick:
        extra = read_config_file(config_path(QUICK, config_dir))
        model_name = row.get("model", {}).get("name", "cbprn")
        accepted = model_keywords(model_name)
        # quick.yaml's model widths apply where the row's model takes them (PointRend has no edge_dim)
        extra["model"] = {k: v for k, v in extra.get("model", {}).items() if accepted is None or k in accepted}
        layers += _as_overrides(extra)
    return load_config(config_path(BASE, config_dir), [*layers, *overrides])
