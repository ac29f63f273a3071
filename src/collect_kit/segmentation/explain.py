"""Diagnostics of a segmentation on a snapshot: sizes, absorption, empty-segment reasons, lint.

Everything row-level runs on the engine as a handful of aggregate queries; only tidy
tables come back.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from ibis.expr.types import Table

from ..engine import TableLike, inputs, pull
from .compile import check_columns, compile_condition, compile_leaf, named, raise_for, segment_codes
from .lint import lint
from .rules import DEFAULT, Segmentation, leaves

#: Snapshot columns the per-segment table sums when present (currency, days).
_MONEY = ("balance", "overdue_balance")
_DPD = "max_days_past_due"


@dataclass
class Explanation:
    """What a segmentation does to a snapshot.

    - ``segments``: per segment (cascade order, Default last): strategy, customers, share
      (fraction of all customers), balance and overdue balance (currency), mean days past
      due (mean of ``max_days_past_due``), ``satisfied`` (customers whose data meet the
      segment's own condition, whatever earlier segments took), ``status`` (``ok`` or
      ``empty``) and, for an empty segment, the ``reason``;
    - ``absorption``: tidy rows (segment, taken_by, customers): of the customers satisfying
      each segment's condition, how many each segment took (itself or an earlier one);
    - ``leaves``: every leaf of every rule with the customers it is true for;
    - ``columns``: each column the rules read, its null rate (fraction), distinct values,
      and whether it is constant or entirely null (a badly loaded variable);
    - ``lint``: the static findings of :func:`~.lint.lint`, plus data findings
      (``all_null_column``, ``constant_column``, ``empty_segment``).
    """

    segments: pd.DataFrame
    absorption: pd.DataFrame
    leaves: pd.DataFrame
    columns: pd.DataFrame
    lint: pd.DataFrame

    def absorption_matrix(self) -> pd.DataFrame:
        """Rows: a segment's own condition; columns: the segment that took those customers."""
        order = list(self.segments["segment"])
        m = self.absorption.pivot(index="segment", columns="taken_by", values="customers")
        return m.reindex(index=order[:-1], columns=order).fillna(0).astype(int)

    @property
    def empty_segments(self) -> list[str]:
        return self.segments.loc[self.segments.status == "empty", "segment"].tolist()


def explain(segmentation: Segmentation, snapshot: TableLike) -> Explanation:
    """Diagnose ``segmentation`` on ``snapshot`` (pandas, Arrow or Ibis; see :class:`Explanation`).

    Raises :class:`~.rules.SegmentationError` for unknown columns (naming the segment and
    the closest existing column) and for literal/column type mismatches.
    """
    with inputs({"snapshot": snapshot}, required=["snapshot"]) as t:
        raise_for(segmentation, check_columns(segmentation, t["snapshot"].schema()))
        return _explain(segmentation, t["snapshot"])


