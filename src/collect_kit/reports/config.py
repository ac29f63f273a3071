"""The report config (``configs/reports/*.yaml``), validated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import ConfigError

NOTEBOOKS = ("segmentation", "portfolio_report", "experiment_readout")


class ReportConfig(BaseModel):
    """What a scheduled report runs: its notebooks, data, rules, language and paper.

    Paths are relative to the YAML file. ``notebooks`` lists packaged notebooks by name,
    run in this order. ``as_of``: ``latest`` (the last complete month of the data) or a
    date.
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    language: Literal["en", "es"] = "en"
    page_size: Literal["A4", "Letter"] = "A4"
    sources: str
    database: str | None = None
    segmentation: str
    as_of: str = "latest"
    notebooks: list[str]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "-_" for c in v):
            raise ValueError(f"'{v}' must be letters, digits, '-' or '_' (it names a folder)")
        return v

    @field_validator("notebooks")
    @classmethod
    def _notebooks(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one notebook")
        for name in v:
            if name not in NOTEBOOKS:
                raise ValueError(f"'{name}' is not one of {', '.join(NOTEBOOKS)}")
        return v


def load_config(path: str | os.PathLike) -> tuple[ReportConfig, Path, str]:
    """Return the config, its folder (for relative paths) and its text (for the hash)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"report config '{path}' does not exist") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        cfg = ReportConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from None
    return cfg, Path(os.path.abspath(path)).parent, text
