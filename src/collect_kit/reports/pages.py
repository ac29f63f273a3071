"""Sections of the report notebooks as HTML and sentences, built from the package's results.

Each function takes results (tidy DataFrames or result objects) and a
:class:`~collect_kit.reports.format.Formatter`, and returns HTML or text; the notebooks
only display them. All text is escaped; counts of 1-4 customers are suppressed.
"""

from __future__ import annotations

import html

import pandas as pd

from ..segmentation import Comparison, Explanation
from .format import Formatter, html_matrix, html_table, is_small
from .text import label


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
    es = fmt.language == "es"
    rules = seg[seg.segment != seg.segment.iloc[-1]]
    total = int(seg.customers.sum())
    if total == 0:
        return "La cartera no tiene clientes." if es else "The portfolio has no customers."
    lines = []
    if len(rules) and rules.customers.max() > 0:
        top = rules.loc[rules.customers.idxmax()]
        n = fmt.count(top.customers)
        lines.append(
            f"El segmento más grande es {top.segment}, con {n} clientes ({fmt.percent(top.share)})."
            if es
            else f"The largest segment is {top.segment}, with {n} customers ({fmt.percent(top.share)})."
        )
    default = seg.iloc[-1]
    lines.append(
        f"{fmt.percent(default.share)} de los clientes no cumple ninguna regla y queda en {default.segment}."
        if es
        else f"{fmt.percent(default.share)} of the customers meet no rule and fall to {default.segment}."
    )
    empty = result.empty_segments
    if empty:
        names = ", ".join(empty)
        lines.append(f"Segmentos vacíos: {names}." if es else f"Empty segments: {names}.")
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
        msg = (
            "Sin hallazgos en las reglas."
            if fmt.language == "es"
            else "No findings about the rules."
        )
        return f'<p class="ck-note">{msg}</p>'
    cols = ["severity", "segment", "check", "message"]
    return html_table(lint, dict.fromkeys(cols, "text"), fmt, _labels(cols, fmt.language))


def absorption(result: Explanation, fmt: Formatter) -> str:
    return html_matrix(result.absorption_matrix(), fmt, corner=label("taken_by", fmt.language))


def migration_matrix(comparison: Comparison) -> pd.DataFrame:
    return comparison.matrix("customers")


def migration_summary(comparison: Comparison, fmt: Formatter) -> str:
    """Share of customers who changed segment since the previous month, and the PSI."""
    m = comparison.migration
    present = m[(m.from_segment != "(not in snapshot)") & (m.to_segment != "(not in snapshot)")]
    moved = int(present.loc[present.from_segment != present.to_segment, "customers"].sum())
    total = int(present.customers.sum())
    share = moved / total if total else float("nan")
    es = fmt.language == "es"
    reading = {"stable": "estable", "some shift": "algún cambio", "major shift": "cambio mayor"}
    psi = fmt.number(comparison.psi_total, 3)
    moved_text = fmt.count(moved) if not is_small(moved) else "<5"
    if es:
        return (
            f"{moved_text} clientes ({fmt.percent(share)}) cambiaron de segmento desde el mes anterior. "
            f"Índice de estabilidad (PSI) de la mezcla de segmentos: {psi} ({reading.get(comparison.reading, comparison.reading)})."
        )
    return (
        f"{moved_text} customers ({fmt.percent(share)}) changed segment since the previous month. "
        f"Population stability index of the segment mix: {psi} ({comparison.reading})."
    )


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
