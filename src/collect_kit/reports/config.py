"""The report config (``configs/reports/*.yaml``), validated."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, field_validator, model_validator

from ..engine import ENGINES, SparkConfig
from ..errors import ConfigError
from ..yamlconfig import Label, VersionedConfig, display, folder_of, load_model

NOTEBOOKS = (
    "segmentation", "portfolio_report", "experiment_readout", "strategy_plan", "segment_discovery",
)  # fmt: skip


class ReportConfig(VersionedConfig):
    """What a scheduled report runs: its notebooks, data, rules, language and paper.

    Paths are relative to the YAML file. ``notebooks`` lists packaged notebooks by name,
    run in this order. ``as_of``: ``latest`` (the last complete month of the data) or a
    date. ``experiments``: experiment configs read out by ``experiment_readout`` and
    summarised in the portfolio report's strategy-test section. ``plan``: the strategy
    plan config ``strategy_plan`` solves (``configs/plans/*.yaml``); ``discovery``: the
    discovery config ``segment_discovery`` runs (``configs/discovery/*.yaml``).

    Run folders: ``keep_runs`` keeps the N newest successful runs (None: all; ``latest``
    is never pruned), ``keep_failed_days`` keeps failed runs younger than D days; pruning
    happens only after a successful run. ``max_data_age_days``: warn (and with
    ``--fail-if-stale`` refuse) when the data's extraction date is older than that on the
    day of the run; absent means no check.
    """

    model_config = ConfigDict(extra="forbid")
    name: str
    title: str | Label  # one title, or one per language: {en: ..., es: ...}
    language: str = "en"  # a text catalogue: en, es, pt
    page_size: Literal["A4", "Letter"] = "A4"
    sources: str
    database: str | None = None
    #: the query engine, overriding the sources YAML's (``-p engine=`` overrides both)
    engine: Literal[ENGINES] | None = None  # type: ignore[valid-type]
    spark: SparkConfig | None = None  # Spark settings, overriding the sources YAML's
    segmentation: str
    as_of: str = "latest"
    notebooks: list[str]
    experiments: list[str] = []
    plan: str | None = None  # a strategy plan config, for the strategy_plan notebook
    discovery: str | None = None  # a discovery config, for the segment_discovery notebook
    #: snapshot columns (text or true/false: a team's own fields, region...) the portfolio
    #: report breaks its indicators down by, one table each
    breakdowns: list[str] = []
    #: for a book without dated payments (an extract): a true/false snapshot column whose
    #: cross-validated model the risk section shows, its features and L2 penalty
    risk_target: str | None = None
    risk_features: list[str | dict[str, str]] = []
    risk_penalty: float = 0.0
    #: page 1's targets: KPI of the summary tiles -> its target value (a fraction for
    #: rates, days for DSO, currency for collected, points for CEI)
    targets: dict[str, float] = {}
    keep_runs: int | None = None
    keep_failed_days: int = 30
    max_data_age_days: int | None = None

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | dict) -> str | dict:
        for words in [v] if isinstance(v, str) else v.values():
            if not words.strip() or len(words) > 200 or any(ord(c) < 32 for c in words):
                raise ValueError("must be one line of 1 to 200 characters")
        return v

    def title_in(self, language: str) -> str:
        """The report's title in ``language`` (a single title is the same in every one)."""
        return (
            self.title if isinstance(self.title, str) else display(self.title, language, self.name)
        )

    @field_validator("keep_runs", "max_data_age_days")
    @classmethod
    def _positive(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be at least 1 (leave it out for no limit), got {v}")
        return v

    @field_validator("keep_failed_days")
    @classmethod
    def _days(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must be 0 or more days, got {v}")
        return v

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        from ..catalogue import languages

        if v not in languages():
            raise ValueError(f"'{v}' has no text catalogue; one of {', '.join(languages())}")
        return v

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: dict[str, float]) -> dict[str, float]:
        from .portfolio import TILES

        for name, value in v.items():
            if name not in TILES:
                raise ValueError(f"'{name}' is not a KPI of page 1 ({', '.join(TILES)})")
            if not math.isfinite(value):
                raise ValueError(f"{name}: must be a finite number, got {value}")
        return v

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
        if "strategy_plan" in self.notebooks and not self.plan:
            raise ValueError("strategy_plan needs a plan config under 'plan'")
        if "segment_discovery" in self.notebooks and not self.discovery:
            raise ValueError("segment_discovery needs a discovery config under 'discovery'")
        return self


def config_file(path: str | os.PathLike) -> Path:
    """``path`` itself, or the packaged report config of that name (``monthly`` ->
    ``configs/reports/monthly.yaml`` inside the installed package) when ``path`` is a bare
    name that is not a file here; so an installed kit runs ``report run monthly`` from any
    folder."""
    path = Path(path)
    if path.exists() or path.suffix or len(path.parts) != 1:
        return path
    from importlib import resources

    packaged = Path(str(resources.files("collect_kit") / "configs" / "reports" / f"{path}.yaml"))
    return packaged if packaged.is_file() else path


def load_config(path: str | os.PathLike) -> tuple[ReportConfig, Path, str]:
    """Return the config, its folder (for relative paths) and its text (for the hash).

    The files it names (sources, segmentation, experiments, plan; the database when given) must
    exist: a missing one is a :class:`ConfigError` naming the field, before anything runs.
    """
    cfg = load_model(path, ReportConfig, "report config")
    base = folder_of(path)
    named = [("sources", cfg.sources), ("segmentation", cfg.segmentation)]
    named += [(f"experiments[{i}]", e) for i, e in enumerate(cfg.experiments)]
    named += [(f, getattr(cfg, f)) for f in ("plan", "discovery") if getattr(cfg, f)]
    for field, value in named:
        if not (base / value).is_file():
            raise ConfigError(
                f"{path}: {field}: '{value}' is not a file (paths are relative to the config)"
            )
    return cfg, base, Path(path).read_text(encoding="utf-8")
