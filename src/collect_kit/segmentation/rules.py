"""The rule language: a segmentation YAML parsed into a small typed AST.

A segmentation is an ordered list of segments evaluated as a **cascade**: a customer goes to
the first segment whose condition holds; everyone else goes to the implicit ``Default``,
which is always last and has no condition (an optional ``default:`` block gives it a
description and a strategy)::

    name: consumer
    description: Consumer collections, monthly
    segments:
      - name: New customers
        description: Joined in the last 90 days
        strategy: welcome_call
        when: {column: is_new, op: "==", value: true}
      - name: High risk
        strategy: intensive
        when:
          all:
            - {column: score, op: "<", value: 550}
            - any:
                - {column: broken_promises, op: ">=", value: 1}
                - not: {column: has_valid_phone, op: "==", value: true}
    default:
      description: Everyone else
      strategy: reminders_only

A condition is ``all:`` (AND), ``any:`` (OR) or ``not:`` over conditions, nested freely,
or a leaf ``{column, op, value}`` with ``op`` one of ``== != < <= > >= in not_in between
is_null not_null``. ``in``/``not_in`` take a list, ``between`` a list of two bounds
(inclusive), ``is_null``/``not_null`` no value.

**Missing values** (two-valued logic): a leaf that compares a missing value is *false* —
``score < 550``, ``score != 550``, ``score in [...]`` and ``score not_in [...]`` are all
false where ``score`` is null. ``all``/``any``/``not`` are then ordinary boolean logic, so
``not: {column: score, op: ">", value: 5}`` is *true* for a null score. Test for missing
values explicitly with ``is_null`` / ``not_null``.

Values are literals: nothing in a rule is evaluated or pasted into SQL text.
"""

from __future__ import annotations

import datetime as dt
import difflib
import operator
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..yamlconfig import Label, VersionedConfig, check_version, read_yaml

#: The comparison ops and the functions that apply them (to Python values or Ibis columns).
COMPARATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
               ">": operator.gt, ">=": operator.ge}  # fmt: skip
COMPARISONS = tuple(COMPARATORS)
OPS = (*COMPARISONS, "in", "not_in", "between", "is_null", "not_null")
DEFAULT = "Default"
MAX_DEPTH = 32  # levels of all/any/not in one rule
MAX_SEGMENTS = 500
Scalar = str | int | float | bool | dt.date


class SegmentationError(ConfigError):
    """A segmentation cannot be parsed or evaluated; the message names file, segment and field."""


# --------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Leaf:
    """``column op value``; ``value`` is a scalar, a tuple (in, not_in, between) or None."""

    column: str
    op: str
    value: Any = None

    def __str__(self) -> str:
        if self.op in ("is_null", "not_null"):
            return f"{self.column} {self.op}"
        if self.op == "between":
            return f"{self.column} between {self.value[0]!r} and {self.value[1]!r}"
        if isinstance(self.value, tuple):
            return f"{self.column} {self.op} [{', '.join(repr(v) for v in self.value)}]"
        return f"{self.column} {self.op} {self.value!r}"


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]

    def __str__(self) -> str:
        return "(" + " AND ".join(str(i) for i in self.items) + ")"


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]

    def __str__(self) -> str:
        return "(" + " OR ".join(str(i) for i in self.items) + ")"


@dataclass(frozen=True)
class Not:
    item: Condition

    def __str__(self) -> str:
        return f"NOT {self.item}"


Condition = Leaf | All | AnyOf | Not


def leaves(cond: Condition) -> list[tuple[str, Leaf]]:
    """Every leaf of a condition with its path (``all[1].any[0]``), depth first."""
    out: list[tuple[str, Leaf]] = []

    def walk(c: Condition, path: str) -> None:
        if isinstance(c, Leaf):
            out.append((path or "when", c))
        elif isinstance(c, Not):
            walk(c.item, f"{path}.not" if path else "not")
        else:
            key = "all" if isinstance(c, All) else "any"
            for i, item in enumerate(c.items):
                walk(item, f"{path}.{key}[{i}]" if path else f"{key}[{i}]")

    walk(cond, "")
    return out


@dataclass(frozen=True)
class Segment:
    """One segment: its name, condition and the strategy its customers get."""

    name: str
    condition: Condition | None  # None only for Default
    description: str = ""
    strategy: str | None = None
    line: int | None = None  # line of the segment in its YAML file
    #: its name in reports by language ({en: Other, es: Otros}); empty: the name
    label: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def columns(self) -> list[str]:
        return (
            []
            if self.condition is None
            else sorted({leaf.column for _, leaf in leaves(self.condition)})
        )


