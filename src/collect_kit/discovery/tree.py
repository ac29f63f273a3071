"""A fitted decision tree as an ordered YAML cascade an analyst can read, edit and own.

Each leaf of a scikit-learn tree is the ``all:`` of its path's splits. A numeric split
``x <= t`` is written with ``t`` rounded once to a readable value (the fewest significant
digits that move at most ``1 % / splits`` of the training customers across it; an integer
column keeps its split exactly), and both branches use the same rounded ``t``, so leaves
stay disjoint and together cover everyone. Missing values follow the tree: a split that
sends them to its side is written ``any: [{column, is_null}, {column <= t}]`` (or the ``>``
form); a one-hot category split ``column == value`` likewise. Splits on one column along a
path are merged into one range.

The tree grows on a random half of the customers; leaves whose payer rates on the other
half do not differ (adjacent in rate order, two-proportion z-test p >= ``merge_alpha``, or
closer than ``min_gap``) become one segment (``any:`` of their paths, joined where they
touch): the tree's noise splits, which look different on the data that chose them, do not
become segments of their own. Segments are ordered by descending payer rate, named from
their conditions ("DPD 31-90, overdue balance over 500 k") and the last, the lowest payer
rate, is the implicit Default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.stats import norm

#: the longest generated segment name (characters)
NAME_LENGTH = 80
#: share of the training customers rounding may move across all splits together
ROUNDING_BUDGET = 0.01
#: short names of canonical columns in generated segment names
SHORT = {
    "max_days_past_due": "DPD", "overdue_balance": "overdue balance", "balance": "balance",
    "score": "score", "p_pay": "P(pay)", "broken_promises": "broken promises",
    "months_delinquent": "months delinquent", "open_receivables": "open receivables",
    "avg_days_late": "days late (mean)", "days_since_last_payment": "days since a payment",
    "late_payments": "late payments", "contact_attempts": "contact attempts",
    "right_party_contacts": "contacts reached", "tenure_days": "days as a customer",
    "has_valid_phone": "valid phone", "customer_type": "customer type",
}  # fmt: skip


@dataclass(frozen=True)
class Range:
    """One column's condition on a path: ``low < x <= high`` (None: unbounded) for a number
    (``kind`` ``number`` or ``integer``), ``equals`` / ``not_equals`` values for a
    ``category``, ``equals`` True or False for a ``bool``; ``nulls``: missing values take
    this path."""

    column: str
    kind: str
    low: float | None = None
    high: float | None = None
    equals: str | bool | None = None
    not_equals: tuple[str, ...] = ()
    nulls: bool = True
    #: the training data had missing values in the column (names say "or missing" only then)
    seen_nulls: bool = False

    @property
    def integer(self) -> bool:
        return self.kind == "integer"


@dataclass
class Path:
    """A leaf: its ranges (one per column) and the training customers and payers in it."""

    ranges: list[Range]
    customers: int
    payers: float

    @property
    def rate(self) -> float:
        return self.payers / self.customers if self.customers else float("nan")


@dataclass
class Proposal:
    """A cascade proposed from a tree: ``segments`` (each a list of leaf paths, highest payer
    rate first, the last becoming Default), the fitted ``tree`` and ``features`` (the
    model's columns), and ``moved``: the share of training customers rounding moved."""

    segments: list[list[Path]]
    tree: object
    features: list[str]
    moved: float = 0.0
    names: list[str] = field(default_factory=list)


def design_matrix(
    frame: pd.DataFrame, columns: list[str], max_levels: int = 10
) -> tuple[pd.DataFrame, dict]:
    """Numbers for the tree: numeric and true/false columns as floats (missing: NaN), a text
    column as one 0/1 column per frequent value (``column=value``; missing: NaN). Returns
    the matrix and ``kinds``: model column -> (column, kind, value)."""
    out, kinds = {}, {}
    for c in columns:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s) or (s.dtype == object and s.dropna().map(type).eq(bool).all()
                                              and s.notna().any()):  # fmt: skip
            out[c] = s.astype("float64")
            kinds[c] = (c, "bool", None)
        elif pd.api.types.is_numeric_dtype(s):
            out[c] = s.astype("float64")
            values = out[c].dropna()
            kinds[c] = (
                c,
                "integer" if len(values) and (values == values.round()).all() else "number",
                None,
            )
        else:
            top = s.dropna().astype(str).value_counts().index[:max_levels]
            for v in top:
                name = f"{c}={v}"
                out[name] = np.where(s.isna(), np.nan, (s.astype(str) == v).astype(float))
                kinds[name] = (c, "category", str(v))
    return pd.DataFrame(out, index=frame.index), kinds


