"""Strategy plan configs (``configs/plans/*.yaml``), validated.

A plan says, for one segmentation, which treatments exist (their actions per customer per
month by channel and, for a discount, the share of what customers pay that is waived),
where each treatment's effect on cash collected per customer comes from (an experiment's
readout, or an effect the user states and the plan marks "assumed"), the month's
capacities and the business rules. Every amount is in the portfolio's currency; every
capacity is per month.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigError
from ..yamlconfig import Label, VersionedConfig, display, folder_of, load_model

#: a plan's or a treatment's id: it names files (``<plan_id>-<treatment>.csv``)
ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"
#: a month always holds four full weeks: a weekly contact cap allows 4 x cap a month
WEEKS_IN_A_MONTH = 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Channel(_Strict):
    """One action on a channel: what it costs (currency) and the agent minutes it takes."""

    cost: float = Field(ge=0, le=1e9, allow_inf_nan=False)
    agent_minutes: float = Field(0.0, ge=0, le=1440, allow_inf_nan=False)


class Measured(_Strict):
    """Effects read out by an experiment: its config and the arm that is this treatment."""

    experiment: str
    arm: str


class Assumed(_Strict):
    """An effect stated by the user for one segment: the change in what a customer pays in
    the month (currency, before any discount) and its standard error (how sure you are)."""

    effect: float = Field(ge=-1e9, le=1e9, allow_inf_nan=False)
    se: float = Field(ge=0, le=1e9, allow_inf_nan=False)


class Treatment(_Strict):
    """A treatment: actions per customer per month by channel, optional discount, where
    its effects come from (``measured`` for the segments the experiment read out,
    ``assumed`` per segment; the champion needs neither: its effect is 0 by definition)."""

    label: Label = {}
    actions: dict[str, float]
    agent_minutes: dict[str, float] = {}  # channel -> minutes per action, overriding the channel's
    discount: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)
    measured: Measured | None = None
    assumed: dict[str, Assumed] = {}

    @field_validator("actions", "agent_minutes")
    @classmethod
    def _counts(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items()
               if isinstance(x, bool) or not isinstance(x, int | float) or not 0 <= x <= 1000}  # fmt: skip
        if bad:
            raise ValueError(f"need numbers from 0 to 1000 per channel, got {bad}")
        return {k: float(x) for k, x in v.items()}


class Capacity(_Strict):
    """What the month allows: agent hours, spend by channel (currency), actions by channel
    (e.g. letters the print shop sends) and the total spend (currency)."""

    agent_hours: float | None = Field(None, gt=0, allow_inf_nan=False)
    budget: dict[str, float] = {}
    actions: dict[str, float] = {}
    total_cost: float | None = Field(None, gt=0, allow_inf_nan=False)

    @field_validator("budget", "actions")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not (0 < x < math.inf)}
        if bad:
            raise ValueError(f"capacities are positive numbers, got {bad}")
        return v


class Rules(_Strict):
    """Business rules. ``minimum_treatment``: no customer gets fewer actions on any channel
    than this treatment gives; ``keep_champion``: segments that stay on the champion;
    ``max_share``: treatment -> the largest share of a segment it may take;
    ``max_actions_per_week``: contact caps by channel (a treatment over 4 x the cap a
    month is refused); ``min_share`` and ``max_treatments_per_segment`` need integer
    choices (a treatment used in a segment takes at least ``min_share`` of it; at most
    that many treatments per segment)."""

    minimum_treatment: str | None = None
    keep_champion: list[str] = []
    max_share: dict[str, float] = {}
    max_actions_per_week: dict[str, float] = {}
    min_share: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False)
    max_treatments_per_segment: int | None = Field(None, ge=1)

    @field_validator("max_share")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not 0 <= x <= 1}
        if bad:
            raise ValueError(f"shares are fractions from 0 to 1 (0.5 = half), got {bad}")
        return v

    @field_validator("max_actions_per_week")
    @classmethod
    def _caps(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if not 0 <= x < math.inf}
        if bad:
            raise ValueError(f"caps are numbers of actions >= 0, got {bad}")
        return v

    @property
    def needs_integers(self) -> bool:
        return self.min_share is not None or self.max_treatments_per_segment is not None


class Robustness(_Strict):
    """Re-solves over draws of the effects: how many, the seed, the CVaR's tail share."""

    draws: int = Field(1000, ge=10, le=100_000)
    seed: int = 20261203
    cvar: float = Field(0.1, gt=0, lt=1, allow_inf_nan=False)


