"""What each optional input enables, and how an analysis says it is not available.

Optional inputs are the tables ``contacts``, ``scores``, ``adjustments`` and
``assignments`` and the optional columns of every table (``customers.customer_since``,
``contacts.cost`` ...). A source may leave any of them out: validation lists what is
absent as information with what it disables (:func:`disables`), and every KPI, snapshot
feature and report section that needs an absent input says "not available: no contacts
table" (:func:`not_available`) instead of showing zeros, NaN or failing.

An input is named ``"table"`` or ``"table.column"``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: What an absent input disables (the information line of validation).
DISABLES: dict[str, str] = {
    "contacts": "contact, right-party contact, promise-to-pay, promise-kept and managed "
    "rates and cost to collect; the snapshot's contact and promise "
    "features (null) and the risk model's features built on them",
    "scores": "the external score (snapshot score null) and its comparison with the risk model",
    "adjustments": "write-offs, discounts, credit notes and reversals: balances reflect "
    "payments only",
    "assignments": "strategy-test readouts",
    "receivables": "DSO, CEI, collection times and the settlement features; balances come "
    "from the extract",
    "payments": "recovery, payer and collected figures, vintages and the payment features of "
    "the snapshot (no dated payments)",
    "customers": "none: the customers are those of the extract (their own columns null)",
    "customers.customer_since": "none: a customer exists from the first issued_at of its "
    "receivables and tenure counts from there",
    "customers.customer_type": "the person/company split (customer_type null)",
    "customers.phone": "the valid-phone feature (has_valid_phone null)",
    "customers.email": "the valid-email feature (has_valid_email null)",
    "contacts.cost": "cost to collect",
    "contacts.promise_amount": "none: a promise counts as kept on any payment",
    "payments.receivable_id": "none: every payment is allocated oldest due first",
    "receivables.currency": "none: every amount is taken in the portfolio currency",
    "receivables.reported_balance": "none: the computed balances are not compared with the "
    "source's",
    "extract.overdue_amount": "none: a past-due account counts with its whole balance as overdue",
    "extract.days_past_due": "none: days past due come from oldest_due_at",
    "extract.oldest_due_at": "none: days past due come from days_past_due",
    "extract.status": "none: every account is on the book (nothing written off)",
    "extract.issued_at": "none: tenure comes from customers.customer_since when given",
    "extract.product": "none",
}

#: Snapshot features that are null when an input is absent (the first one absent says why).
FEATURE_NEEDS: dict[str, tuple[str, ...]] = {
    "contact_attempts": ("contacts",),
    "right_party_contacts": ("contacts",),
    "promises_due": ("contacts",),
    "score": ("scores",),
    "score_at": ("scores",),
    "has_valid_phone": ("customers.phone",),
    "has_valid_email": ("customers.email",),
    "settled_receivables": ("receivables",),
    "avg_payment_term_days": ("receivables",),
    "avg_days_late": ("receivables",),
    "late_payments": ("receivables",),
    "payer_tier": ("receivables",),
    "credit_balance": ("receivables",),
    "payments": ("payments",),
    "paid_amount": ("payments",),
    "days_since_last_payment": ("payments",),
    "broken_promises": ("contacts", "payments"),
}


def disables(name: str) -> str:
    """What the absence of input ``name`` disables (a phrase)."""
    return DISABLES.get(name, "nothing the kit computes by default")


#: inputs whose absence has a plainer name than "no X table"
_PLAIN = {"payments": "dated payments", "receivables": "dated receivables"}


def not_available(name: str) -> str:
    """The phrase shown in place of a figure whose input ``name`` is absent."""
    if name in _PLAIN:
        return f"not available: no {_PLAIN[name]}"
    if "." in name:
        table, column = name.split(".", 1)
        return f"not available: no {column} column in {table}"
    return f"not available: no {name} table"


def first_missing(needs: Iterable[str], absent: Iterable[str]) -> str | None:
    """The first of ``needs`` that is in ``absent`` (a column counts as absent when its
    table is), or None when all are present."""
    gone = set(absent)
    for n in needs:
        if n in gone:
            return n
        if "." in n and n.split(".", 1)[0] in gone:
            return n.split(".", 1)[0]
    return None


def unavailable_features(absent: Iterable[str]) -> dict[str, str]:
    """Snapshot feature -> "not available: ..." for every feature an absent input empties."""
    gone = set(absent)
    out = {}
    for feature, needs in FEATURE_NEEDS.items():
        missing = first_missing(needs, gone)
        if missing:
            out[feature] = not_available(missing)
    return out
