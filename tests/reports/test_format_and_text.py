"""Report formats (locale, privacy, escaping) and generated sentences."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from collect_kit.reports.format import Formatter, html_matrix, html_table
from collect_kit.reports.text import change_sentence

EN, ES = Formatter("en", "CLP"), Formatter("es", "CLP")


def test_numbers_in_both_languages():
    assert EN.number(1234567.891, 2) == "1,234,567.89"
    assert ES.number(1234567.891, 2) == "1.234.567,89"
    assert EN.percent(0.2346) == "23.5 %" and ES.percent(0.2346) == "23,5 %"
    assert EN.money(1500) == "1,500 CLP"
    assert EN.number(float("nan")) == "" and EN.percent(None) == ""
    assert EN.date("2026-10-31") == "2026-10-31" and ES.date("2026-10-31") == "31-10-2026"
    with pytest.raises(ValueError, match="language"):
        Formatter("fr")


@pytest.mark.parametrize("n, shown", [(0, "0"), (1, "<5"), (4, "<5"), (5, "5"), (1234, "1,234")])
def test_small_counts_are_suppressed_and_zero_stays(n, shown):
    assert EN.count(n) == shown


def test_table_escapes_and_withholds_small_rows():
    frame = pd.DataFrame(
        {
            "segment": ["<script>alert(1)</script>", "A & B | C", "Tiny"],
            "customers": [10, 20, 3],
            "balance": [1000.0, 2000.0, 77777.0],
        }
    )
    out = html_table(
        frame,
        {"segment": "text", "customers": "count", "balance": "money"},
        EN,
        count_column="customers",
    )
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "A &amp; B | C" in out
    assert "&lt;5" in out and "77,777" not in out  # 3 customers: count suppressed, amount withheld
    assert "2,000" in out


def test_matrix_suppresses_small_cells():
    m = pd.DataFrame([[10, 2], [0, 7]], index=["a<b", "c"], columns=["x", "y"])
    out = html_matrix(m, EN)
    assert out.count("&lt;5") == 1 and ">0<" in out and "a&lt;b" in out


@pytest.mark.parametrize(
    "current, previous, unit, en, es",
    [
        (0.234, 0.216, "fraction", "Recovery rate rose 1.8 points to 23.4 %.", "Recovery rate subió 1,8 puntos hasta 23,4 %."),
        (0.20, 0.25, "fraction", "Recovery rate fell 5.0 points to 20.0 %.", "Recovery rate bajó 5,0 puntos hasta 20,0 %."),
        (0.2341, 0.2339, "fraction", "Recovery rate was unchanged at 23.4 %.", "Recovery rate se mantuvo en 23,4 %."),
        (0.25, math.nan, "fraction", "Recovery rate was 25.0 %; no figure for the previous month.",
         "Recovery rate fue 25,0 %; sin cifra del mes anterior."),
        (None, 0.2, "fraction", "Recovery rate: no data this month.", "Recovery rate: sin datos este mes."),
        (1_500_000, 1_000_000, "currency", "Recovery rate rose 500,000 CLP to 1,500,000 CLP.",
         "Recovery rate subió 500.000 CLP hasta 1.500.000 CLP."),
    ],
)  # fmt: skip
def test_change_sentences(current, previous, unit, en, es):
    assert change_sentence("Recovery rate", current, previous, unit, EN) == en
    assert change_sentence("Recovery rate", current, previous, unit, ES) == es
