"""Numbers, dates and tables as a report shows them: locale-aware and privacy-safe.

Privacy (DESIGN §9): a cell describing 1-4 customers is shown as "<5" (and the amounts of
that row are withheld); zero stays 0, so empty segments remain visible.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import catalogue
from ..errors import InvalidParameterError

SMALL = 5  # counts of 1 .. SMALL-1 customers are suppressed
SUPPRESSED = "<5"
WITHHELD = "–"  # a figure about 1-4 customers, withheld (the table says so under it)
LANGUAGES = catalogue.languages()  # a language is a catalogue file (collect_kit/catalogue)


@dataclass(frozen=True)
class Formatter:
    """Formats for one report language: separators and dates from its catalogue's
    ``format`` section (``en`` 1,234.5 and 2026-10-31, ``es`` 1.234,5 and 31-10-2026,
    ``pt`` 1.234,5 and 31/10/2026)."""

    language: str = "en"
    currency: str = ""
    #: display names of the run's segments, strategies, arms and experiments (code ->
    #: words in this language, from their configs); :meth:`name` falls back to the code
    names: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.language not in LANGUAGES:
            raise InvalidParameterError(
                f"language: '{self.language}' is not one of {', '.join(LANGUAGES)}"
            )

    def name(self, code) -> str:
        """The display name of a segment, strategy, arm or experiment ``code``."""
        return self.names.get(code, code) if isinstance(code, str) else code

    def number(self, x, decimals: int = 0) -> str:
        """A number with thousands separators; empty for a missing value."""
        if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
            return ""
        text = f"{x:,.{decimals}f}"
        words = catalogue.catalogue(self.language)
        thousands, decimal = words["format.thousands"], words["format.decimal"]
        if (thousands, decimal) != (",", "."):
            text = text.replace(",", "\x00").replace(".", decimal).replace("\x00", thousands)
        return text

    def percent(self, fraction, decimals: int = 1) -> str:
        """A fraction (0-1) as a percentage: 0.234 -> '23.4 %' / '23,4 %'."""
        text = self.number(None if fraction is None else fraction * 100, decimals)
        return f"{text} %" if text else ""

    def money(self, x, decimals: int = 0) -> str:
        text = self.number(x, decimals)
        return f"{text} {self.currency}".strip() if text else ""

    def short_money(self, x) -> str:
        """Money abbreviated for a tile, with at least three significant digits and the
        currency first: en ``CLP 18.2 bn`` / ``CLP 243 M`` / ``CLP 51 k``; es
        ``CLP 18.243 millones`` / ``CLP 243 mil`` (no "billón": 10^12 in Spanish). The
        scales and their words are the catalogue's ``format.scales``."""
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return ""
        scales = catalogue.catalogue(self.language)["format.scales"]
        value, word = float(x), ""
        for scale, name in sorted(scales, key=lambda s: -float(s[0])):
            if abs(x) >= float(scale):
                value, word = float(x) / float(scale), name
                break
        digits = int(math.floor(math.log10(abs(value)))) + 1 if value else 1
        text = self.number(value, max(0, 3 - digits) if word else 0)
        return " ".join(p for p in (self.currency, text, word) if p)

    def date(self, d) -> str:
        return pd.Timestamp(d).strftime(catalogue.catalogue(self.language)["format.date"])

    def count(self, n) -> str:
        """A count of customers with small-cell suppression: 1-4 -> '<5'; 0 stays 0."""
        if n is None or (isinstance(n, float) and math.isnan(n)):
            return ""
        return SUPPRESSED if 0 < n < SMALL else self.number(n)


#: tables of at most this many rows are kept on one page (with their caption)
SHORT_TABLE = 15

#: text columns holding codes shown by their display name (:meth:`Formatter.name`)
NAMED_COLUMNS = frozenset({"segment", "strategy", "arm", "challenger", "champion", "experiment"})


def is_small(n) -> bool:
    """Whether a count of customers must be suppressed (1 to 4)."""
    return n is not None and not (isinstance(n, float) and math.isnan(n)) and 0 < n < SMALL


