"""The reports' words, read from the text catalogue (:mod:`collect_kit.catalogue`), and
the sentences generated from numbers.

Every word a report shows comes from here: ``label`` (table headers, short words),
``sentence`` (templates with placeholders), ``heading`` (section headings), ``title``
(figure titles, axes and captions), ``state`` (DPD buckets and end-of-month states,
stability readings), ``channel`` and ``kpi_word`` (a KPI's label, definition, numerator,
denominator and source). A key missing in a language reads the English word.
"""

from __future__ import annotations

import html
import math

from .. import catalogue
from .format import Formatter


def _entry(section: str, key: str, language: str, default: str | None = None) -> str:
    words = catalogue.catalogue(language)
    if default is None:
        return words[f"{section}.{key}"]
    return words.get(f"{section}.{key}", default)


def sentence(key: str, fmt: Formatter, **values) -> str:
    """The sentence ``key`` of the catalogue in the report's language, filled in."""
    return _entry("sentences", key, fmt.language).format(**values)


def title(key: str, fmt: Formatter, **values) -> str:
    """A figure's title, an axis or a table caption (``titles``), filled in."""
    return _entry("titles", key, fmt.language).format(**values)


def label(key: str, language: str) -> str:
    """The word for ``key`` in ``language`` (the key itself when the catalogue has none)."""
    return _entry("labels", key, language, key)


def display_names(labels, language: str) -> dict[str, str]:
    """Code -> display name in ``language`` from config labels (code -> {language: words},
    falling back to English, then the code); the catch-all segment without a label is the
    catalogue's "Other"."""
    from ..segmentation.rules import DEFAULT
    from ..yamlconfig import display

    out = {code: display(words, language, code) for code, words in labels.items()}
    out.setdefault(DEFAULT, label("default_segment", language))
    return out


def state(name, language: str) -> str:
    """A DPD bucket, end-of-month state or reading (``current``, ``paid_off``,
    ``written_off``, ``stable``...) in words; other names (``1-30``) as given."""
    return _entry("states", str(name), language, str(name))


def channel(name, language: str) -> str:
    """A contact channel (``sms``, ``call``...) in words; a team's own channel as given."""
    return _entry("channels", str(name), language, str(name))


def kpi_word(name: str, field: str, language: str) -> str:
    """A KPI's ``label``, ``definition``, ``numerator``, ``denominator`` or ``source``."""
    return _entry("kpis", f"{name}.{field}", language)


def not_available(name: str, fmt: Formatter) -> str:
    """ "Not available: ..." for an absent input ``name`` (``contacts`` or
    ``contacts.cost``), in the report's language."""
    if name in ("payments", "receivables"):
        return sentence(f"not_available_{name}", fmt)
    if "." in name:
        table, column = name.split(".", 1)
        return sentence("not_available_column", fmt, table=table, name=column)
    return sentence("not_available_table", fmt, name=name)


def document_title(report_title: str, notebook: str, language: str) -> str:
    """The title of one document of a run: the report's title and what the document is
    (``Monthly collections report: Segmentation``), so the three PDFs of a run differ."""
    words = catalogue.catalogue(language).get(f"headings.document_{notebook}")
    return f"{report_title}: {words}" if words else report_title


def heading(key: str, fmt: Formatter, level: int = 2, **values) -> str:
    """A section heading of any report (``HEADINGS``) in the report's language; ``values``
    fill its placeholders (escaped with the rest)."""
    words = _entry("headings", key, fmt.language).format(**values)
    return f"<h{level}>{html.escape(words)}</h{level}>"