def _round(t: float, values: np.ndarray, budget: int, integer: bool) -> float:
    """``t`` rounded to the fewest significant digits that move at most ``budget`` of
    ``values`` across it (an integer column falls back to its exact split, ``floor(t)``)."""
    exact = float(math.floor(t)) if integer else float(t)
    if t == 0:
        return 0.0
    for digits in range(1, 16):
        r = float(f"{t:.{digits}g}")
        lo, hi = min(r, t), max(r, t)
        if int(((values > lo) & (values <= hi)).sum()) <= budget:
            return r
        if integer and abs(r - exact) < 1:
            break
    return exact


def paths(tree, X: pd.DataFrame, kinds: dict, y: np.ndarray) -> tuple[list[Path], float]:
    """Every leaf's path with rounded thresholds, and the share of training customers whose
    leaf the rounding changed."""
    tr = tree.tree_
    splits = int((tr.children_left >= 0).sum())
    budget = int(ROUNDING_BUDGET * len(X) / max(splits, 1))
    rounded = tr.threshold.copy()
    values = X.to_numpy()
    seen = {kinds[c][0] for c in X.columns[np.isnan(values).any(axis=0)]}
    for node in np.nonzero(tr.children_left >= 0)[0]:
        col = X.columns[tr.feature[node]]
        kind = kinds[col][1]
        if kind in ("bool", "category"):
            rounded[node] = 0.5
        else:
            rounded[node] = _round(
                tr.threshold[node], values[:, tr.feature[node]], budget, kind == "integer"
            )
    out: list[Path] = []

    def walk(node: int, conds: list[tuple[str, bool, float, bool]]):
        if tr.children_left[node] < 0:
            out.append(_path(conds, kinds, seen))
            return
        col = X.columns[tr.feature[node]]
        nan_left = bool(tr.missing_go_to_left[node])
        walk(tr.children_left[node], conds + [(col, True, rounded[node], nan_left)])
        walk(tr.children_right[node], conds + [(col, False, rounded[node], not nan_left)])

    walk(0, [])
    # training customers and payers per leaf, by the rules as written (rounded thresholds)
    leaf_of = leaf_index(out, X, kinds)
    true_leaf = tree.apply(X.to_numpy())
    leaves = np.nonzero(tr.children_left < 0)[0]
    moved = float((leaves[leaf_of] != true_leaf).mean()) if len(X) else 0.0
    counts = np.bincount(leaf_of, minlength=len(out))
    payers = np.bincount(leaf_of, weights=y.astype(float), minlength=len(out))
    for i, p in enumerate(out):
        p.customers, p.payers = int(counts[i]), float(payers[i])
    return out, moved


def _path(conds, kinds: dict, seen: set[str]) -> Path:
    """Merge a path's splits into one range per column (leaf stats filled later)."""
    by_col: dict[str, Range] = {}
    for model_col, left, t, nulls in conds:
        column, kind, value = kinds[model_col]
        r = by_col.get(column, Range(column, kind, seen_nulls=column in seen))
        r = replace(r, nulls=r.nulls and nulls)
        if kind == "category":
            r = replace(r, not_equals=(*r.not_equals, value)) if left else replace(r, equals=value)
        elif kind == "bool":
            r = replace(r, equals=not left)
        elif left:
            r = replace(r, high=t if r.high is None else min(r.high, t))
        else:
            r = replace(r, low=t if r.low is None else max(r.low, t))
        by_col[column] = r
    return Path(list(by_col.values()), 0, 0.0)


