"""The canonical data model: every table collect_kit reads, written once as data.

Each table is a :class:`TableSpec` holding :class:`Column` specs. The same specs drive
validation (:mod:`collect_kit.sources`), the documentation (:func:`describe`) and the
sample generator (:mod:`collect_kit.synth`, which builds its tables in this column order
with these types).

Conventions:

- money is in the portfolio currency (one currency per portfolio, stated in the sources
  YAML), as a float with the currency's usual decimals;
- dates are calendar dates (no time of day);
- ``personal`` columns (names, phones, e-mails) are read for contactability features and
  never leave the engine: no snapshot, report or run folder carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

DType = Literal["string", "date", "float", "int", "bool"]

CUSTOMER_TYPES = ("person", "company")
COMPANY_SIZES = ("micro", "small", "medium", "large")
CHANNELS = ("sms", "email", "call", "whatsapp", "letter")
#: Contact outcomes are nested: attempt ⊃ contacted ⊃ right_party ⊃ {promise, refused}.
OUTCOMES = ("no_answer", "delivered", "contacted", "right_party", "promise", "refused")
RIGHT_PARTY_OUTCOMES = ("right_party", "promise", "refused")
CONTACTED_OUTCOMES = ("contacted", *RIGHT_PARTY_OUTCOMES)
ADJUSTMENT_KINDS = ("write_off", "discount", "credit_note", "reversal")
#: Account statuses of an extract; ``written_off`` accounts are off the book.
EXTRACT_STATUSES = ("current", "delinquent", "paid_off", "written_off")
#: Adjustment kinds that reduce a balance; a ``reversal`` (a bounced payment) adds back.
REDUCING_ADJUSTMENTS = ("write_off", "discount", "credit_note")


@dataclass(frozen=True)
class Column:
    """One canonical column.

    ``required``: the source must provide it (otherwise an optional column absent from the
    source is added as all-null). ``nullable``: missing values are allowed.
    ``categories``: the allowed codes (after the YAML value mapping). ``min_value`` with
    ``min_inclusive``: a lower bound (amounts are strictly positive: a reversal is an
    adjustment, not a negative payment). ``references``: ``"table.column"`` it must match.
    ``event_date``: a date that cannot be after the data's extraction date.
    """

    name: str
    dtype: DType
    description: str
    unit: str = ""
    required: bool = True
    nullable: bool = False
    categories: tuple[str, ...] | None = None
    min_value: float | None = None
    min_inclusive: bool = True
    references: str | None = None
    event_date: bool = False
    personal: bool = False


@dataclass(frozen=True)
class TableSpec:
    """One canonical table: its grain, key and columns.

    ``key``: columns whose combination is unique. ``may_be_empty``: the table is optional
    (absent from a source or without rows). ``date_order``: pairs ``(earlier, later)`` that
    must hold on every row where both are present.
    """

    name: str
    grain: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    may_be_empty: bool = False
    date_order: tuple[tuple[str, str], ...] = ()
    example_id: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table '{self.name}' has no column '{name}'")

    @property
    def id_column(self) -> str:
        """The column whose values identify a row in error examples."""
        return self.example_id or self.key[0]


def _money(name: str, description: str, **kw) -> Column:
    return Column(name, "float", description, unit="portfolio currency", **kw)


CUSTOMERS = TableSpec(
    name="customers",
    grain="one row per customer",
    key=("customer_id",),
    columns=(
        Column("customer_id", "string", "Customer identifier."),
        Column(
            "name",
            "string",
            "Person's or company's name.",
            required=False,
            nullable=True,
            personal=True,
        ),
        Column(
            "customer_type",
            "string",
            "Person or company.",
            required=False,
            nullable=True,
            categories=CUSTOMER_TYPES,
        ),
        Column(
            "company_size",
            "string",
            "Company size band; null for persons.",
            required=False,
            nullable=True,
            categories=COMPANY_SIZES,
        ),
        Column("industry", "string", "Industry (companies).", required=False, nullable=True),
        Column("region", "string", "Region of the customer.", required=False, nullable=True),
        Column(
            "customer_since",
            "date",
            "Start of the relationship; when absent or null, the first issued_at of the "
            "customer's receivables.",
            required=False,
            nullable=True,
            event_date=True,
        ),
        Column("phone", "string", "Phone number.", required=False, nullable=True, personal=True),
        Column("email", "string", "E-mail address.", required=False, nullable=True, personal=True),
        Column(
            "preferred_channel",
            "string",
            "Channel the customer prefers.",
            required=False,
            nullable=True,
            categories=CHANNELS,
        ),
        Column(
            "open_dispute",
            "bool",
            "The customer has an open dispute or complaint.",
            required=False,
            nullable=True,
        ),
    ),
)

RECEIVABLES = TableSpec(
    name="receivables",
    grain="one row per invoice / instalment / statement",
    key=("receivable_id",),
    columns=(
        Column("receivable_id", "string", "Receivable identifier."),
        Column("customer_id", "string", "Debtor.", references="customers.customer_id"),
        Column("product", "string", "Product or document type.", required=False, nullable=True),
        Column("issued_at", "date", "Issue date.", event_date=True),
        Column("due_at", "date", "Due date (future-dated by nature)."),
        _money("amount", "Amount owed at issue.", min_value=0, min_inclusive=False),
        Column("currency", "string", "ISO 4217 code; one per portfolio.", required=False),
        _money(
            "reported_balance",
            "The balance the source system reports for the receivable at the extraction "
            "date; validation compares it with the balance computed from the events.",
            required=False,
            nullable=True,
        ),
    ),
    date_order=(("issued_at", "due_at"),),
)

PAYMENTS = TableSpec(
    name="payments",
    grain="one row per payment",
    key=("payment_id",),
    columns=(
        Column("payment_id", "string", "Payment identifier."),
        Column("customer_id", "string", "Payer.", references="customers.customer_id"),
        Column(
            "receivable_id",
            "string",
            "Receivable paid; null = paid on account (allocated oldest due first).",
            required=False,
            nullable=True,
            references="receivables.receivable_id",
        ),
        Column("paid_at", "date", "Payment date.", event_date=True),
        _money("amount", "Amount paid.", min_value=0, min_inclusive=False),
        Column(
            "method",
            "string",
            "Payment method (transfer, card, cash...): a by= grouping of the payment KPIs.",
            required=False,
            nullable=True,
        ),
    ),
)

ADJUSTMENTS = TableSpec(
    name="adjustments",
    grain="one row per non-cash change of a balance",
    key=("adjustment_id",),
    may_be_empty=True,
    columns=(
        Column("adjustment_id", "string", "Adjustment identifier."),
        Column(
            "receivable_id",
            "string",
            "Receivable adjusted.",
            references="receivables.receivable_id",
        ),
        Column("customer_id", "string", "Customer.", references="customers.customer_id"),
        Column("at", "date", "Date of the adjustment.", event_date=True),
        Column("kind", "string", "Kind; a reversal adds back.", categories=ADJUSTMENT_KINDS),
        _money("amount", "Amount adjusted (positive).", min_value=0, min_inclusive=False),
    ),
)

CONTACTS = TableSpec(
    name="contacts",
    grain="one row per collection action",
    key=("contact_id",),
    may_be_empty=True,
    columns=(
        Column("contact_id", "string", "Action identifier."),
        Column("customer_id", "string", "Customer.", references="customers.customer_id"),
        Column("at", "date", "Date of the action.", event_date=True),
        Column("channel", "string", "Channel used.", categories=CHANNELS),
        Column("outcome", "string", "Outcome (nested, see OUTCOMES).", categories=OUTCOMES),
        _money(
            "promise_amount",
            "Amount promised (outcome = promise).",
            required=False,
            nullable=True,
            min_value=0,
            min_inclusive=False,
        ),
        Column(
            "promise_due",
            "date",
            "Date the promise is due (future-dated by nature).",
            required=False,
            nullable=True,
        ),
        _money("cost", "Cost of the action.", required=False, nullable=True, min_value=0),
        Column(
            "agent",
            "string",
            "Code of the agent who acted (a code, never a name): a by= grouping of the "
            "contact KPIs.",
            required=False,
            nullable=True,
        ),
        Column(
            "queue",
            "string",
            "Work queue or campaign of the action: a by= grouping of the contact KPIs.",
            required=False,
            nullable=True,
        ),
    ),
)

SCORES = TableSpec(
    name="scores",
    grain="one row per score per customer per date",
    key=("customer_id", "scored_at", "source"),
    may_be_empty=True,
    example_id="customer_id",
    columns=(
        Column("customer_id", "string", "Customer.", references="customers.customer_id"),
        Column("scored_at", "date", "Date of the score.", event_date=True),
        Column("score", "float", "External score; orientation in the sources YAML.", unit="points"),
        Column("source", "string", "Who produced it (e.g. bureau).", required=False),
    ),
)

ASSIGNMENTS = TableSpec(
    name="assignments",
    grain="one row per customer per experiment",
    key=("experiment_id", "customer_id"),
    may_be_empty=True,
    example_id="customer_id",
    columns=(
        Column("experiment_id", "string", "Experiment."),
        Column("customer_id", "string", "Customer.", references="customers.customer_id"),
        Column("arm", "string", "Strategy arm (champion or a challenger)."),
        Column("segment", "string", "Segment at assignment (analyse by it)."),
        Column("assigned_at", "date", "Assignment date.", event_date=True),
    ),
)

EXTRACT = TableSpec(
    name="extract",
    grain="one row per account per extraction date (a monthly portfolio extract, 'cartera')",
    key=("account_id", "extracted_at"),
    may_be_empty=True,
    example_id="account_id",
    columns=(
        Column("account_id", "string", "Account (loan, card, contract) identifier."),
        Column(
            "customer_id",
            "string",
            "Customer; when absent, each account is its own customer (customer_id = account_id).",
            references="customers.customer_id",
        ),
        Column(
            "extracted_at",
            "date",
            "Date of the extract (a month end); when absent, the sources YAML's extraction_date.",
            event_date=True,
        ),
        _money("balance", "Outstanding balance at the extract date.", min_value=0),
        _money(
            "overdue_amount",
            "Past-due part of the balance; when absent, the whole balance of a past-due account.",
            required=False,
            nullable=True,
            min_value=0,
        ),
        Column(
            "days_past_due",
            "int",
            "Days past due at the extract date; when absent, from oldest_due_at.",
            unit="days",
            required=False,
            nullable=True,
            min_value=0,
        ),
        Column(
            "oldest_due_at",
            "date",
            "Due date of the oldest unpaid instalment (future-dated when nothing is due).",
            required=False,
            nullable=True,
        ),
        Column(
            "status",
            "string",
            "Account status; written_off accounts are off the book.",
            required=False,
            nullable=True,
            categories=EXTRACT_STATUSES,
        ),
        Column("product", "string", "Product.", required=False, nullable=True),
        Column(
            "issued_at",
            "date",
            "Opening date of the account.",
            required=False,
            nullable=True,
            event_date=True,
        ),  # fmt: skip
    ),
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        CUSTOMERS, RECEIVABLES, PAYMENTS, ADJUSTMENTS, CONTACTS, SCORES, ASSIGNMENTS, EXTRACT
    )
}  # fmt: skip
#: the event tables a book without an extract must provide
EVENT_TABLES = ("customers", "receivables", "payments")

PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    t.name: tuple(c.name for c in t.columns if c.personal) for t in TABLES.values()
}


#: pandas dtypes of the canonical types (dates as datetime64 seconds).
PANDAS_DTYPES = {
    "string": "string",
    "date": "datetime64[s]",
    "float": "float64",
    "int": "Int64",
    "bool": "boolean",
}


def empty_frame(spec: TableSpec) -> pd.DataFrame:
    """A typed pandas DataFrame with the table's columns and no rows."""
    return pd.DataFrame({c.name: pd.Series([], dtype=PANDAS_DTYPES[c.dtype]) for c in spec.columns})