@dataclass(frozen=True)
class RiskModel:
    """A propensity model whose ``p_pay`` the rules may read (``risk_model:`` in the YAML).

    Fitted on the snapshot of ``train_as_of`` (a month end whose labels, paid within
    ``horizon_days``, are complete) with ``features`` (None: the canonical ones) and
    ``penalty``; its ``p_pay`` is added to the snapshot being segmented, never to the
    training one. Customers owing nothing get no score (null).
    """

    train_as_of: dt.date
    horizon_days: int = 30
    features: tuple = ()
    penalty: float = 0.0


@dataclass(frozen=True)
class Segmentation:
    """An ordered cascade of segments; ``segments`` ends with the implicit Default."""

    name: str
    segments: tuple[Segment, ...]
    description: str = ""
    source: str = "<rules>"
    risk_model: RiskModel | None = None
    #: strategy code -> its name in reports by language (``strategies:`` in the YAML)
    strategy_labels: Mapping[str, Mapping[str, str]] = field(
        default_factory=dict, compare=False, hash=False
    )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    @property
    def rules(self) -> tuple[Segment, ...]:
        """The segments with a condition (all but Default), in priority order."""
        return self.segments[:-1]

    @property
    def default(self) -> Segment:
        return self.segments[-1]

    @property
    def columns(self) -> list[str]:
        """Every column a rule reads."""
        return sorted({c for s in self.rules for c in s.columns})

    def where(self, segment: str) -> str:
        """A location for messages: file, segment name and YAML line."""
        seg = next((s for s in self.segments if s.name == segment), None)
        line = f", line {seg.line}" if seg is not None and seg.line else ""
        return f"{self.source}: segment '{segment}'{line}"


# ------------------------------------------------------------------------------ parsing


def _scalar_ok(v: Any) -> bool:
    return isinstance(v, str | int | float | bool | dt.date) and v is not None


