"""Experiment configs (``configs/experiments/*.yaml``), validated."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigError
from ..yamlconfig import Label, VersionedConfig, display, folder_of, load_model
from .metrics import BUILT_IN, MetricSpec

#: a declared metric's name
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ExperimentConfig(VersionedConfig):
    """One champion/challenger experiment: arms and weights, windows, test settings.

    ``arms``: arm -> weight for every segment, or segment -> {arm: weight}; the first arm is
    the champion. ``aa``: the arms are identical (an A/A calibration check). Paths are
    relative to the YAML file. The strategy's cost, netted from the money a roll-out
    brings: ``cost_per_customer`` (arm -> currency) when given; else the actions of the
    outcome window in ``contacts``, each priced by ``cost_per_action`` (channel ->
    currency) or its own ``cost``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    experiment_id: str
    label: Label = {}  # the experiment's name in reports, by language: {en: ..., es: ...}
    description: str | Label = ""  # one text, or one per language like label
    sources: str
    segmentation: str | None = None
    segments: list[str] | None = None  # the segments in the test (default: all; see test_segments)
    salt: str | None = None
    arms: dict[str, float] | dict[str, dict[str, float]]
    arm_labels: dict[str, Label] = {}  # arm -> its name in reports, by language
    window_days: int = Field(30, ge=1, le=730)
    pre_days: int = Field(90, ge=1, le=730)
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    mde_payer_rate: float = 0.03
    mde_amount: float | None = Field(None, gt=0, allow_inf_nan=False)
    mde_recovery_rate: float | None = Field(None, gt=0, lt=1)
    cost_per_customer: dict[str, float] = {}  # arm -> extra cost per customer (currency)
    cost_per_action: dict[str, float] = {}  # channel -> cost of one action (currency)
    winsorize: float | None = Field(None, gt=0.5, lt=1)  # e.g. 0.99: cap at that quantile
    aa: bool = False
    primary_metric: str = "collected_per_customer"
    metrics: dict[str, MetricSpec] = {}
    cuped: bool = True
    cuped_theta: Literal["within_arm", "pooled"] = "within_arm"
    score_correction: bool = True
    sequential: bool = False
    sequential_tuning: int | None = Field(None, ge=2)

    @model_validator(mode="after")
    def _primary(self) -> ExperimentConfig:
        if self.segments is not None:
            if not self.segments or len(set(self.segments)) < len(self.segments):
                raise ValueError("segments: list each segment in the test once")
            if self.nested_arms and (missing := [s for s in self.segments if s not in self.arms]):
                raise ValueError(f"segments: {missing} have no weights under arms")
        arms = self.arm_names()
        if "champion" in arms and arms[0] != "champion":
            raise ValueError(
                f"arms: the first arm is the champion, but an arm named 'champion' is listed "
                f"after '{arms[0]}'; list it first"
            )
        unlabelled = sorted(set(self.arm_labels) - set(arms))
        if unlabelled:
            raise ValueError(f"arm_labels: {unlabelled} are not arms of the design {arms}")
        unknown = sorted(set(self.cost_per_customer) - set(self.arm_names()))
        if unknown:
            raise ValueError(
                f"cost_per_customer: {unknown} are not arms of the design {self.arm_names()}"
            )
        clash = sorted(set(self.metrics) & set(BUILT_IN))
        if clash:
            raise ValueError(f"metrics: {clash} are built-in metric names; choose other names")
        specs = self.metric_specs()
        if self.primary_metric not in specs:
            raise ValueError(
                f"primary_metric: '{self.primary_metric}' is not a metric; one of {sorted(specs)}"
            )
        if specs[self.primary_metric].mde is None:
            hint = {"collected_per_customer": "set mde_amount (currency per customer)",
                    "recovery_rate": "set mde_recovery_rate (a fraction: 0.05 = 5 points)"}.get(
                self.primary_metric, f"give metrics: {self.primary_metric}: mde")  # fmt: skip
            raise ValueError(
                f"primary_metric: '{self.primary_metric}' needs the smallest effect worth "
                f"detecting (its MDE): {hint}, or use primary_metric: payer_rate "
                "(mde_payer_rate, default 0.03)"
            )
        return self

    def display_names(self, language: str) -> dict[str, str]:
        """The experiment's and its arms' names in ``language`` (code -> words), for the
        ones the config labels."""
        out = {a: display(w, language, a) for a, w in self.arm_labels.items()}
        if self.label:
            out[self.experiment_id] = display(self.label, language, self.experiment_id)
        return out

    def describe(self, language: str) -> str:
        """The description in ``language`` (a plain description is the same in every one)."""
        d = self.description
        return d if isinstance(d, str) else display(d, language, "")

    def metric_specs(self) -> dict[str, MetricSpec]:
        """Every metric read out: the built-in ones (their MDEs from ``mde_payer_rate`` and
        ``mde_amount``) then the declared ones, in that order."""
        out = {n: s.model_copy() for n, s in BUILT_IN.items()}
        out["payer_rate"].mde = self.mde_payer_rate
        out["collected_per_customer"].mde = self.mde_amount
        out["recovery_rate"].mde = self.mde_recovery_rate
        return out | dict(self.metrics)

    @field_validator("arms", mode="before")
    @classmethod
    def _arms(cls, v):
        shape = "arm -> weight ({champion: 0.8, challenger: 0.2}) or segment -> {arm: weight}"
        if not isinstance(v, dict) or not v:
            raise ValueError(f"expected {shape}, got {v!r}")
        nested = [isinstance(x, dict) for x in v.values()]
        if any(nested) and not all(nested):
            raise ValueError(f"mixes weights and segments; expected {shape}")
        per = v if all(nested) else {None: v}
        out = {}
        for seg, w in per.items():
            where = "" if seg is None else f"segment '{seg}': "
            bad = {arm: x for arm, x in w.items()
                   if isinstance(x, bool) or not isinstance(x, int | float) or not 0 <= x < float("inf")}  # fmt: skip
            if bad:
                raise ValueError(f"{where}a weight is a number >= 0, got {bad}")
            if len(w) < 2:
                raise ValueError(
                    f"{where}an experiment needs a champion and at least one challenger, got {list(w)}"
                )
            if sum(w.values()) <= 0:
                raise ValueError(f"{where}weights must not all be zero, got {w}")
            weights = {str(arm): float(x) for arm, x in w.items()}
            if seg is None:
                return weights
            out[str(seg)] = weights
        return out

    def test_segments(self) -> list[str] | None:
        """The segments in the test: ``segments`` when given, else the keys of per-segment
        ``arms``, else None (every segment of the segmentation)."""
        if self.segments is not None:
            return list(self.segments)
        return list(self.arms) if self.nested_arms else None

    def arm_names(self) -> list[str]:
        """Every arm of the design, the champion first."""
        per = self.arms.values() if self.nested_arms else [self.arms]
        return list(dict.fromkeys(arm for w in per for arm in w))

    @property
    def nested_arms(self) -> bool:
        """The weights are given per segment."""
        return all(isinstance(v, dict) for v in self.arms.values())

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, v: dict[str, MetricSpec]) -> dict[str, MetricSpec]:
        for name in v:
            if not NAME.match(name):
                raise ValueError(
                    f"'{name}': a metric name is lower case letters, digits and _, starting "
                    "with a letter (it names columns and report rows)"
                )
        return v

    @field_validator("mde_payer_rate")
    @classmethod
    def _mde_rate(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(f"must be a lift in (0, 1) as a fraction (0.03 = 3 points), got {v}")
        return v

    @field_validator("cost_per_customer", "cost_per_action")
    @classmethod
    def _costs(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not (0 <= x <= 1e12)}
        if bad:
            raise ValueError(f"costs are currency amounts from 0 to 1e12, got {bad}")
        return v

    @field_validator("experiment_id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a non-empty id")
        return v


def load_experiment(path: str | os.PathLike) -> tuple[ExperimentConfig, Path]:
    """The config and its folder (for relative paths); the files it names must exist."""
    cfg = load_model(path, ExperimentConfig, "experiment config")
    base = folder_of(path)
    for field in ("sources", "segmentation"):
        value = getattr(cfg, field)
        if value is not None and not (base / value).is_file():
            raise ConfigError(
                f"{path}: {field}: '{value}' is not a file (paths are relative to the config)"
            )
    return cfg, base