def html_table(
    frame: pd.DataFrame,
    formats: Mapping[str, str],
    fmt: Formatter,
    labels: Mapping[str, str] | None = None,
    count_column: str | None = None,
    caption: str | None = None,
    totals: Mapping[str, object] | None = None,
) -> str:
    """Render ``frame`` as an HTML table, every cell escaped, nothing truncated.

    ``formats``: column -> ``text``, ``count``, ``number``, ``number1``, ``number3``, ``percent``,
    ``money``, ``days`` or ``light`` (a traffic-light code); only these columns are shown,
    in this order; numeric headers align with their numbers. A legend follows a table with
    lights, and a note one with withheld figures. ``count_column``:
    the customers behind each row; where it is 1-4 the row's other numbers are withheld.
    ``totals``: a last row in bold (column -> value, formatted like the column; e.g. money
    summed and rates recomputed over the whole by the caller).
    """
    labels = labels or {}
    if totals:
        frame = pd.concat([frame, pd.DataFrame([dict(totals)])], ignore_index=True)
    head = "".join(
        f'<th class="{"text" if kind in ("text", "light") else "num"}">{html.escape(str(labels.get(c, c)))}</th>'
        for c, kind in formats.items()
    )
    body = []
    withheld = False
    for _, row in frame.iterrows():
        small = count_column is not None and is_small(row[count_column])
        cells = []
        for col, kind in formats.items():
            v = row[col]
            if kind == "text":
                text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                text = fmt.name(text) if col in NAMED_COLUMNS else text
                withheld |= text == WITHHELD
                cells.append(f'<td class="text">{html.escape(text)}</td>')
                continue
            if kind == "light":
                cells.append(light_cell(v, fmt.language))
                continue
            if kind == "count":
                text = fmt.count(v)
            elif small or (isinstance(v, str) and v == WITHHELD):
                text, withheld = WITHHELD, True
            elif kind == "percent":
                text = fmt.percent(v)
            elif kind == "money":
                text = fmt.number(v)
            elif kind == "number1":
                text = fmt.number(v, 1)
            elif kind == "number2":
                text = fmt.number(v, 2)
            elif kind == "number3":
                text = fmt.number(v, 3)
            else:  # number, days
                text = fmt.number(v)
            cells.append(_num_cell(text, v, kind))
        last = totals and len(body) == len(frame) - 1
        body.append(('<tr class="ck-total">' if last else "<tr>") + "".join(cells) + "</tr>")
    cap = f'<p class="ck-caption">{html.escape(caption)}</p>' if caption else ""
    from .text import sentence

    foot = ""
    if withheld:
        foot = (
            f'<p class="ck-note">{html.escape(sentence("withheld_note", fmt, mark=WITHHELD))}</p>'
        )
    if any(kind == "light" for kind in formats.values()):
        foot += f'<p class="ck-note">{html.escape(sentence("light_legend", fmt))}</p>'
    short = " ck-short" if len(body) <= SHORT_TABLE else ""
    return (
        f'{cap}<table class="ck-table {_width_class(len(formats))}{short}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{foot}"
    )


#: traffic lights: a shape per state, so they read in greyscale print too (words: text.LABELS)
LIGHTS = {"green": "●", "yellow": "▲", "red": "■"}


def light_cell(code, language: str) -> str:
    """A traffic light (``green``, ``yellow``, ``red``; anything else: none) as a table cell:
    its shape, its word in ``language`` and its colour."""
    from .text import label

    if code not in LIGHTS:
        return '<td class="text">–</td>'
    word = label(f"light_{code}", language)
    return f'<td class="text ck-light ck-light-{code}">{LIGHTS[code]} {html.escape(word)}</td>'


def _num_cell(text: str, value, kind: str) -> str:
    """A numeric cell: the formatted text, and the number itself (``data-value``, with its
    ``data-kind``) when it is shown, so the spreadsheet export writes numbers, not text."""
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    shown = number and text not in ("", SUPPRESSED, WITHHELD) and math.isfinite(value)
    data = f' data-value="{float(value)!r}" data-kind="{kind}"' if shown else ""
    return f'<td class="num"{data}>{html.escape(text)}</td>'


def _width_class(columns: int) -> str:
    """Wide tables get smaller type so they fit the page instead of being clipped."""
    return "ck-cols-xl" if columns > 12 else "ck-cols-l" if columns > 8 else ""


def html_matrix(
    matrix: pd.DataFrame, fmt: Formatter, corner: str = "", caption: str | None = None
) -> str:
    """A matrix of customer counts (e.g. absorption, migration), suppressed and escaped;
    rows and columns by their display names."""
    head = f'<th class="text">{html.escape(corner)}</th>' + "".join(
        f'<th class="num">{html.escape(str(fmt.name(c)))}</th>' for c in matrix.columns
    )
    rows = []
    for idx, row in matrix.iterrows():
        cells = "".join(_num_cell(fmt.count(v), v, "count") for v in row)
        rows.append(f'<tr><th class="row">{html.escape(str(fmt.name(idx)))}</th>{cells}</tr>')
    cap = f'<p class="ck-caption">{html.escape(caption)}</p>' if caption else ""
    width = _width_class(len(matrix.columns) + 1)
    return f'{cap}<table class="ck-table ck-matrix {width} ck-short"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
