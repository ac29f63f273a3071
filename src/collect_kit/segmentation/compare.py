"""What-if: migration between two segmentations, or between two snapshots, and PSI."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from ibis.expr.types import Table

from ..engine import TableLike, inputs, pull
from ..stability import population_stability, psi_reading
from .compile import segment_codes
from .rules import Segmentation

ABSENT = "(not in snapshot)"


@dataclass
class Comparison:
    """Migration between two assignments of customers to segments.

    ``migration``: tidy rows (from_segment, to_segment, customers, balance_before,
    balance_after) — customers matched by ``customer_id``; one present on one side only
    goes from or to ``(not in snapshot)``. ``psi``: per segment the customers and shares
    (fractions) before and after and the segment's PSI term; ``psi_total`` and ``reading``.
    """

    migration: pd.DataFrame
    psi: pd.DataFrame
    psi_total: float
    reading: str
    from_order: list[str]
    to_order: list[str]

    def matrix(self, values: str = "customers") -> pd.DataFrame:
        """The migration as a from x to matrix (cascade order) of ``customers`` or a balance."""
        m = self.migration.pivot_table(
            index="from_segment", columns="to_segment", values=values, aggfunc="sum", fill_value=0
        )
        rows = [s for s in self.from_order if s in m.index]
        cols = [s for s in self.to_order if s in m.columns]
        return m.reindex(index=rows, columns=cols)


def compare(
    a: Segmentation,
    b: Segmentation,
    snapshot: TableLike,
    snapshot_b: TableLike | None = None,
) -> Comparison:
    """Compare segmentation ``a`` on ``snapshot`` with ``b`` on ``snapshot_b`` (default: the same).

    Two rule sets on one snapshot answer "what would this change do?"; one rule set
    (``a`` is ``b``) on two snapshots shows how customers moved between months. Snapshots
    may be pandas, Arrow or Ibis, in any mix.
    """
    given = {"snapshot": snapshot, "snapshot_b": snapshot_b}
    with inputs(given, required=["snapshot"]) as t:
        return _compare(a, b, t["snapshot"], t.get("snapshot_b", t["snapshot"]))


def _compare(a: Segmentation, b: Segmentation, t_a: Table, t_b: Table) -> Comparison:
    def side(seg: Segmentation, t: Table, suffix: str) -> Table:
        balance = t.balance if "balance" in t.columns else 0.0
        return t.select(
            "customer_id", **{f"code{suffix}": segment_codes(seg, t), f"balance{suffix}": balance}
        )

    left, right = side(a, t_a, "_a"), side(b, t_b, "_b")
    j = left.outer_join(right, left.customer_id == right.customer_id)
    absent_a, absent_b = len(a.names), len(b.names)  # the code after each one's segments
    grouped = j.group_by(
        _f=j.code_a.fill_null(absent_a), _t=j.code_b.fill_null(absent_b)
    ).aggregate(
        customers=j.count(),
        balance_before=j.balance_a.sum().fill_null(0.0),
        balance_after=j.balance_b.sum().fill_null(0.0),
    )
    migration = pull(grouped, "segment migration").sort_values(["_f", "_t"])
    order_from = [*a.names, ABSENT]
    order_to = [*b.names, ABSENT]
    migration.insert(0, "from_segment", [order_from[i] for i in migration._f])
    migration.insert(1, "to_segment", [order_to[i] for i in migration._t])
    migration = migration.drop(columns=["_f", "_t"]).reset_index(drop=True)

    before = migration[migration.from_segment != ABSENT].groupby("from_segment").customers.sum()
    after = migration[migration.to_segment != ABSENT].groupby("to_segment").customers.sum()
    names = list(dict.fromkeys([*a.names, *b.names]))
    psi = population_stability(
        before.reindex(names, fill_value=0), after.reindex(names, fill_value=0)
    )
    total = float(psi["psi"].sum())
    return Comparison(migration, psi, total, psi_reading(total), order_from, order_to)
