"""What a strategy test measures: metric declarations and their per-customer values.

A metric is declared in the experiment config (``metrics:``) over a canonical table in
each customer's outcome window, ``[assigned_at, horizon)``:

- ``table``: ``payments``, ``contacts`` or ``promises`` (the contacts with outcome
  ``promise``, with ``kept``: whether the customer's payments from the promise to its due
  date reached the amount; null while not yet due at the horizon, so such a promise is
  neither ``kept: [true]`` nor ``kept: [false]``);
- ``aggregate``: ``sum`` of ``column`` (payments: ``amount``; contacts: ``cost``),
  ``count`` of rows, or ``any`` (at least one row);
- ``where``: column -> accepted values (e.g. ``outcome: [right_party, promise, refused]``);
- ``type``: ``proportion`` (customers whose value is at least ``at_least``: a number, or
  ``balance`` = their balance at assignment; default: any row), ``mean`` (per customer)
  or ``ratio`` (sum of the value / sum of ``denominator``, the balance at assignment).

The three built-in metrics are such declarations (:data:`BUILT_IN`): payer rate, collected
per customer and recovery rate. Mean and ratio metrics get CUPED with the same value over
the ``pre_days`` before assignment as the covariate. Everything is computed on the engine
in one pass per table; only sums per segment x arm come back (:func:`moments`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import ibis
from ibis.expr.types import Table
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import schema
from ..engine import pull
from ..yamlconfig import Label, display

#: the columns a ``where:`` may filter on, per table
FILTERABLE = {
    "payments": ("method",),
    "contacts": ("channel", "outcome", "agent", "queue"),
    "promises": ("channel", "agent", "queue", "kept"),
}
#: filterable columns without a code list: their values are checked against the data
FREE_TEXT = ("method", "agent", "queue")
#: the columns a ``sum`` may add up, per table (the first is the default)
SUMMABLE = {"payments": ("amount",), "contacts": ("cost",), "promises": ("promise_amount",)}


class MetricSpec(BaseModel):
    """One metric of a strategy test (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["proportion", "mean", "ratio"]
    table: Literal["payments", "contacts", "promises"]
    aggregate: Literal["sum", "count", "any"] = "sum"
    column: str | None = None
    where: dict[str, list[str | bool]] = {}
    at_least: float | Literal["balance"] | None = None
    denominator: Literal["balance"] | None = None
    cuped: bool = True
    higher_is_better: bool = True
    mde: float | None = Field(None, gt=0, allow_inf_nan=False)
    label: Label = {}

    @model_validator(mode="after")
    def _consistent(self) -> MetricSpec:
        if self.aggregate == "sum":
            allowed = SUMMABLE[self.table]
            if self.column is None:
                self.column = allowed[0]
            elif self.column not in allowed:
                raise ValueError(f"column: a sum over {self.table} adds up {list(allowed)}, got '{self.column}'")  # fmt: skip
        elif self.column is not None:
            raise ValueError(f"column: only a sum names a column (aggregate is '{self.aggregate}')")
        for col, values in self.where.items():
            if col not in FILTERABLE[self.table]:
                raise ValueError(f"where: '{col}' is not a column of {self.table} a metric can filter on; one of {list(FILTERABLE[self.table])}")  # fmt: skip
            known = _categories(self.table, col)
            unknown = [v for v in values if known is not None and v not in known]
            if unknown or not values:
                raise ValueError(f"where: {col}: {unknown} are not among {list(known or [])}" if unknown else f"where: {col}: list at least one value")  # fmt: skip
        if self.type == "ratio" and self.denominator is None:
            raise ValueError("denominator: a ratio metric needs one ('balance': the balance at assignment)")  # fmt: skip
        if self.type == "ratio" and self.aggregate != "sum":
            raise ValueError(f"aggregate: a ratio metric divides a sum (of {list(SUMMABLE[self.table])}) by the balance, got '{self.aggregate}'")  # fmt: skip
        if self.type != "ratio" and self.denominator is not None:
            raise ValueError("denominator: only a ratio metric has one")
        if self.type != "proportion" and self.at_least is not None:
            raise ValueError("at_least: only a proportion metric has a threshold")
        if self.at_least is not None and self.aggregate == "any":
            raise ValueError("at_least: 'any' is already yes/no; use aggregate: count or sum for a threshold")  # fmt: skip
        if self.at_least == "balance" and (self.table, self.aggregate) != ("payments", "sum"):
            raise ValueError("at_least: 'balance' compares the sum of payments with the balance at assignment (table: payments, aggregate: sum)")  # fmt: skip
        if isinstance(self.at_least, float) and not 0 < self.at_least < float("inf"):
            raise ValueError(f"at_least: a threshold is a positive number (a customer with nothing counts as 'no'), got {self.at_least}")  # fmt: skip
        if self.type == "proportion" and self.mde is not None and self.mde >= 1:
            raise ValueError(f"mde: a proportion's MDE is a fraction in (0, 1) (0.03 = 3 points), got {self.mde}")  # fmt: skip
        if self.type == "proportion":
            self.cuped = False  # a proportion keeps its own test (DESIGN §9)
        return self

    @property
    def uses_covariate(self) -> bool:
        return self.cuped and self.type in ("mean", "ratio")

    def title(self, language: str, name: str) -> str:
        """The metric's name for a report: its ``label`` in that language; a built-in
        metric's from the text catalogue; else its id."""
        if self.label:
            return display(self.label, language, name)
        from ..catalogue import catalogue

        return catalogue(language).get(f"labels.{name}", name)


def _categories(table: str, column: str) -> tuple | None:
    if column == "kept":
        return (True, False)
    spec = schema.TABLES["contacts" if table == "promises" else table]
    col = next((c for c in spec.columns if c.name == column), None)
    return None if col is None or not col.categories else tuple(col.categories)


#: the built-in metrics, as declarations (MDEs come from the config's mde_payer_rate / mde_amount;
#: their names are the text catalogue's labels)
BUILT_IN: dict[str, MetricSpec] = {
    "payer_rate": MetricSpec(type="proportion", table="payments", aggregate="any"),
    "collected_per_customer": MetricSpec(type="mean", table="payments", aggregate="sum"),
    "recovery_rate": MetricSpec(
        type="ratio", table="payments", aggregate="sum", denominator="balance"
    ),
}  # fmt: skip


def _value(j: Table, spec: MetricSpec, when) -> ibis.Expr:
    """The metric's per-customer aggregate over the rows of ``j`` where ``when`` holds."""
    cond = when
    for col, values in spec.where.items():
        cond = cond & j[col].isin(values)
    cond = cond.fill_null(False)  # a null (a promise not yet due) matches no ``where``
    if spec.aggregate == "sum":
        return j[spec.column].cast("float64").sum(where=cond).fill_null(0.0)
    counted = cond.cast("int64").sum().fill_null(0)
    if spec.aggregate == "count":
        return counted.cast("float64")
    return (counted > 0).cast("float64")


def customer_values(
    a: Table,
    tables: Mapping[str, Table],
    specs: Mapping[str, MetricSpec],
    pre_days: int,
    cost_per_action: Mapping[str, float] | None = None,
    promise_tolerance: float = 0.01,
) -> Table:
    """One row per assigned customer: segment, arm, each metric's ``<name>__y`` (outcome)
    and ``<name>__x`` (pre-period covariate), ``balance`` at assignment and the window's
    ``actions``, ``costed_actions`` and ``cost`` (currency).

    ``a``: the assignments to read, with ``horizon`` (the exclusive end of each customer's
    outcome window, a date). The balance at assignment is the allocation's total summed
    over the customer, max(receivables issued before assignment net of adjustments - all
    payments before it, 0): FIFO decides which receivable is open, not how much is.
    """
    pre = ibis.interval(days=pre_days)
    keys = ["customer_id"]
    out = a.select("customer_id", "segment", "arm", "assigned_at", "horizon")

    pay = tables["payments"]
    j = a.select("customer_id", "assigned_at", "horizon").join(
        pay.select("customer_id", "paid_at", "amount", *[c for c in ("method",) if c in pay.columns]),
        [a.customer_id == pay.customer_id, pay.paid_at < a.horizon],
    )  # fmt: skip
    j = j.select(*[c for c in j.columns if not c.endswith("_right")])
    in_window = j.paid_at >= j.assigned_at
    in_pre = (j.paid_at < j.assigned_at) & (j.paid_at >= j.assigned_at - pre)
    aggs = {"paid_before": j.amount.sum(where=j.paid_at < j.assigned_at).fill_null(0.0)}
    for name, spec in specs.items():
        if spec.table == "payments":
            aggs[f"{name}__y"] = _value(j, spec, in_window)
            if spec.uses_covariate:
                aggs[f"{name}__x"] = _value(j, spec, in_pre)
    out = out.left_join(j.group_by(keys).aggregate(**aggs), keys).drop("customer_id_right")

    c = tables.get("contacts")
    contact_specs = {n: s for n, s in specs.items() if s.table == "contacts"}
    if c is not None:
        j = a.select("customer_id", "assigned_at", "horizon").join(
            c, [a.customer_id == c.customer_id, c.at >= a.assigned_at - pre, c.at < a.horizon]
        )
        j = j.select(*[col for col in j.columns if not col.endswith("_right")])
        in_window = j.at >= j.assigned_at
        price = j.cost.cast("float64")
        if cost_per_action:
            listed = j.channel.substitute({k: float(v) for k, v in cost_per_action.items()},
                                          else_=ibis.null("float64"))  # fmt: skip
            price = listed.coalesce(price)
        aggs = {
            "actions": in_window.cast("int64").sum().fill_null(0),
            "costed_actions": (in_window & price.notnull()).cast("int64").sum().fill_null(0),
            "cost": price.sum(where=in_window).fill_null(0.0),
        }
        for name, spec in contact_specs.items():
            aggs[f"{name}__y"] = _value(j, spec, in_window)
            if spec.uses_covariate:
                aggs[f"{name}__x"] = _value(j, spec, j.at < j.assigned_at)
        out = out.left_join(j.group_by(keys).aggregate(**aggs), keys).drop("customer_id_right")
    promise_specs = {n: s for n, s in specs.items() if s.table == "promises"}
    if promise_specs and c is not None:
        pr = _promises(a, c, pay, pre, promise_tolerance)
        in_window = pr.at >= pr.assigned_at
        aggs = {}
        for name, spec in promise_specs.items():
            aggs[f"{name}__y"] = _value(pr, spec, in_window)
            if spec.uses_covariate:
                aggs[f"{name}__x"] = _value(pr, spec, pr.at < pr.assigned_at)
        out = out.left_join(pr.group_by(keys).aggregate(**aggs), keys).drop("customer_id_right")

    if any(s.denominator == "balance" or s.at_least == "balance" for s in specs.values()):
        out = out.left_join(_owed_before(a, tables), keys).drop("customer_id_right")
        out = out.mutate(balance=ibis.greatest(out.owed.fill_null(0.0) - out.paid_before.fill_null(0.0), 0.0))  # fmt: skip
    else:
        out = out.mutate(balance=ibis.literal(0.0))

    fills = {}
    for name, spec in specs.items():
        for part in ("y", "x"):
            col = f"{name}__{part}"
            if col in out.columns:
                fills[col] = out[col].fill_null(0.0)
            elif part == "x" and spec.uses_covariate:
                fills[col] = ibis.literal(0.0)
            elif part == "y":
                fills[col] = ibis.literal(0.0)  # the table is absent: nothing happened
        if spec.type == "proportion":
            threshold = out.balance if spec.at_least == "balance" else spec.at_least
            y = fills[f"{name}__y"]
            if threshold is None:
                fills[f"{name}__y"] = (y > 0).cast("float64")
            else:
                met = (
                    (y >= threshold - 0.005) & (y > 0)
                    if spec.at_least == "balance"
                    else y >= threshold
                )
                fills[f"{name}__y"] = met.cast("float64")
    for col in ("actions", "costed_actions", "cost"):
        fills[col] = out[col].fill_null(0) if col in out.columns else ibis.literal(0)
    return out.mutate(**fills)


def _owed_before(a: Table, tables: Mapping[str, Table]) -> Table:
    """Per customer: receivables issued before assignment, each net of its adjustments
    dated before assignment (never below 0), summed (currency). An adjustment counts
    for the customer it names."""
    r = tables["receivables"]
    ra = a.select("customer_id", "assigned_at").join(
        r.select("customer_id", "receivable_id", "amount", "issued_at"),
        [a.customer_id == r.customer_id, r.issued_at < a.assigned_at],
    )
    ra = ra.select("customer_id", "assigned_at", "receivable_id", "amount")
    adj = tables.get("adjustments")
    if adj is not None:
        signed = ibis.cases(
            (adj.kind.isin(schema.REDUCING_ADJUSTMENTS), adj.amount),
            (adj.kind == "reversal", -adj.amount),
            else_=0.0,
        )
        adj = adj.select("receivable_id", "customer_id", "at", signed=signed)
        # the assigned customers' adjustments dated before assignment, summed per
        # receivable, then joined to its receivables: joined to those receivables first,
        # DuckDB over Parquet read all the receivables a second time for it (at 10 M
        # customers a readout's query took 25.6 s so)
        j = adj.join(a.select("customer_id", "assigned_at"),
                     [adj.customer_id == a.customer_id, adj.at < a.assigned_at])  # fmt: skip
        net = j.group_by("receivable_id", "customer_id").aggregate(adjusted=j.signed.sum())
        ra = ra.left_join(net, ["receivable_id", "customer_id"])
        ra = ra.drop("receivable_id_right", "customer_id_right")
        after = ibis.greatest(ra.amount - ra.adjusted.fill_null(0.0), 0.0)
    else:
        after = ra.amount
    return ra.group_by("customer_id").aggregate(owed=after.sum())


def _promises(a: Table, contacts: Table, payments: Table, pre, tolerance: float) -> Table:
    """Promise contacts of the assigned customers (pre-period and window), with ``kept``:
    payments from the promise to its due date reached the amount (x (1 - tolerance));
    null while the due date is not before the horizon. A pre-period promise is judged at
    assignment (its payments and due date before ``assigned_at``), so the covariate uses
    nothing that happened after randomisation."""
    p = contacts.filter(contacts.outcome == "promise")
    j = a.select("customer_id", "assigned_at", "horizon").join(
        p, [a.customer_id == p.customer_id, p.at >= a.assigned_at - pre, p.at < a.horizon]
    )
    j = j.select(*[c for c in j.columns if not c.endswith("_right")])
    # a pre-period promise (the CUPED covariate) is judged on what was known at assignment
    j = j.mutate(until=ibis.ifelse(j.at < j.assigned_at, j.assigned_at, j.horizon))
    pay = payments.select(pay_customer="customer_id", paid_at="paid_at", paid="amount")
    k = j.left_join(pay, [j.customer_id == pay.pay_customer, pay.paid_at >= j.at,
                          pay.paid_at <= j.promise_due, pay.paid_at < j.until])  # fmt: skip
    extra = [c for c in ("agent", "queue") if c in j.columns]
    per = k.group_by("customer_id", "contact_id", "assigned_at", "horizon", "until", "at",
                     "channel", "promise_due", "promise_amount", *extra).aggregate(paid=k.paid.sum())  # fmt: skip
    paid = per.paid.fill_null(0.0)
    due = per.promise_due < per.until
    kept = ibis.cases(
        (~due, ibis.null("boolean")),
        (per.promise_amount.isnull(), paid > 0),
        else_=paid >= per.promise_amount * (1 - tolerance),
    )
    return per.mutate(kept=kept)


def moments(per: Table, specs: Mapping[str, MetricSpec], winsorize: float | None = None):
    """Sufficient statistics per segment x arm x metric, long (a small pandas frame).

    ``winsorize`` (a quantile such as 0.99) caps every ``sum`` of a mean or ratio metric at
    that quantile of its segment, over both arms together (DESIGN §9); ``cap`` reports it.
    Columns: segment, arm, metric, n, sum_y, sum_y2, sum_x, sum_x2, sum_xy, sum_b, sum_b2,
    sum_yb, sum_xb, cap; and per segment x arm the window's actions and their cost.
    """
    import pandas as pd

    capped = [n for n, s in specs.items() if winsorize is not None and s.aggregate == "sum" and s.type != "proportion"]  # fmt: skip
    if capped:
        caps = per.group_by("segment").aggregate(**{f"{n}__cap": per[f"{n}__y"].quantile(winsorize) for n in capped})  # fmt: skip
        per = per.left_join(caps, "segment").drop("segment_right")
        per = per.mutate(
            **{f"{n}__y": ibis.least(per[f"{n}__y"], per[f"{n}__cap"]) for n in capped}
        )
    aggs = {"n": per.count(), "actions": per.actions.sum(), "costed_actions": per.costed_actions.sum(),
            "cost": per.cost.sum()}  # fmt: skip
    b = per.balance
    for name, spec in specs.items():
        y = per[f"{name}__y"]
        aggs[f"{name}__sum_y"] = y.sum()
        aggs[f"{name}__sum_y2"] = (y * y).sum()
        if spec.uses_covariate:
            x = per[f"{name}__x"]
            aggs |= {f"{name}__sum_x": x.sum(), f"{name}__sum_x2": (x * x).sum(), f"{name}__sum_xy": (x * y).sum()}  # fmt: skip
            if spec.type == "ratio":
                aggs[f"{name}__sum_xb"] = (x * b).sum()
        if spec.type == "ratio":
            aggs |= {f"{name}__sum_b": b.sum(), f"{name}__sum_b2": (b * b).sum(), f"{name}__sum_yb": (y * b).sum()}  # fmt: skip
        if name in capped:
            aggs[f"{name}__cap"] = per[f"{name}__cap"].max()
    wide = pull(per.group_by("segment", "arm").aggregate(**aggs), "experiment moments")
    arms = wide[["segment", "arm", "n", "actions", "costed_actions", "cost"]].copy()
    rows = []
    sums = (
        "sum_y",
        "sum_y2",
        "sum_x",
        "sum_x2",
        "sum_xy",
        "sum_b",
        "sum_b2",
        "sum_yb",
        "sum_xb",
        "cap",
    )
    for name in specs:
        part = wide[["segment", "arm", "n"]].copy()
        part.insert(2, "metric", name)
        for s in sums:
            col = f"{name}__{s}"
            part[s] = (
                wide[col].astype(float) if col in wide else (float("nan") if s == "cap" else 0.0)
            )
        rows.append(part)
    long = pd.concat(rows, ignore_index=True)
    return long.sort_values(["segment", "arm"], kind="stable", ignore_index=True), arms.sort_values(
        ["segment", "arm"], ignore_index=True
    )
