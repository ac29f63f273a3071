"""Reading a YAML config into a pydantic model, with errors that name the file and field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def load_model(path: str | os.PathLike, model: type[Model], what: str) -> Model:
    """Parse ``path`` as YAML and validate it as ``model``; ``what`` names the file's kind.

    Raises :class:`ConfigError` for a missing file, invalid YAML, a non-mapping document or
    invalid fields (one line per field: ``file: field.path: message``).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from None


def folder_of(path: str | os.PathLike) -> Path:
    """The folder relative paths in a config are resolved against (symlinks not resolved)."""
    return Path(os.path.abspath(path)).parent
