"""The report config (``configs/reports/*.yaml``), validated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..yamlconfig import folder_of, load_model

NOTEBOOKS = ("segmentation", "portfolio_report", "experiment_readout")


class ReportConfig(BaseModel):
    """What a scheduled report runs: its notebooks, data, rules, language and paper.

    Paths are relative to the YAML file. ``notebooks`` lists packaged notebooks by name,
    run in this order. ``as_of``: ``latest`` (the last complete month of the data) or a
    date. ``experiments``: experiment configs read out by ``experiment_readout`` and
    summarised in the portfolio report's strategy-test section.
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
    experiments: list[str] = []

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

    @model_validator(mode="after")
    def _experiments_for_readout(self) -> ReportConfig:
        if "experiment_readout" in self.notebooks and not self.experiments:
            raise ValueError("experiment_readout needs at least one config under 'experiments'")
        return self


def load_config(path: str | os.PathLike) -> tuple[ReportConfig, Path, str]:
    """Return the config, its folder (for relative paths) and its text (for the hash)."""
    cfg = load_model(path, ReportConfig, "report config")
    return cfg, folder_of(path), Path(path).read_text(encoding="utf-8")
