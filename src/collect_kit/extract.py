"""Books without event history: the monthly account-level extract ("cartera").

Many teams receive, each month, one row per account with its balance, overdue amount,
days past due (or the oldest unpaid due date) and status, and nothing dated beyond it. A
sources YAML declares such a file as the ``extract`` table (instead of, or besides, the
event tables); the month-end book then comes from the extract of that date:

- an account's days past due are ``days_past_due``, else ``as_of - oldest_due_at`` when
  that date is past, else 0;
- its overdue amount is ``overdue_amount``, else its whole balance when it is past due,
  else 0;
- accounts with status ``written_off`` are off the book: their balance counts nowhere, and
  a customer whose accounts are all written off is in the ``written_off`` state of the
  roll rates;
- a customer's figures add up its accounts (balance, overdue balance) or take their
  worst (days past due).

With two or more monthly extracts, month-on-month changes and roll rates come from
consecutive extracts. Whatever needs dated events (payments, settlements, DSO, recovery,
promise keeping) is "not available: no dated payments" unless the event tables are given
too.
"""

from __future__ import annotations

import ibis
import pandas as pd
from ibis.expr.types import Table

from .schema import EXTRACT_STATUSES

WRITTEN_OFF_STATUS = "written_off"


def _date(d) -> ibis.Scalar:
    return ibis.date(pd.Timestamp(d).date())


def rows_at(extract: Table, as_of) -> Table:
    """The extract's rows dated ``as_of``, every column kept, with ``balance`` 0 for the
    written-off accounts (off the book) and ``written_off`` (bool)."""
    e = extract.filter(extract.extracted_at == _date(as_of))
    written_off = (e.status == WRITTEN_OFF_STATUS).fill_null(False)
    return e.mutate(
        balance=ibis.cases((written_off, 0.0), else_=e.balance),
        written_off=written_off,
        _reported=e.balance,
    )


def accounts_at(extract: Table, as_of) -> Table:
    """The accounts of the extract dated ``as_of`` with their working columns:
    ``customer_id``, ``account_id``, ``balance`` (0 when written off), ``overdue``
    (currency), ``dpd`` (days), ``issued_at``, ``product`` and ``written_off`` (bool)."""
    day = _date(as_of)
    e = rows_at(extract, as_of)
    from_date = ibis.greatest(day.delta(e.oldest_due_at, unit="day"), 0)
    dpd = ibis.coalesce(e.days_past_due, from_date, 0)
    overdue = ibis.coalesce(e.overdue_amount, ibis.cases((dpd > 0, e._reported), else_=0.0))
    overdue = ibis.cases((e.written_off, 0.0), else_=ibis.least(overdue, e._reported))
    return e.select(
        "customer_id", "account_id", "issued_at", "product", "balance", "written_off",
        overdue=overdue, dpd=dpd.cast("int64"),
    )  # fmt: skip


def book(extract: Table, as_of) -> Table:
    """The month-end book from the extract dated ``as_of``: per customer ``balance``,
    ``overdue_balance``, ``current_balance`` (currency), ``max_days_past_due`` (days, over
    accounts still owing and past due; 0 otherwise) and ``written_off`` (every account of the
    customer written off) — the columns of :func:`collect_kit.kpis.customer_balances`."""
    a = accounts_at(extract, as_of)
    owing_late = (a.balance > 0) & (a.dpd > 0)
    overdue = a.overdue.sum(where=owing_late).fill_null(0.0)
    per = a.group_by("customer_id").aggregate(
        balance=a.balance.sum(),
        overdue_balance=overdue,
        max_days_past_due=a.dpd.max(where=owing_late).fill_null(0),
        written_off=a.written_off.all(),
    )
    return per.mutate(current_balance=per.balance - per.overdue_balance)


def account_features(extract: Table, as_of) -> Table:
    """Per customer, the snapshot's balance block from the extract dated ``as_of``
    (see :data:`collect_kit.snapshot.FEATURES`): balances, open and overdue accounts as
    ``open_receivables`` / ``overdue_receivables``, days past due and the first issue
    date (``_first_issued``, for tenure when customers carry no ``customer_since``)."""
    a = accounts_at(extract, as_of)
    is_open = a.balance > 0
    is_overdue = is_open & (a.dpd > 0)
    return a.group_by("customer_id").aggregate(
        balance=a.balance.sum(),
        overdue_balance=a.overdue.sum(where=is_overdue),
        open_receivables=is_open.sum(),
        overdue_receivables=is_overdue.sum(),
        max_days_past_due=a.dpd.max(where=is_overdue),
        dpd_weight=(a.overdue * a.dpd).sum(where=is_overdue),
        _first_issued=a.issued_at.min(),
    )


def dates(extract: Table) -> list[pd.Timestamp]:
    """The extraction dates present, oldest first."""
    values = extract.select("extracted_at").distinct().to_pandas()["extracted_at"]
    return sorted(pd.Timestamp(v) for v in values)


__all__ = ["EXTRACT_STATUSES", "account_features", "accounts_at", "book", "dates", "rows_at"]
