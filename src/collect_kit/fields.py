"""A team's own columns ("custom fields") and how they reach the snapshot.

A sources YAML declares them per table under ``extra:`` (see ``docs/data-model.md``)::

    tables:
      customers:
        extra:
          product_line: {type: string}
          credit_limit: {type: float}
          legal_flag: {type: bool}
          second_phone: {type: string, personal: true}
      receivables:
        extra:
          branch: {type: string, rollup: balance_weighted_mode}
          region: {type: string, rollup: mode, as: invoice_region}   # renamed: collides

Each becomes a :class:`CustomField`: validated like a canonical column (type, codes when
``categories`` is given), carried on its table under its kit name (``as:`` or the source
name), and — unless ``personal`` — added to the snapshot under that name, so segmentation
rules, profiles, KPI ``by=`` groupings, risk features and report breakdowns can use it.
Customer fields are carried as they are; the other tables' fields are rolled up to one
value per customer by :data:`ROLLUPS` (:func:`rollup_columns`).

Personal fields never leave the engine: no snapshot, report or run folder carries them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
from ibis.expr.types import Table

from .schema import Column, DType

#: The tables that may declare ``extra:`` columns.
FIELD_TABLES = ("customers", "receivables", "payments", "contacts", "extract")
#: Tables whose fields are rolled up to the customer (several rows per customer).
ROLLUP_TABLES = ("receivables", "payments", "contacts", "extract")
#: Tables whose rows carry a balance, for ``balance_weighted_mode``.
BALANCE_TABLES = ("receivables", "extract")

#: How a field of a per-event table becomes one value per customer.
ROLLUPS: dict[str, str] = {
    "first": "the value of the customer's earliest row (by date, then id) that has one",
    "last": "the value of the customer's latest row (by date, then id) that has one",
    "max": "the largest value",
    "sum": "the sum of the values (numbers only; 0 when the customer has no row)",
    "mode": "the most frequent value (ties: the smallest value)",
    "balance_weighted_mode": "receivables and extract only: the value holding most of the "
    "customer's open balance at as_of (ties: the one with the oldest due date); null when "
    "nothing is owed",
}

#: The rows each table's rollups read, at a snapshot's ``as_of`` with lookback N months.
ROLLUP_ROWS: dict[str, str] = {
    "receivables": "receivables issued on or before as_of",
    "payments": "payments dated in the last N months, (as_of - N months, as_of]",
    "contacts": "collection actions dated in the last N months, (as_of - N months, as_of]",
    "extract": "the accounts of the extract dated as_of",
}

#: order of a table's rows for ``first`` / ``last``: date column, then id column
_ROW_ORDER = {
    "receivables": ("issued_at", "receivable_id"),
    "payments": ("paid_at", "payment_id"),
    "contacts": ("at", "contact_id"),
    "extract": ("issued_at", "account_id"),
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class CustomField:
    """One declared extra column.

    ``table``: the canonical table it belongs to. ``name``: its name in the kit (the
    snapshot column). ``source``: the column in the user's data. ``dtype``: a canonical
    type. ``rollup``: one of :data:`ROLLUPS` (None for customer fields). ``categories``:
    the allowed codes, when declared (validated like canonical codes).
    """

    table: str
    name: str
    source: str
    dtype: DType
    rollup: str | None = None
    personal: bool = False
    categories: tuple[str, ...] | None = None
    description: str = ""

    def column(self) -> Column:
        """The field as a column spec for validation (nullable, required in the source)."""
        return Column(
            self.name,
            self.dtype,
            self.description or f"Custom field ({self.source}).",
            required=True,
            nullable=True,
            categories=self.categories,
            personal=self.personal,
        )


def problems(field: CustomField, taken: Mapping[str, str]) -> list[str]:
    """What is wrong with one declared field (empty when it is fine).

    ``taken``: names already used in the field's table or the snapshot -> what uses them,
    for the collision message.
    """
    out = []
    if not _NAME.match(field.name):
        out.append(
            f"'{field.name}' is not a usable column name (letters, digits and _, not "
            "starting with a digit); rename it with `as: NEW_NAME`"
        )
    if field.name in taken:
        out.append(
            f"'{field.name}' collides with {taken[field.name]}; rename it with `as: NEW_NAME`"
        )
    if field.table in ROLLUP_TABLES:
        if field.rollup is None:
            out.append(f"needs a rollup to the customer: one of {', '.join(ROLLUPS)}")
        elif field.rollup == "balance_weighted_mode" and field.table not in BALANCE_TABLES:
            out.append("balance_weighted_mode applies to receivables and extract only")
        elif field.rollup == "sum" and field.dtype not in ("float", "int"):
            out.append(f"rollup sum needs a number, the field is {field.dtype}")
    elif field.rollup is not None:
        out.append(f"a {field.table} field is one value per customer already: remove rollup")
    if field.categories is not None and field.dtype != "string":
        out.append("categories apply to string fields only")
    return out


def in_snapshot(fields: Sequence[CustomField]) -> list[CustomField]:
    """The fields the snapshot carries: every one not declared personal."""
    return [f for f in fields if not f.personal]


def of_table(fields: Sequence[CustomField], table: str) -> list[CustomField]:
    return [f for f in fields if f.table == table]


def rollup_columns(
    table: Table, fields: Sequence[CustomField], balances: Table | None = None
) -> Table | None:
    """One row per customer with each field of ``fields`` (all of one table) rolled up.

    ``table``: the rows the rollups read (:data:`ROLLUP_ROWS`, already filtered to the
    snapshot's dates), with ``customer_id``, the fields and the table's date and id
    columns. ``balances``: for ``balance_weighted_mode``, one row per receivable with
    ``receivable_id`` and ``balance`` (open balance at as_of, currency). Returns None when
    ``fields`` is empty.
    """
    if not fields:
        return None
    name = fields[0].table
    date_col, id_col = _ROW_ORDER[name]
    simple = {}
    keyed: list[Table] = []
    for f in fields:
        v = table[f.name]
        if f.rollup in ("first", "last"):
            row = ibis.struct({"d": table[date_col], "i": table[id_col], "v": v})
            agg = row.min(where=v.notnull()) if f.rollup == "first" else row.max(where=v.notnull())
            simple[f.name] = agg["v"]
        elif f.rollup == "max":
            simple[f.name] = v.max()
        elif f.rollup == "sum":
            simple[f.name] = v.sum()
        elif f.rollup == "mode":
            keyed.append(top_value(table, f.name))
        else:  # balance_weighted_mode
            keyed.append(_weighted_mode(table, f.name, balances))
    out = (
        table.group_by("customer_id").aggregate(**simple)
        if simple
        else table.select("customer_id").distinct()
    )
    for part in keyed:
        out = out.left_join(part, "customer_id").drop("customer_id_right")
    return out


def top_value(
    table: Table,
    column: str,
    by: str = "customer_id",
    weight: str | None = None,
    tiebreak: str | None = None,
) -> Table:
    """Per ``by`` group, the non-null value of ``column`` with the most rows or, with
    ``weight``, the largest sum of that column (rows weighing more than 0 only). Ties:
    the smallest minimum of ``tiebreak`` (e.g. the oldest due date), then the smallest
    value. One row per group that has a value: ``by`` and ``column``."""
    t = table.filter(table[column].notnull())
    if weight is not None:
        t = t.filter(t[weight] > 0)
    aggs = {"_n": t.count() if weight is None else t[weight].sum()}
    if tiebreak is not None:
        aggs["_tie"] = t[tiebreak].min()
    g = t.group_by([by, column]).aggregate(**aggs)
    order = [ibis.desc(g._n), *([g._tie] if tiebreak else []), g[column]]
    g = g.mutate(_r=ibis.row_number().over(group_by=by, order_by=order))
    return g.filter(g._r == 0).select(by, column)


def _weighted_mode(table: Table, column: str, balances: Table | None) -> Table:
    """Per customer: the value of ``column`` with the largest open balance (ties: the
    oldest due date, then the smallest value). ``balances``: the receivables' open
    balances from the allocation; None for an extract, whose rows carry their balance."""
    if balances is not None:
        j = table.join(balances.select("receivable_id", _w="balance"), "receivable_id")
        return top_value(j, column, weight="_w", tiebreak="due_at")
    j = table.mutate(_due=ibis.coalesce(table.oldest_due_at, table.issued_at))
    return top_value(j, column, weight="balance", tiebreak="_due")