def paragraph(text: str, lead: bool = False) -> str:
    """Plain sentences as safe HTML: every character escaped, never read as Markdown.

    Sentences carry user-controlled names (segments, strategies, arms, experiments,
    files), so they are shown as text: ``<img ...>`` or ``[x](javascript:...)`` in a
    segment name stays visible text. Lines starting with ``- `` become a bulleted list.
    ``lead``: the paragraph introduces what follows (a figure, a table) and stays on its
    page.
    """
    lines = [line for line in (text or "").split("\n") if line.strip()]
    if not lines:
        return ""
    out, items = [], []
    for line in lines:
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            out.append(f"<ul>{''.join(items)}</ul>")
            items = []
        out.append(
            f'<p class="ck-lead">{html.escape(line)}</p>' if lead else f"<p>{html.escape(line)}</p>"
        )
    if items:
        out.append(f"<ul>{''.join(items)}</ul>")
    return "".join(out)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def change_sentence(
    name: str,
    current,
    previous,
    unit: str,
    fmt: Formatter,
    driver: str | None = None,
    short: bool = False,
) -> str:
    """One sentence on how a figure moved since the previous month.

    ``unit``: ``fraction`` (a rate; the change is in percentage points), ``currency``,
    ``days`` or ``count``. Handles a rise, a fall, no change (equal when rounded as shown)
    and a missing current or previous value. ``driver``: what explains most of a rise or
    fall (e.g. "customers 1-30 days past due at the start (+1.1 points)"), appended as
    "driven by ..." when the figure moved. ``short``: money abbreviated (CLP 18.2 bn).
    """
    lang = fmt.language

    def show(x):
        if unit == "fraction":
            return fmt.percent(x)
        if unit == "currency":
            return fmt.short_money(x) if short else fmt.money(x)
        if unit == "days":
            return f"{fmt.number(x, 1)} {label('days_unit', lang)}"
        return fmt.number(x)

    if _missing(current):
        return sentence("change_no_data", fmt, name=name)
    if _missing(previous):
        return sentence("change_no_previous", fmt, name=name, value=show(current))
    if unit == "fraction":
        delta = round((current - previous) * 100, 1)
        amount = f"{fmt.number(abs(delta), 1)} {label('points', lang)}"
    else:
        delta = round(current - previous, 1 if unit == "days" else 0)
        amount = show(abs(delta))
    if delta == 0:
        return sentence("change_unchanged", fmt, name=name, value=show(current))
    why = sentence("driven_by", fmt, driver=driver) if driver else ""
    key = "change_rose" if delta > 0 else "change_fell"
    return sentence(key, fmt, name=name, amount=amount, value=show(current), why=why)


def design_sentence(row, fmt: Formatter) -> str:
    """A row of :func:`experiments.design.design` in words: the payer-rate lift this sample
    detects and the customers the target lift needs."""
    split = f"{fmt.number(row.champion_share * 100)}/{fmt.number(row.challenger_share * 100)}"
    mde, need = row.mde_payer_rate_achievable, row.needed_customers
    segment, have = fmt.name(row.segment), fmt.number(row.customers)
    if mde != mde:
        head = sentence("design_too_few", fmt, segment=segment, customers=have)
    else:
        head = sentence(
            "design_detectable", fmt, segment=segment, customers=have, split=split,
            mde=fmt.number(mde * 100, 1), rate=fmt.percent(row.payer_rate),
            power=fmt.percent(row.power, 0),
        )  # fmt: skip
    if need != need:
        return head + "."
    target = fmt.number(row.mde_payer_rate * 100, 1)
    return head + sentence("design_needs", fmt, target=target, customers=fmt.number(need))


def duration_sentence(row, fmt: Formatter) -> str:
    """A row of :func:`experiments.run.design_experiment`: the primary metric's sample and
    how long it takes (everyone owing now at once, then the segment's monthly inflow, then
    the last outcome window)."""
    metric = row.primary_metric.replace("_", " ")
    needed, weeks, inflow, available = (
        row.needed_primary,
        row.expected_weeks,
        row.monthly_inflow,
        row.customers,
    )
    if needed != needed:
        return sentence("duration_at_readout", fmt, metric=metric)
    values = dict(metric=metric, needed=fmt.number(needed), available=fmt.number(available),
                  days=row.window_days, inflow=fmt.number(inflow))  # fmt: skip
    if needed <= available:
        return sentence("duration_owing_suffice", fmt, weeks=fmt.number(weeks), **values)
    if weeks != weeks:
        return sentence("duration_never", fmt, **values)
    if weeks > 104:
        return sentence("duration_years", fmt, years=fmt.number(weeks / 52), **values)
    return sentence("duration_weeks", fmt, weeks=fmt.number(weeks), **values)