def _explain(segmentation: Segmentation, t: Table) -> Explanation:
    rules = segmentation.rules
    order = segmentation.names
    seg = segment_codes(segmentation, t)
    conds = [compile_condition(t, s.condition) for s in rules]
    x = t.mutate(_segment=seg, **{f"_c{i}": c for i, c in enumerate(conds)})
    aggs = {"customers": x.count()}
    for col in _MONEY:
        if col in t.columns:
            aggs[col] = x[col].sum()
    if _DPD in t.columns:
        aggs["_dpd_sum"] = x[_DPD].sum()
        aggs["_dpd_n"] = x[_DPD].count()
    for i in range(len(rules)):
        aggs[f"_c{i}"] = x[f"_c{i}"].sum()
    by_seg = pull(x.group_by("_segment").aggregate(**aggs), "segment sizes")
    by_seg = by_seg.set_index(named(segmentation, by_seg["_segment"])).drop(columns="_segment")
    by_seg = by_seg.reindex(order).fillna(0)
    total = int(by_seg["customers"].sum())

    # absorption: customers satisfying rule i, by the segment that took them
    absorption = pd.DataFrame(
        [
            {"segment": s.name, "taken_by": taker, "customers": int(by_seg.loc[taker, f"_c{i}"])}
            for i, s in enumerate(rules)
            for taker in order
            if by_seg.loc[taker, f"_c{i}"] > 0 or taker == s.name
        ],
        columns=["segment", "taken_by", "customers"],
    )
    satisfied = {s.name: int(by_seg[f"_c{i}"].sum()) for i, s in enumerate(rules)}

    # every leaf's count, in one query
    leaf_list = [(s.name, path, leaf) for s in rules for path, leaf in leaves(s.condition)]
    if leaf_list:
        counts = pull(t.aggregate(
            **{f"_l{j}": compile_leaf(t, leaf).sum() for j, (_, _, leaf) in enumerate(leaf_list)}
        ), "condition counts").iloc[0]  # fmt: skip
    leaf_table = pd.DataFrame(
        [
            {"segment": name, "path": path, "rule": str(leaf), "column": leaf.column,
             "customers": int(counts[f"_l{j}"] or 0)}
            for j, (name, path, leaf) in enumerate(leaf_list)
        ],
        columns=["segment", "path", "rule", "column", "customers"],
    )  # fmt: skip

    columns = _column_profile(t, segmentation, total)
    rows = []
    for s in segmentation.segments:
        r = by_seg.loc[s.name]
        n = int(r["customers"])
        row = {
            "segment": s.name,
            "strategy": s.strategy,
            "customers": n,
            "share": n / total if total else float("nan"),
        }
        for col in _MONEY:
            row[col] = float(r[col]) if col in r else float("nan")
        row["mean_days_past_due"] = (
            float(r["_dpd_sum"] / r["_dpd_n"]) if "_dpd_n" in r and r["_dpd_n"] else float("nan")
        )
        row["satisfied"] = satisfied.get(s.name, n)
        row["status"] = "ok" if n else "empty"
        row["reason"] = "" if n else _reason(s.name, satisfied, absorption, leaf_table, total)
        rows.append(row)
    segments = pd.DataFrame(rows)

    findings = lint(segmentation, t.schema())
    extra = []
    for c in columns.itertuples(index=False):
        if c.all_null:
            extra.append(("warning", c.read_by, "", "all_null_column",
                          f"column '{c.column}' is null for every customer: is it loaded?"))  # fmt: skip
        elif c.constant:
            extra.append(("warning", c.read_by, "", "constant_column",
                          f"column '{c.column}' has a single value for every customer"))  # fmt: skip
    for r in segments.itertuples(index=False):
        if r.status == "empty":
            extra.append(("warning", r.segment, "when", "empty_segment", r.reason))
    if extra:
        findings = pd.concat(
            [findings, pd.DataFrame(extra, columns=findings.columns)], ignore_index=True
        )
    return Explanation(segments, absorption, leaf_table, columns, findings)


def _reason(
    name: str, satisfied: dict, absorption: pd.DataFrame, leaf_table: pd.DataFrame, total: int
) -> str:
    if name == DEFAULT:
        return "every customer matched an earlier segment"
    if total == 0:
        return "the snapshot has no customers"
    if satisfied[name] == 0:
        mine = leaf_table[leaf_table.segment == name]
        zero = mine[mine.customers == 0]
        if len(zero):
            return "no customer satisfies the condition: " + "; ".join(
                f"{r.rule} ({r.path}) is true for no customer" for r in zero.itertuples()
            )
        best = mine.sort_values("customers").iloc[0]
        return (
            "no customer satisfies the condition: each leaf holds for some customers but never "
            f"all together (most selective: {best.rule}, {best.customers} customers)"
        )
    takers = absorption[
        (absorption.segment == name) & (absorption.taken_by != name) & (absorption.customers > 0)
    ]
    listed = ", ".join(f"'{r.taken_by}' ({r.customers})" for r in takers.itertuples())
    return f"absorbed: all {satisfied[name]} customers satisfying it were taken by earlier segments: {listed}"


def _column_profile(t: Table, segmentation: Segmentation, total: int) -> pd.DataFrame:
    cols = segmentation.columns
    if not cols:
        return pd.DataFrame(
            columns=["column", "read_by", "null_rate", "distinct", "constant", "all_null"]
        )
    stats = pull(t.aggregate(
        **{f"n{i}": t[c].isnull().sum() for i, c in enumerate(cols)},
        **{f"d{i}": t[c].nunique() for i, c in enumerate(cols)},
    ), "column statistics").iloc[0]  # fmt: skip
    rows = []
    for i, c in enumerate(cols):
        nulls, distinct = int(stats[f"n{i}"] or 0), int(stats[f"d{i}"] or 0)
        readers = [s.name for s in segmentation.rules if c in s.columns]
        rows.append(
            {
                "column": c,
                "read_by": ", ".join(readers),
                "null_rate": nulls / total if total else float("nan"),
                "distinct": distinct,
                "constant": total > 0 and distinct == 1,
                "all_null": total > 0 and nulls == total,
            }
        )
    return pd.DataFrame(rows)
