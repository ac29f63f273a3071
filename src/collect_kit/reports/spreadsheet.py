"""Every table of a report as a spreadsheet: one XLSX workbook per notebook and one CSV per
table, read back from the exported HTML so the files hold exactly what the page shows.

A table is every ``<table class="ck-table">`` of the page (:func:`format.html_table`,
:func:`format.html_matrix`). A shown number carries its value (``data-value``) and is
written as a number with a format for its kind (count, percent, money...); a suppressed
count (``<5``), a withheld figure (``–``) and every text cell are written as text, text
cells neutralised as in every export of the kit (:func:`files.spreadsheet_safe`: a cell
starting like a formula gets a leading ``'``). Headers are frozen, columns sized to their
content. Sheet names are the table's caption (the ``ck-caption`` paragraph just before it;
else the section heading above it), unique
and at most 31 characters as Excel requires.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from .. import files

#: number formats per cell kind (Excel codes; the workbook's locale shows the separators)
NUMBER_FORMATS = {
    "count": "#,##0", "number": "#,##0", "money": "#,##0", "days": "#,##0",
    "number1": "#,##0.0", "number2": "#,##0.00", "number3": "#,##0.000", "percent": "0.0%",
}  # fmt: skip


@dataclass
class Cell:
    """One cell: the text the page shows and, for a shown number, its value and kind."""

    text: str
    value: float | None = None
    kind: str | None = None


@dataclass
class ReportTable:
    """One table of a page: its name (caption or the heading above it), header and rows."""

    name: str
    header: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)


class _Tables(HTMLParser):
    """Collects the ck-tables of a page and the last heading before each."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[ReportTable] = []
        self._heading: list[str] | None = None
        self._last_heading = ""
        self._table: ReportTable | None = None
        self._row: list[Cell] | None = None
        self._cell: Cell | None = None
        self._in_head = False
        self._caption: list[str] | None = None
        self._pending = ""  # a caption paragraph just before a table

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h1", "h2", "h3", "h4") and self._table is None:
            self._heading, self._pending = [], ""
        elif tag == "p" and "ck-caption" in (a.get("class") or "") and self._table is None:
            self._caption = []
        elif tag == "table" and "ck-table" in (a.get("class") or ""):
            self._table = ReportTable(self._pending or self._last_heading)
            self._pending = ""
        elif self._table is None:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            value = a.get("data-value")
            self._cell = Cell("", float(value) if value is not None else None, a.get("data-kind"))

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3", "h4") and self._heading is not None:
            self._last_heading = " ".join("".join(self._heading).split())
            self._heading = None
        elif tag == "p" and self._caption is not None and self._table is None:
            self._pending = " ".join("".join(self._caption).split())
            self._caption = None
        elif self._table is None:
            return
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._cell.text = " ".join(self._cell.text.split())
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._in_head:
                self._table.header = [c.text for c in self._row]
            else:
                self._table.rows.append(self._row)
            self._row = None
        elif tag == "table":
            self.tables.append(self._table)
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.text += data
        elif self._caption is not None:
            self._caption.append(data)
        elif self._heading is not None:
            self._heading.append(data)


def tables_of(page: str) -> list[ReportTable]:
    """The report tables of an HTML page, in page order."""
    parser = _Tables()
    parser.feed(page)
    parser.close()
    return parser.tables


def sheet_names(tables: list[ReportTable]) -> list[str]:
    """A unique sheet name per table: its name without the characters Excel refuses, at most
    31 characters, numbered when repeated (``Recovery rate (2)``)."""
    out: list[str] = []
    for i, t in enumerate(tables, start=1):
        base = re.sub(r"[\[\]:*?/\\]", " ", t.name).strip().strip("'") or f"Table {i}"
        name, k = base[:31], 1
        while name.lower() in (n.lower() for n in out):
            k += 1
            suffix = f" ({k})"
            name = base[: 31 - len(suffix)] + suffix
        out.append(name)
    return out


def _safe(text: str) -> str:
    return "'" + text if re.match(files.FORMULA_PATTERN, text) else text


def write_workbook(tables: list[ReportTable], path: Path) -> None:
    """One sheet per table (see the module docstring), written whole or not at all."""
    import xlsxwriter

    def write(tmp: Path) -> None:
        book = xlsxwriter.Workbook(
            str(tmp), {"strings_to_formulas": False, "strings_to_urls": False}
        )
        bold = book.add_format({"bold": True, "bg_color": "#EEF3F9", "text_wrap": True,
                                "valign": "bottom"})  # fmt: skip
        formats = {k: book.add_format({"num_format": v}) for k, v in NUMBER_FORMATS.items()}
        for table, name in zip(tables, sheet_names(tables), strict=True):
            sheet = book.add_worksheet(name)
            widths = [len(h) for h in table.header]
            for c, h in enumerate(table.header):
                sheet.write_string(0, c, _safe(h), bold)
            for r, row in enumerate(table.rows, start=1):
                for c, cell in enumerate(row):
                    if cell.value is not None:
                        sheet.write_number(r, c, cell.value, formats.get(cell.kind or "number"))
                    else:
                        sheet.write_string(r, c, _safe(cell.text))
                    if c < len(widths):
                        widths[c] = max(widths[c], len(cell.text))
                    else:
                        widths.append(len(cell.text))
            for c, w in enumerate(widths):
                sheet.set_column(c, c, min(max(w + 2, 8), 60))
            sheet.freeze_panes(1, 0)
        book.close()

    files.write_atomic(path, write, "report workbook")


def table_csv(table: ReportTable) -> str:
    """A table as CSV text: numbers as plain numbers, text neutralised."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([_safe(h) for h in table.header])
    for row in table.rows:
        w.writerow([repr(c.value) if c.value is not None else _safe(c.text) for c in row])
    return buf.getvalue()


def write_tables(page: str, folder: Path, name: str) -> list[str]:
    """``<name>.xlsx`` and ``<name>-tables/NN-<sheet>.csv`` for every table of ``page``
    (nothing when it has none); returns the file names relative to ``folder``."""
    tables = tables_of(page)
    if not tables:
        return []
    write_workbook(tables, folder / f"{name}.xlsx")
    out = [f"{name}.xlsx"]
    csv_dir = folder / f"{name}-tables"
    csv_dir.mkdir(exist_ok=True)
    for i, (table, sheet) in enumerate(zip(tables, sheet_names(tables), strict=True), start=1):
        slug = re.sub(r"[^a-z0-9]+", "-", sheet.lower()).strip("-")[:40] or "table"
        rel = f"{name}-tables/{i:02d}-{slug}.csv"
        files.write_atomic(folder / rel, table_csv(table), "report table CSV")
        out.append(rel)
    return out