def holds(r: Range, frame: pd.DataFrame) -> np.ndarray:
    """Whether each row meets a range, as the rule language reads it (in pandas: the
    reference the engine's assignment is compared with)."""
    s = frame[r.column]
    null = s.isna().to_numpy()
    if r.kind == "bool":
        ok = (s.fillna(False).astype(bool) == r.equals).to_numpy()
    elif r.kind == "category":
        text = s.astype(str)
        ok = np.ones(len(s), bool)
        if r.equals is not None:
            ok &= (text == r.equals).to_numpy()
        for v in r.not_equals:
            ok &= (text != v).to_numpy()
    else:
        x = s.astype("float64").to_numpy()
        ok = np.ones(len(s), bool)
        if r.low is not None:
            ok &= x > r.low
        if r.high is not None:
            ok &= x <= r.high
    return np.where(null, r.nulls, ok)


def leaf_index(leaves: list[Path], X: pd.DataFrame, kinds: dict) -> np.ndarray:
    """The leaf each row of the design matrix meets (the leaves are disjoint)."""
    raw = _raw_columns(X, kinds)
    hit = np.full(len(X), -1)
    for i, p in enumerate(leaves):
        ok = np.ones(len(X), bool)
        for r in p.ranges:
            ok &= holds(r, raw)
        hit[ok & (hit < 0)] = i
    return hit


def _raw_columns(X: pd.DataFrame, kinds: dict) -> pd.DataFrame:
    """The original columns back from the design matrix (categories from their dummies)."""
    out = {}
    for model_col, (column, kind, value) in kinds.items():
        if kind == "bool":
            out[column] = X[model_col].map({1.0: True, 0.0: False})
            continue
        if kind != "category":
            out[column] = X[model_col]
            continue
        cur = out.get(column, pd.Series(np.full(len(X), "\x00other"), index=X.index, dtype=object))
        cur = cur.where(~(X[model_col] == 1), value)
        out[column] = cur.where(X[model_col].notna(), None)
    return pd.DataFrame(out, index=X.index)


def merge(
    customers: np.ndarray, payers: np.ndarray, alpha: float, min_gap: float = 0.0
) -> list[list[int]]:
    """Groups of leaves (indices), highest payer rate first: leaves adjacent in rate order
    merged while a two-proportion z-test cannot tell them apart (p >= ``alpha``) or their
    rates differ by less than ``min_gap`` (a fraction: 0.03 = 3 points, too little to run
    another strategy for); the most similar pair merges first. ``alpha`` None: the gap
    alone decides (``payers`` then holds any sum, e.g. of predicted uplifts). Leaves without
    customers are left out."""
    n, y = np.asarray(customers, float), np.asarray(payers, float)
    order = [i for i in np.argsort(-(y / np.where(n > 0, n, 1)), kind="stable") if n[i] > 0]
    groups = [[int(i)] for i in order]
    while len(groups) > 1:
        best, best_p = None, -1.0
        for i in range(len(groups) - 1):
            n1, y1 = n[groups[i]].sum(), y[groups[i]].sum()
            n2, y2 = n[groups[i + 1]].sum(), y[groups[i + 1]].sum()
            gap = abs(y1 / n1 - y2 / n2)
            if gap < min_gap:
                pv = 1.0 + (min_gap - gap)  # closest first
            elif alpha is None:
                pv = -1.0
            else:
                pooled = (y1 + y2) / (n1 + n2)
                se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
                pv = 2 * norm.sf(gap / se if se else 0.0)
            if pv > best_p:
                best, best_p = i, pv
        if best_p < (1.0 if alpha is None else alpha):
            break
        groups[best : best + 2] = [groups[best] + groups[best + 1]]
    return groups