def parse_condition(raw: Any, path: str = "when", depth: int = 1) -> Condition:
    """Parse one condition tree; raise ``ValueError`` naming the path of the bad node."""
    if depth > MAX_DEPTH:
        raise ValueError(
            f"{path}: the rule tree is more than {MAX_DEPTH} levels deep; split it into segments"
        )
    if not isinstance(raw, dict):
        raise ValueError(
            f"{path}: expected a mapping (all/any/not or column/op/value), got {type(raw).__name__}"
        )
    keys = set(raw)
    for key, cls in (("all", All), ("any", AnyOf)):
        if key in keys:
            if keys != {key}:
                raise ValueError(f"{path}: '{key}' cannot be combined with {sorted(keys - {key})}")
            items = raw[key]
            if not isinstance(items, list) or not items:
                raise ValueError(f"{path}.{key}: expected a non-empty list of conditions")
            return cls(
                tuple(
                    parse_condition(item, f"{path}.{key}[{i}]", depth + 1)
                    for i, item in enumerate(items)
                )
            )
    if "not" in keys:
        if keys != {"not"}:
            raise ValueError(f"{path}: 'not' cannot be combined with {sorted(keys - {'not'})}")
        return Not(parse_condition(raw["not"], f"{path}.not", depth + 1))
    unknown = keys - {"column", "op", "value"}
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {sorted(unknown)}; a leaf has column, op and value"
        )
    if "column" not in raw or not isinstance(raw["column"], str) or not raw["column"]:
        raise ValueError(f"{path}.column: a column name is required")
    op = raw.get("op")
    if op not in OPS:
        hint = difflib.get_close_matches(str(op), OPS, n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise ValueError(f"{path}.op: '{op}' is not one of {', '.join(OPS)}{suggestion}")
    value = raw.get("value")
    has_value = "value" in raw
    if op in ("is_null", "not_null"):
        if has_value and value is not None:
            raise ValueError(f"{path}.value: '{op}' takes no value")
        return Leaf(raw["column"], op, None)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(_scalar_ok(v) for v in value):
            raise ValueError(
                f"{path}.value: '{op}' needs a non-empty list of values, got {value!r}"
            )
        return Leaf(raw["column"], op, tuple(value))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2 or not all(_scalar_ok(v) for v in value):
            raise ValueError(
                f"{path}.value: 'between' needs a list of two bounds [low, high], got {value!r}"
            )
        return Leaf(raw["column"], op, tuple(value))
    if not has_value or not _scalar_ok(value):
        raise ValueError(
            f"{path}.value: '{op}' needs one number, text, date or true/false, got {value!r}"
        )
    return Leaf(raw["column"], op, value)


class _SegmentModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    label: Label = {}
    description: str = ""
    strategy: str | None = None
    when: Any

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a segment needs a non-empty name")
        if v.strip().lower() == DEFAULT.lower():
            raise ValueError(f"'{DEFAULT}' is implicit and always last; describe it under default:")
        return v

    @field_validator("when")
    @classmethod
    def _when(cls, v: Any) -> Condition:
        return parse_condition(v)


class _DefaultModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Label = {}
    description: str = ""
    strategy: str | None = None


class _RiskModelModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_as_of: dt.date
    horizon_days: int = 30
    features: list[str | dict[str, str]] | None = None
    penalty: float = 0.0

    @field_validator("horizon_days")
    @classmethod
    def _horizon(cls, v: int) -> int:
        if not 1 <= v <= 365:
            raise ValueError(f"must be 1 to 365 days, got {v}")
        return v

    @field_validator("penalty")
    @classmethod
    def _penalty(cls, v: float) -> float:
        if not 0 <= v < float("inf"):
            raise ValueError(f"must be a finite number >= 0, got {v}")
        return v

    @field_validator("train_as_of")
    @classmethod
    def _month_end(cls, v: dt.date) -> dt.date:
        from ..periods import is_month_end

        if not is_month_end(v):
            raise ValueError(f"must be a month end (the snapshot the model learns from), got {v}")
        return v


class _SegmentationModel(VersionedConfig):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    segments: list[_SegmentModel]
    default: _DefaultModel = _DefaultModel()
    strategies: dict[str, Label] = {}  # strategy code -> its name in reports, by language
    risk_model: _RiskModelModel | None = None

    @field_validator("segments")
    @classmethod
    def _unique(cls, v: list[_SegmentModel]) -> list[_SegmentModel]:
        if len(v) > MAX_SEGMENTS:
            raise ValueError(f"at most {MAX_SEGMENTS} segments, got {len(v)}")
        seen: set[str] = set()
        for s in v:
            if s.name in seen:
                raise ValueError(f"segment name '{s.name}' is used twice; names must be unique")
            seen.add(s.name)
        return v

    @model_validator(mode="after")
    def _known_strategies(self) -> _SegmentationModel:
        used = {s.strategy for s in [*self.segments, self.default] if s.strategy}
        unknown = sorted(set(self.strategies) - used)
        if unknown:
            raise ValueError(
                f"strategies: {unknown} are not the strategy of any segment (used: {sorted(used)})"
            )
        return self


def _segment_lines(node: yaml.Node | None) -> list[int]:
    """1-based line of each item of ``segments:`` (empty if the YAML has no such list)."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "segments" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def from_dict(raw: Any, source: str = "<rules>", lines: list[int] | None = None) -> Segmentation:
    """Build a :class:`Segmentation` from parsed YAML; errors name source, segment and field."""
    lines = lines or []
    if not isinstance(raw, dict):
        raise SegmentationError(
            f"{source}: expected a mapping with name and segments, got {type(raw).__name__}"
        )
    try:
        model = _SegmentationModel.model_validate(raw)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = source
            if len(loc) >= 2 and loc[0] == "segments" and isinstance(loc[1], int):
                i = loc[1]
                items = raw.get("segments") or []
                name = (
                    items[i].get("name", f"#{i + 1}")
                    if i < len(items) and isinstance(items[i], dict)
                    else f"#{i + 1}"
                )
                line = f", line {lines[i]}" if i < len(lines) else ""
                where = f"{source}: segment '{name}'{line}"
                loc = loc[2:]
            field = ".".join(str(p) for p in loc if p not in ("function-after",)) or "(segment)"
            msg = err["msg"].removeprefix("Value error, ")
            messages.append(f"{where}: {field}: {msg}")
        raise SegmentationError("\n".join(messages)) from None
    segments = [
        Segment(
            s.name,
            s.when,
            s.description,
            s.strategy,
            lines[i] if i < len(lines) else None,
            dict(s.label),
        )
        for i, s in enumerate(model.segments)
    ]
    d = model.default
    segments.append(Segment(DEFAULT, None, d.description, d.strategy, label=dict(d.label)))
    risk_model = None
    if model.risk_model is not None:
        r = model.risk_model
        risk_model = RiskModel(r.train_as_of, r.horizon_days, tuple(r.features or ()), r.penalty)
    strategies = {k: dict(v) for k, v in model.strategies.items()}
    return Segmentation(
        model.name, tuple(segments), model.description, source, risk_model, strategies
    )


def load(path: str | os.PathLike) -> Segmentation:
    """Read and check a segmentation YAML (``configs/segments/*.yaml``).

    Read with the kit's safe YAML reader (size, alias and depth limits); at most
    :data:`MAX_SEGMENTS` segments and rule trees at most :data:`MAX_DEPTH` levels deep.
    """
    path = Path(path)
    try:
        raw, _, node = read_yaml(path, "segmentation file")
    except SegmentationError:
        raise
    except ConfigError as exc:
        raise SegmentationError(str(exc)) from None
    if isinstance(raw, dict):
        try:
            check_version(raw, _SegmentationModel, str(path))
        except ConfigError as exc:
            raise SegmentationError(str(exc)) from None
    return from_dict(raw, str(path), _segment_lines(node))