class PlanConfig(VersionedConfig):
    """One strategy plan (module docstring). Paths are relative to the YAML file."""

    model_config = ConfigDict(extra="forbid", strict=True)
    plan_id: str = Field(pattern=ID)
    label: Label = {}
    sources: str
    segmentation: str
    as_of: str = "latest"  # the month end whose customers the plan treats next month
    champion: str
    channels: dict[str, Channel]
    treatments: dict[str, Treatment]
    capacity: Capacity = Capacity()
    rules: Rules = Rules()
    holdout: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)
    salt: str | None = None
    robustness: Robustness = Robustness()

    @field_validator("treatments")
    @classmethod
    def _ids(cls, v: dict[str, Treatment]) -> dict[str, Treatment]:
        bad = [k for k in v if not re.match(ID, k)]
        if bad:
            raise ValueError(
                f"{bad}: a treatment id is letters, digits, '_', '-' or '.', starting with a "
                "letter or digit (it names the customer list's file)"
            )
        if not v:
            raise ValueError("list at least the champion")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> PlanConfig:
        names = list(self.treatments)
        channels = list(self.channels)
        r = self.rules
        _known("champion", [self.champion], names, "treatments")
        champ = self.treatments[self.champion]
        if champ.measured is not None or champ.assumed:
            raise ValueError(
                f"treatments.{self.champion}: the champion's effect is 0 by definition (effects "
                "are measured against it); remove its measured/assumed"
            )
        for name, t in self.treatments.items():
            _known(f"treatments.{name}", [*t.actions, *t.agent_minutes], channels, "channels")
            if name != self.champion and t.measured is None and not t.assumed:
                raise ValueError(
                    f"treatments.{name}: give its effects: measured: {{experiment, arm}} or "
                    "assumed: {segment: {effect, se}}"
                )
        _known("capacity.budget", self.capacity.budget, channels, "channels")
        _known("capacity.actions", self.capacity.actions, channels, "channels")
        _known("rules.max_share", r.max_share, names, "treatments")
        _known("rules.max_actions_per_week", r.max_actions_per_week, channels, "channels")
        if r.minimum_treatment is not None:
            _known("rules.minimum_treatment", [r.minimum_treatment], names, "treatments")
            if not dominates(champ.actions, self.treatments[r.minimum_treatment].actions):
                raise ValueError(
                    f"rules.minimum_treatment: the champion '{self.champion}' gives fewer "
                    f"actions than '{r.minimum_treatment}'; today's plan must meet the minimum"
                )
        broken = [
            f"treatments.{name}: {t.actions[ch]:g} {ch} actions a month break the contact cap "
            f"of {cap:g} a week (at most {WEEKS_IN_A_MONTH * cap:g} in the four full weeks of "
            "a month)"
            for name, t in self.treatments.items()
            for ch, cap in r.max_actions_per_week.items()
            if t.actions.get(ch, 0.0) > WEEKS_IN_A_MONTH * cap + 1e-9
        ]
        if broken:
            raise ValueError("; ".join(broken))
        return self

    def treatment_names(self, language: str) -> dict[str, str]:
        """Treatment code -> its name in ``language``."""
        return {k: display(t.label, language, k) for k, t in self.treatments.items()}

    def cost_per_customer(self) -> dict[str, float]:
        """Treatment -> the cost of its actions per customer per month (currency)."""
        return {
            k: sum(n * self.channels[ch].cost for ch, n in t.actions.items())
            for k, t in self.treatments.items()
        }

    def agent_minutes_per_customer(self) -> dict[str, float]:
        """Treatment -> agent minutes per customer per month."""
        return {
            k: sum(
                n * t.agent_minutes.get(ch, self.channels[ch].agent_minutes)
                for ch, n in t.actions.items()
            )
            for k, t in self.treatments.items()
        }


def _known(field: str, given, known: list[str], what: str) -> None:
    """Refuse names in ``given`` that are not in ``known`` (the config's ``what``)."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{field}: {unknown} are not {what} of the plan ({sorted(known)})")


def dominates(actions: dict[str, float], minimum: dict[str, float]) -> bool:
    """Whether ``actions`` give at least ``minimum``'s actions on every channel."""
    return all(actions.get(ch, 0.0) >= n - 1e-12 for ch, n in minimum.items())


def load_plan(path: str | os.PathLike) -> tuple[PlanConfig, Path]:
    """The config and its folder; the files it names must exist."""
    cfg = load_model(path, PlanConfig, "plan config")
    base = folder_of(path)
    named = {"sources": cfg.sources, "segmentation": cfg.segmentation}
    named |= {
        f"treatments.{k}.measured.experiment": t.measured.experiment
        for k, t in cfg.treatments.items()
        if t.measured is not None
    }
    for field, value in named.items():
        if not (base / value).is_file():
            raise ConfigError(
                f"{path}: {field}: '{value}' is not a file (paths are relative to the config)"
            )
    return cfg, base