def _number(v: float, integer: bool) -> str:
    """A threshold in words: integers as they are, amounts with k / M / bn."""
    if integer:
        return f"{int(v):,}".replace(",", " ")
    a = abs(v)
    for scale, word in ((1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if a >= scale:
            return f"{v / scale:g}{word}"
    return f"{v:g}"


#: the words of generated names (English; a report passes its language's)
WORDS = {"up_to": "up to", "over": "over", "missing": "missing", "or_missing": "or missing",
         "not": "not", "everyone": "everyone", "or": "or"}  # fmt: skip


def range_words(r: Range, words: dict | None = None) -> str:
    """A range in words: "DPD 31-90", "overdue balance over 500 k", "region = Maule".
    ``words``: :data:`WORDS` and column names in another language."""
    w = WORDS | (words or {})
    name = w.get(r.column, SHORT.get(r.column, r.column))
    if r.kind == "bool":
        text = name if r.equals else f"{w['not']} {name}"
    elif r.equals is not None:
        text = f"{name} = {r.equals}"
    elif r.not_equals:
        text = f"{name} {w['not']} {', '.join(r.not_equals)}"
    elif r.low is not None and r.high is not None:
        small = r.integer and r.high < 1000  # days, counts: "31-90"
        lo = _number(r.low + 1, True) if small else _number(r.low, False)
        text = f"{name} {lo}-{_number(r.high, small)}"
    elif r.high is not None:
        text = f"{name} {w['up_to']} {_number(r.high, r.integer and r.high < 1000)}"
    elif r.low is not None:
        text = f"{name} {w['over']} {_number(r.low, r.integer and r.low < 1000)}"
    else:
        text = f"{name} {w['missing']}"
    if (
        r.nulls
        and r.seen_nulls
        and r.kind in ("number", "integer")
        and (r.low is not None or r.high is not None)
    ):
        return f"{text} {w['or_missing']}"
    if r.nulls and r.seen_nulls and r.kind in ("bool", "category"):
        return f"{text} {w['or_missing']}"
    return text


def path_words(p: Path, words: dict | None = None) -> str:
    return ", ".join(range_words(r, words) for r in p.ranges) or (WORDS | (words or {}))["everyone"]


def group_words(group: list[Path], words: dict | None = None) -> str:
    """A segment's paths in words, joined by "or"."""
    sep = f" {(WORDS | (words or {}))['or']} "
    return sep.join(path_words(p, words) for p in group)


def condition(r: Range) -> dict:
    """A range as a rule-language condition (missing values included when they follow it)."""
    leaves = []
    if r.kind == "bool":
        leaves.append({"column": r.column, "op": "==", "value": bool(r.equals)})
    elif r.equals is not None:
        leaves.append({"column": r.column, "op": "==", "value": r.equals})
    if r.not_equals:
        leaves.append({"column": r.column, "op": "not_in", "value": list(r.not_equals)})
    if r.low is not None:
        leaves.append({"column": r.column, "op": ">", "value": _plain(r.low, r.integer)})
    if r.high is not None:
        leaves.append({"column": r.column, "op": "<=", "value": _plain(r.high, r.integer)})
    if not leaves:  # only missing values take this path
        return {"column": r.column, "op": "is_null"}
    body = leaves[0] if len(leaves) == 1 else {"all": leaves}
    if r.nulls:
        return {"any": [{"column": r.column, "op": "is_null"}, body]}
    return body


def _plain(v: float, integer: bool):
    return int(v) if integer or float(v).is_integer() else float(v)


def path_condition(p: Path) -> dict:
    parts = []
    for r in p.ranges:
        c = condition(r)
        parts.extend(c.get("all", [c]))
    return parts[0] if len(parts) == 1 else {"all": parts}


def segment_condition(group: list[Path]) -> dict:
    parts = [path_condition(p) for p in group]
    return parts[0] if len(parts) == 1 else {"any": parts}


def propose(
    frame: pd.DataFrame,
    features: list[str],
    label: str,
    max_depth: int = 3,
    min_leaf_share: float = 0.02,
    merge_alpha: float = 0.01,
    min_gap: float = 0.03,
    seed: int = 0,
) -> Proposal:
    """Fit a shallow tree of ``label`` (0/1: pays within the horizon) on ``features`` of
    ``frame`` (one row per customer) and turn it into segments (module docstring).

    The tree grows on a random half of the rows (seeded); ``min_leaf_share``: its smallest
    leaf as a share of them (a leaf of 2 % of the customers is a segment worth a strategy); ``merge_alpha`` and ``min_gap``: leaves whose
    payer rates a two-proportion test cannot tell apart at this level, or that differ by
    less than ``min_gap``, form one segment (:func:`merge`).
    """
    from sklearn.tree import DecisionTreeClassifier

    X, kinds = design_matrix(frame, features)
    y = frame[label].to_numpy(float)
    fit = np.random.default_rng(seed).random(len(frame)) < 0.5
    leaf = max(1, math.ceil(min_leaf_share * fit.sum()))
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=leaf, random_state=seed)
    tree.fit(X.to_numpy()[fit], y[fit])
    leaves, moved = paths(tree, X, kinds, y)
    # leaves merge by their rates on the half the tree did not see: a noise split's two
    # sides look different on the data that chose it, alike on the other half
    held = leaf_index(leaves, X[~fit], kinds)
    n_held = np.bincount(held, minlength=len(leaves))
    y_held = np.bincount(held, weights=y[~fit], minlength=len(leaves))
    index = merge(n_held, y_held, merge_alpha, min_gap)
    placed = {i for g in index for i in g}
    for i in (i for i in range(len(leaves)) if i not in placed and leaves[i].customers):
        # a leaf the other half never reached joins the group of the closest rate
        rates = [y_held[g].sum() / n_held[g].sum() for g in index]
        index[int(np.argmin(np.abs(np.array(rates) - leaves[i].rate)))].append(i)
    groups = [simplify([leaves[i] for i in g]) for g in index]
    groups.sort(key=lambda g: -sum(q.payers for q in g) / max(sum(q.customers for q in g), 1))
    return Proposal(groups, tree, list(X.columns), moved, _names(groups))


def simplify(group: list[Path]) -> list[Path]:
    """Paths of one segment joined where they differ only in one number column whose ranges
    touch (``(a, m]`` and ``(m, b]`` -> ``(a, b]``, missing values if either had them), until
    none do: the union is the same customers in fewer words."""
    group = list(group)
    joined = True
    while joined:
        joined = False
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                union = _union(group[i], group[j])
                if union is not None:
                    group[i] = union
                    del group[j]
                    joined = True
                    break
            if joined:
                break
    return group


def _union(a: Path, b: Path) -> Path | None:
    ra, rb = {r.column: r for r in a.ranges}, {r.column: r for r in b.ranges}
    if set(ra) != set(rb):
        return None
    differ = [c for c in ra if ra[c] != rb[c]]
    if len(differ) != 1 or ra[differ[0]].kind not in ("number", "integer"):
        return None
    x, y = sorted(
        (ra[differ[0]], rb[differ[0]]), key=lambda r: -math.inf if r.low is None else r.low
    )
    if x.high is None or y.low is None or x.high != y.low:
        return None
    r = replace(x, high=y.high, nulls=x.nulls or y.nulls, seen_nulls=x.seen_nulls or y.seen_nulls)
    ranges = [r if q.column == r.column else q for q in a.ranges]
    if r.low is None and r.high is None and r.nulls:
        ranges = [q for q in ranges if q.column != r.column]  # no condition left on it
    return Path(ranges, a.customers + b.customers, a.payers + b.payers)


def _names(groups: list[list[Path]]) -> list[str]:
    """Segment names from their conditions, unique, at most :data:`NAME_LENGTH` characters
    (a merged group is named by its largest leaf, "and similar")."""
    out = []
    for g in groups:
        words = " or ".join(path_words(p) for p in g)
        if len(words) > NAME_LENGTH:
            largest = max(g, key=lambda p: p.customers)
            words = _shorten(path_words(largest), NAME_LENGTH - len(" and similar"))
            words += " and similar" if len(g) > 1 else ""
        name = words
        while name in out:
            name = f"{words} ({len(out) + 1})"
        out.append(name)
    return out


def _shorten(words: str, limit: int) -> str:
    """``words`` cut at a comma or space to fit ``limit`` characters, with "…"."""
    if len(words) <= limit:
        return words
    cut = words[: limit - 1]
    cut = cut[: cut.rfind(",")] if "," in cut else cut[: cut.rfind(" ")]
    return cut.rstrip(" ,") + "…"


def cascade(p: Proposal, name: str, description: str = "", notes: list[str] | None = None) -> dict:
    """The proposal as a segmentation (the rule language's mapping, ready for YAML): one
    segment per group, in the proposal's order, the last group as the Default. ``notes``:
    each segment's description (default: its training customers and payer rate)."""
    if notes is None:
        notes = []
        for group in p.segments:
            n = sum(q.customers for q in group)
            rate = sum(q.payers for q in group) / n if n else float("nan")
            notes.append(f"{n} training customers, {rate:.1%} paid within the horizon")
    segments = [
        {"name": seg_name, "description": note, "when": segment_condition(group)}
        for group, seg_name, note in zip(p.segments[:-1], p.names[:-1], notes[:-1], strict=True)
    ]
    default = {"description": f"Everyone else ({p.names[-1]}): {notes[-1]}"}
    return {"name": name, "description": description, "segments": segments, "default": default}
