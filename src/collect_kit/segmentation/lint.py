"""Static checks of a segmentation, from the rules alone (and the column types).

Findings, each a row of :func:`lint`'s table (severity, segment, path, check, message):

- ``type_mismatch`` (error): a literal of another type than its column (text vs number,
  date vs number, an order on true/false);
- ``inverted_between``: ``between [high, low]`` is never true;
- ``contradiction``: leaves joined by ``all`` that no value can satisfy together
  (``balance > 100`` and ``balance < 50``, ``== 'a'`` and ``== 'b'``);
- ``unreachable``: every customer the segment's condition can select is already taken by
  an earlier segment (decided where conditions are leaves, ``all`` of leaves, or an
  earlier ``any`` of those).

Empty ``in``/``not_in`` lists, duplicated segment names and a segment called ``Default``
are rejected when the YAML is
loaded; unknown columns are errors, not lint (:func:`~.compile.check_columns`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import pandas as pd

from .compile import check_columns
from .rules import COMPARATORS, All, AnyOf, Condition, Leaf, Segmentation, leaves

LINT_COLUMNS = ["severity", "segment", "path", "check", "message"]


@dataclass
class _Range:
    """What a conjunction of leaves says about one column."""

    values: set | None = None  # allowed values (from == / in); None = unrestricted
    excluded: set = field(default_factory=set)  # from != / not_in
    lo: object = None
    lo_incl: bool = True
    hi: object = None
    hi_incl: bool = True
    non_null: bool = False
    null: bool = False

    def add(self, leaf: Leaf) -> None:
        op, v = leaf.op, leaf.value
        if op == "is_null":
            self.null = True
            return
        self.non_null = True
        if op == "not_null":
            return
        if op == "==":
            self.values = {v} if self.values is None else self.values & {v}
        elif op == "in":
            self.values = set(v) if self.values is None else self.values & set(v)
        elif op == "!=":
            self.excluded.add(v)
        elif op == "not_in":
            self.excluded |= set(v)
        elif op == "between":
            self._lower(v[0], True)
            self._upper(v[1], True)
        elif op in (">", ">="):
            self._lower(v, op == ">=")
        elif op in ("<", "<="):
            self._upper(v, op == "<=")

    def _lower(self, v, incl: bool) -> None:
        if self.lo is None or v > self.lo or (v == self.lo and not incl):
            self.lo, self.lo_incl = v, incl

    def _upper(self, v, incl: bool) -> None:
        if self.hi is None or v < self.hi or (v == self.hi and not incl):
            self.hi, self.hi_incl = v, incl

    def admits(self, x) -> bool:
        """Whether value ``x`` satisfies every constraint (not the null ones)."""
        if self.values is not None and x not in self.values:
            return False
        if x in self.excluded:
            return False
        if self.lo is not None and (x < self.lo or (x == self.lo and not self.lo_incl)):
            return False
        return not (self.hi is not None and (x > self.hi or (x == self.hi and not self.hi_incl)))

    @property
    def empty(self) -> bool:
        if self.null and self.non_null:
            return True
        if self.values is not None:
            return not any(self.admits(x) for x in self.values)
        if self.lo is not None and self.hi is not None:
            if self.lo > self.hi:
                return True
            if self.lo == self.hi and not (self.lo_incl and self.hi_incl):
                return True
        return False

    def implies(self, leaf: Leaf) -> bool:
        """Whether every value allowed here satisfies ``leaf`` (False when undecidable)."""
        op, v = leaf.op, leaf.value
        if op == "is_null":
            return self.null
        if op == "not_null":
            return self.non_null
        if not self.non_null:
            return False  # a null satisfies no comparison, and nothing here excludes nulls
        if self.values is not None:
            candidates = [x for x in self.values if self.admits(x)]
            return all(_holds(x, op, v) for x in candidates)
        if op in ("!=", "not_in"):
            banned = {v} if op == "!=" else set(v)
            return all(not self.admits_number(b) for b in banned)
        if op in (">", ">="):
            return self.lo is not None and (
                self.lo > v or (self.lo == v and (op == ">=" or not self.lo_incl))
            )
        if op in ("<", "<="):
            return self.hi is not None and (
                self.hi < v or (self.hi == v and (op == "<=" or not self.hi_incl))
            )
        if op == "between":
            return self.implies(Leaf(leaf.column, ">=", v[0])) and self.implies(
                Leaf(leaf.column, "<=", v[1])
            )
        return False

    def admits_number(self, x) -> bool:
        try:
            return self.admits(x)
        except TypeError:
            return True


def _holds(x, op: str, v) -> bool:
    try:
        if op in COMPARATORS:
            return COMPARATORS[op](x, v)
        if op == "between":
            return v[0] <= x <= v[1]
        return (x in v) if op == "in" else (x not in v)
    except TypeError:
        return False


def _conjunction(cond: Condition) -> list[Leaf] | None:
    """The leaves of a leaf or of (nested) ``all`` of leaves; None for other shapes."""
    if isinstance(cond, Leaf):
        return [cond]
    if isinstance(cond, All):
        out: list[Leaf] = []
        for item in cond.items:
            sub = _conjunction(item)
            if sub is None:
                return None
            out += sub
        return out
    return None


def _ranges(conj: list[Leaf]) -> dict[str, _Range]:
    ranges: dict[str, _Range] = {}
    for leaf in conj:
        # values of mixed types are a type problem, reported by check_columns
        with contextlib.suppress(TypeError):
            ranges.setdefault(leaf.column, _Range()).add(leaf)
    return ranges


def _implies(conj: list[Leaf], cond: Condition) -> bool:
    """Whether the conjunction ``conj`` implies ``cond`` (decided only for simple shapes)."""
    if isinstance(cond, AnyOf):
        return any(_implies(conj, item) for item in cond.items)
    target = _conjunction(cond)
    if target is None:
        return False
    ranges = _ranges(conj)
    try:
        return all(leaf.column in ranges and ranges[leaf.column].implies(leaf) for leaf in target)
    except TypeError:
        return False


def _all_nodes(cond: Condition, path: str = ""):
    """Every ``all`` node (and a lone leaf) with its path, for contradiction checks."""
    if isinstance(cond, Leaf):
        if not path:
            yield "when", [cond]
        return
    if isinstance(cond, All):
        direct = [i for i in cond.items if isinstance(i, Leaf)]
        if direct:
            yield path or "when", direct
    key = "all" if isinstance(cond, All) else "any" if isinstance(cond, AnyOf) else None
    if key is None:  # Not
        yield from _all_nodes(cond.item, f"{path}.not" if path else "not")
        return
    for i, item in enumerate(cond.items):
        yield from _all_nodes(item, f"{path}.{key}[{i}]" if path else f"{key}[{i}]")


def lint(segmentation: Segmentation, schema=None) -> pd.DataFrame:
    """Static findings about the rules (module docstring), one row each.

    With an Ibis ``schema`` of the data, literal/column type mismatches are included
    (severity ``error``); unknown columns are not lint and are left to the caller.
    """
    rows: list[dict] = []

    def add(severity, segment, path, check, message):
        rows.append(
            dict(severity=severity, segment=segment, path=path, check=check, message=message)
        )

    if schema is not None:
        for issue in check_columns(segmentation, schema):
            if issue.kind == "type_mismatch":
                add("error", issue.segment, issue.path, issue.kind, issue.message)
    earlier: list[tuple[str, Condition]] = []
    for seg in segmentation.rules:
        for path, leaf in leaves(seg.condition):
            if leaf.op == "between" and _gt(leaf.value[0], leaf.value[1]):
                add("warning", seg.name, path, "inverted_between",
                    f"{leaf}: the low bound is above the high bound, so it is never true")  # fmt: skip
        for path, group in _all_nodes(seg.condition):
            for column, rng in _ranges(group).items():
                if len([g for g in group if g.column == column]) > 1 and rng.empty:
                    text = " and ".join(str(g) for g in group if g.column == column)
                    add(
                        "warning",
                        seg.name,
                        path,
                        "contradiction",
                        f"{text} can never hold together",
                    )
        conj = _conjunction(seg.condition)
        # a contradictory condition selects nobody: reported above, not as unreachable
        if conj is not None and not any(r.empty for r in _ranges(conj).values()):
            for name, cond in earlier:
                if _implies(conj, cond):
                    add("warning", seg.name, "when", "unreachable",
                        f"every customer it can select satisfies the earlier segment '{name}' first")  # fmt: skip
                    break
        earlier.append((seg.name, seg.condition))
    return pd.DataFrame(rows, columns=LINT_COLUMNS)


def _gt(a, b) -> bool:
    try:
        return a > b and not (isinstance(a, float) and math.isnan(a))
    except TypeError:
        return False