def describe() -> pd.DataFrame:
    """Return the canonical model as a tidy table (one row per column), for documentation."""
    rows = []
    for t in TABLES.values():
        for c in t.columns:
            checks = []
            if c.name in t.key:
                checks.append("key" if len(t.key) == 1 else f"key({', '.join(t.key)})")
            if c.categories:
                checks.append("one of " + ", ".join(c.categories))
            if c.min_value is not None:
                checks.append(f"{'>=' if c.min_inclusive else '>'} {c.min_value:g}")
            if c.references:
                checks.append(f"references {c.references}")
            if c.event_date:
                checks.append("<= extraction date")
            rows.append(
                {
                    "table": t.name,
                    "column": c.name,
                    "type": c.dtype,
                    "unit": c.unit,
                    "required": c.required,
                    "nullable": c.nullable,
                    "checks": "; ".join(checks),
                    "personal": c.personal,
                    "description": c.description,
                }
            )
    return pd.DataFrame(rows)


def to_markdown() -> str:
    """The canonical model as Markdown (``docs/data-model.md`` is this text, kept in sync by a test)."""
    lines = [
        "# Canonical data model",
        "",
        "Generated from `collect_kit.schema` (`python -m collect_kit.schema > docs/data-model.md`).",
        "Money is in the portfolio currency; dates are calendar dates. Personal columns are read",
        "for contactability features only and never leave the engine.",
    ]
    frame = describe()
    for t in TABLES.values():
        lines += ["", f"## `{t.name}`", "", f"Grain: {t.grain}. Key: {', '.join(t.key)}."]
        if t.may_be_empty:
            lines[-1] += " May be absent or empty."
        lines += [
            "",
            "| column | type | unit | required | nullable | checks | description |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in frame[frame.table == t.name].itertuples(index=False):
            desc = row.description + (" **Personal data.**" if row.personal else "")
            lines.append(
                f"| `{row.column}` | {row.type} | {row.unit} | {'yes' if row.required else 'no'} | "
                f"{'yes' if row.nullable else 'no'} | {row.checks} | {desc} |"
            )
    lines += _own_data_markdown()
    return "\n".join(lines) + "\n"


def _own_data_markdown() -> list[str]:
    """The sections on a team's own fields and on optional inputs."""
    from .availability import DISABLES, FEATURE_NEEDS
    from .fields import FIELD_TABLES, ROLLUP_ROWS, ROLLUPS

    lines = [
        "",
        "## Your own fields (`extra:`)",
        "",
        f"The tables {', '.join(f'`{t}`' for t in FIELD_TABLES)} may declare extra columns "
        "under `extra:` in the sources YAML: source column -> `{type: string|float|int|bool|date, "
        "rollup: ..., as: NEW_NAME, personal: true, categories: [...]}`. They are validated "
        "like canonical columns and added to the snapshot under their name (`as:` when the "
        "source name collides with a canonical column or is not a usable name); `personal: true` "
        "fields never leave the engine. Customer fields are carried as they are; the other "
        "tables' fields roll up to one value per customer:",
        "",
        "| rollup | value per customer |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in ROLLUPS.items()],
        "",
        "Rows a rollup reads at a snapshot date `as_of`:",
        "",
        *[f"- `{table}`: {text}" for table, text in ROLLUP_ROWS.items()],
        "",
        "## Optional inputs",
        "",
        "Only `customers.customer_id`, the required columns of `receivables` and `payments` "
        "are needed. Validation lists every absent optional input as information with what "
        "it disables; KPIs, snapshot features and report sections that need it say "
        '"not available" instead of showing 0:',
        "",
        "| absent input | disables |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in DISABLES.items()],
        "",
        "## Books given as an extract",
        "",
        "A book without dated receivables and payments may be given as the `extract` table "
        "(one row per account and extraction date). The month-end book then comes from the "
        "extract of that date: an account's days past due are `days_past_due`, else "
        "`as_of - oldest_due_at`; its overdue amount is `overdue_amount`, else its whole "
        "balance when past due; `written_off` accounts are off the book. Segmentation, aging, "
        "% overdue, concentration, roll rates (between consecutive monthly extracts) and the "
        "report run on it. These snapshot features need dated events and are null (not "
        "available) for an extract without them: "
        + ", ".join(
            f"`{f}`"
            for f, needs in FEATURE_NEEDS.items()
            if set(needs) & {"receivables", "payments"}
        )
        + "; the contact and score features need their tables as in any book.",
    ]
    return lines


if __name__ == "__main__":
    print(to_markdown(), end="")
