"""Report tables as spreadsheets: numbers as numbers, suppressed cells as text, formulas
neutralised, one sheet per table (read back with openpyxl, an independent reader)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pandas as pd

from collect_kit.reports.format import Formatter, html_matrix, html_table
from collect_kit.reports.spreadsheet import sheet_names, table_csv, tables_of, write_tables

EN, ES = Formatter("en", "CLP"), Formatter("es", "CLP")


def _page(fmt: Formatter) -> str:
    frame = pd.DataFrame({
        "segment": ["=cmd|' /C calc'!A0", "Low risk", "Tiny"],
        "customers": [1234, 20, 3],
        "rate": [0.2345, 0.5, 0.9],
        "balance": [1_234_567.0, 2_000.0, 77_777.0],
    })  # fmt: skip
    formats = {"segment": "text", "customers": "count", "rate": "percent", "balance": "money"}
    first = html_table(
        frame, formats, fmt, {"segment": "Segment"}, "customers", "Balances: by segment"
    )
    matrix = html_matrix(pd.DataFrame([[10, 2]], index=["a"], columns=["x", "y"]), fmt)
    return f"<h2>Overview</h2>{first}<h2>Migration</h2>{matrix}"


def test_every_table_is_a_sheet_with_numbers_as_numbers(tmp_path):
    for fmt in (EN, ES):
        written = write_tables(_page(fmt), tmp_path, f"report_{fmt.language}")
        assert written[0] == f"report_{fmt.language}.xlsx" and len(written) == 3
        book = openpyxl.load_workbook(tmp_path / written[0])
        assert book.sheetnames == ["Balances  by segment", "Migration"]  # caption, else heading
        ws = book["Balances  by segment"]
        rows = [[c.value for c in r] for r in ws.iter_rows()]
        assert rows[0] == ["Segment", "customers", "rate", "balance"]
        assert rows[1] == ["'=cmd|' /C calc'!A0", 1234, 0.2345, 1_234_567]  # formula neutralised
        assert rows[3] == ["Tiny", "<5", "–", "–"]  # suppressed and withheld stay text
        assert ws["C2"].number_format == "0.0%" and ws["B2"].number_format == "#,##0"
        assert ws.freeze_panes == "A2"
        m = book["Migration"]
        assert [[c.value for c in r] for r in m.iter_rows()] == [["", "x", "y"], ["a", 10, "<5"]]
        # the CSV of the same table
        text = (tmp_path / written[1]).read_text()
        parsed = list(csv.reader(io.StringIO(text)))
        assert parsed[1] == ["'=cmd|' /C calc'!A0", "1234.0", "0.2345", "1234567.0"]
        assert parsed[3] == ["Tiny", "<5", "–", "–"]


def test_names_are_unique_short_and_legal():
    tables = tables_of("<h2>A</h2>" + html_table(pd.DataFrame({"x": [1]}), {"x": "count"}, EN) * 2)
    long = tables_of(html_table(pd.DataFrame({"x": [1]}), {"x": "count"}, EN,
                                caption="Recovery rate by segment and month: [all] / a very long one"))  # fmt: skip
    assert sheet_names(tables) == ["A", "A (2)"]
    name = sheet_names(long)[0]
    assert len(name) <= 31 and not set(name) & set("[]:*?/\\")
    assert table_csv(tables[0]).splitlines() == ["x", "<5"]  # a count of 1 is suppressed


def test_a_page_without_tables_writes_nothing(tmp_path):
    assert write_tables("<h2>Nothing</h2><p>text</p>", tmp_path, "empty") == []
    assert not list(tmp_path.iterdir())
