"""Sections of the report notebooks as HTML and sentences, built from the package's results.

Each function takes results (tidy DataFrames or result objects) and a
:class:`~collect_kit.reports.format.Formatter`, and returns HTML or text; the notebooks
only display them. All text is escaped; counts of 1-4 customers are suppressed.
"""

from __future__ import annotations

import html

import pandas as pd

from ..segmentation import Comparison, Explanation
from ..segmentation.compare import ABSENT
from .format import Formatter, html_matrix, html_table
from .text import label, sentence, state


def title_block(title: str, portfolio: str, as_of, run_id: str, fmt: Formatter) -> str:
    """Report title, portfolio name, date and run id."""
    parts = [f"{html.escape(portfolio)}", f"{label('as_of', fmt.language)} {fmt.date(as_of)}"]
    if run_id:
        parts.append(f"{label('run', fmt.language)} {html.escape(run_id)}")
    return (
        f'<div class="ck-title"><h1>{html.escape(title)}</h1>'
        f'<div class="sub">{" · ".join(parts)}</div></div>'
    )


def _labels(columns, language: str) -> dict[str, str]:
    return {c: label(c, language) for c in columns}


def segment_table(result: Explanation, fmt: Formatter) -> str:
    """Customers, share, balances and mean DPD per segment (small segments suppressed)."""
    formats = {
        "segment": "text", "strategy": "text", "customers": "count", "share": "percent",
        "balance": "money", "overdue_balance": "money", "mean_days_past_due": "number",
    }  # fmt: skip
    labels = _labels(formats, fmt.language)
    for money in ("balance", "overdue_balance"):
        labels[money] = f"{labels[money]} ({fmt.currency})" if fmt.currency else labels[money]
    return html_table(result.segments, formats, fmt, labels, count_column="customers")


def segment_summary(result: Explanation, fmt: Formatter) -> str:
    """Sentences on the largest segment, the Default share and the empty segments."""
    seg = result.segments
    total = int(seg.customers.sum())
    if total == 0:
        return sentence("portfolio_empty", fmt)
    lines = []
    default, rules = seg.iloc[-1], seg.iloc[:-1]
    if default.customers > 0 and default.customers >= seg.customers.max():
        lines.append(sentence("default_largest", fmt, segment=fmt.name(default.segment),
                              share=fmt.percent(default.share), n=fmt.count(default.customers)))  # fmt: skip
        default = None
    if len(rules) and rules.customers.max() > 0:
        top = rules.loc[rules.customers.idxmax()]
        key = "largest_segment" if default is not None else "largest_rule_segment"
        lines.append(sentence(key, fmt, segment=fmt.name(top.segment),
                              n=fmt.count(top.customers), share=fmt.percent(top.share)))  # fmt: skip
    if default is not None:
        lines.append(sentence("default_share", fmt, share=fmt.percent(default.share),
                              segment=fmt.name(default.segment)))  # fmt: skip
    empty = result.empty_segments
    if empty:
        lines.append(sentence("empty_segments", fmt, names=", ".join(map(fmt.name, empty))))
    return " ".join(lines)


def empty_reasons(result: Explanation, fmt: Formatter) -> str:
    empty = result.segments[result.segments.status == "empty"]
    if not len(empty):
        return ""
    return html_table(
        empty,
        {"segment": "text", "reason": "text"},
        fmt,
        _labels(["segment", "reason"], fmt.language),
    )


def findings(result: Explanation, fmt: Formatter) -> str:
    lint = result.lint[result.lint.check != "empty_segment"]
    if not len(lint):
        return f'<p class="ck-note">{html.escape(sentence("no_rule_findings", fmt))}</p>'
    cols = ["severity", "segment", "check", "message"]
    return html_table(lint, dict.fromkeys(cols, "text"), fmt, _labels(cols, fmt.language))


def absorption(result: Explanation, fmt: Formatter) -> str:
    return html_matrix(result.absorption_matrix(), fmt, corner=label("taken_by", fmt.language))


def migration_matrix(comparison: Comparison, fmt: Formatter) -> pd.DataFrame:
    """Customers by segment last month (rows) and this month (columns), display names."""
    m = comparison.matrix("customers")
    return m.rename(index=lambda n: _display(n, fmt), columns=lambda n: _display(n, fmt))


def _display(name, fmt: Formatter) -> str:
    return state("not_in_snapshot", fmt.language) if name == ABSENT else fmt.name(name)


def migration_summary(comparison: Comparison, fmt: Formatter) -> str:
    """Share of customers who changed segment since the previous month, and the PSI."""
    m = comparison.migration
    present = m[(m.from_segment != ABSENT) & (m.to_segment != ABSENT)]
    moved = int(present.loc[present.from_segment != present.to_segment, "customers"].sum())
    total = int(present.customers.sum())
    share = moved / total if total else float("nan")
    return sentence(
        "migration_summary", fmt, moved=fmt.count(moved), share=fmt.percent(share),
        psi=fmt.number(comparison.psi_total, 3), reading=state(comparison.reading, fmt.language),
    )  # fmt: skip


def profile_table(profile: pd.DataFrame, fmt: Formatter) -> str:
    formats = {"segment": "text", "customers": "count"}
    for col, kind in (("mean_score", "number"), ("mean_days_past_due", "number"),
                      ("mean_broken_promises", "number1"), ("company_share", "percent"),
                      ("valid_phone_share", "percent"), ("new_share", "percent")):  # fmt: skip
        if col in profile.columns:
            formats[col] = kind
    return html_table(
        profile, formats, fmt, _labels(formats, fmt.language), count_column="customers"
    )
