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


def _cells(out: str, tag: str) -> list[list[str]]:
    """The class of every ``tag`` cell per row of an HTML table."""
    import re

    rows = re.findall(r"<tr>(.*?)</tr>", out)
    return [re.findall(rf'<{tag} class="([^"]*)"', r) for r in rows]


def test_headers_align_with_their_columns_and_withheld_figures_are_explained():
    frame = pd.DataFrame({"segment": ["A", "Tiny"], "customers": [10, 3],
                          "rate": [0.25, 0.5], "balance": [1000.0, 2000.0]})  # fmt: skip
    formats = {"segment": "text", "customers": "count", "rate": "percent", "balance": "money"}
    for fmt, note in (
        (EN, "a figure about fewer than 5 customers"),
        (ES, "cifra sobre menos de 5"),
    ):
        out = html_table(frame, formats, fmt, count_column="customers")
        head = _cells(out, "th")[0]
        for row in _cells(out, "td")[1:]:
            assert [c.split()[0] for c in row] == head  # each header aligned as its column
        assert head == ["text", "num", "num", "num"]
        assert "50.0" not in out and "50,0" not in out and f"– {note}" in out
    # no withheld figure: no note
    assert "fewer than 5" not in html_table(frame.iloc[:1], formats, EN, count_column="customers")
    m = html_matrix(pd.DataFrame([[10, 2]], index=["a"], columns=["x", "y"]), EN)
    assert _cells(m, "th")[0] == ["text", "num", "num"]


def test_traffic_lights_differ_in_shape_and_have_a_legend():
    frame = pd.DataFrame({"band": ["1", "2", "3", "4"], "light": ["green", "yellow", "red", "n/a"]})
    for fmt, words in (
        (EN, ["● in line", "▲ watch", "■ act"]),
        (ES, ["● en línea", "▲ vigilar", "■ actuar"]),
    ):
        out = html_table(frame, {"band": "text", "light": "light"}, fmt)
        for row in _cells(out, "td")[1:]:
            assert [c.split()[0] for c in row] == _cells(out, "th")[0]  # aligned as its header
        for w in words:
            assert w in out
        assert ">green<" not in out and "red<" not in out
        assert ("Traffic light: binomial test" if fmt is EN else "Semáforo: prueba binomial") in out


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


def test_change_sentence_names_its_driver_only_when_the_figure_moved():
    en, es = Formatter("en"), Formatter("es")
    who = "customers 1-30 days past due at the start of the month (+1.1 points)"
    assert change_sentence("Recovery rate", 0.234, 0.216, "fraction", en, who) == (
        f"Recovery rate rose 1.8 points to 23.4 %, driven by {who}."
    )
    assert change_sentence("Tasa", 0.2, 0.25, "fraction", es, "X").endswith(
        "bajó 5,0 puntos hasta 20,0 %, explicado por X."
    )
    assert "driven" not in change_sentence("Recovery rate", 0.2, 0.2, "fraction", en, who)
    assert "driven" not in change_sentence("Recovery rate", 0.2, None, "fraction", en, who)


def test_bucket_and_segment_contributions_add_up_to_the_change_on_the_sample(frames):
    from collect_kit import kpis
    from collect_kit import segmentation as sg
    from collect_kit.reports.context import example_segmentation
    from collect_kit.reports.portfolio import bucket_contributions, segment_contributions
    from collect_kit.snapshot import snapshot

    month = pd.Period("2026-10", "M")
    rules = sg.load(example_segmentation("consumer"))

    def segments_at(when):
        return sg.assign(rules, snapshot(frames, when))[["customer_id", "segment"]]

    by_bucket = bucket_contributions(frames, month, ["recovery_rate", "payer_rate"])
    assert set(by_bucket) == {"recovery_rate", "payer_rate"}
    for name in ("recovery_rate", "payer_rate", "overdue_ratio", "collected"):
        k = kpis.REGISTRY[name]
        change = (
            k.function(frames, month).value.iloc[0] - k.function(frames, month - 1).value.iloc[0]
        )
        by_segment = segment_contributions(frames, month, name, segments_at)
        assert by_segment.change.sum() == pytest.approx(change, rel=1e-9, abs=1e-9), name
        assert by_segment.now.abs().sum() > 0, name
        if name in ("recovery_rate", "payer_rate"):
            c = by_bucket[name]
            assert c.change.sum() == pytest.approx(change, abs=1e-12), name


def test_the_segment_summary_agrees_with_its_table():
    from types import SimpleNamespace

    from collect_kit.reports.pages import segment_summary

    seg = pd.DataFrame({"segment": ["Low risk", "High risk", "Default"],
                        "customers": [4_848, 1_538, 9_318]})  # fmt: skip
    seg["share"] = seg.customers / seg.customers.sum()
    named = Formatter("en", "CLP", {"Default": "Other"})
    words = segment_summary(SimpleNamespace(segments=seg, empty_segments=[]), named)
    assert words == (
        "Other is the largest segment: 59.3 % of the customers (9,318) meet no rule. The "
        "largest segment defined by a rule is Low risk, with 4,848 customers (30.9 %)."
    )
    seg.loc[2, "customers"] = 100
    seg["share"] = seg.customers / seg.customers.sum()
    words = segment_summary(SimpleNamespace(segments=seg, empty_segments=["X"]), ES)
    assert words.startswith("El segmento más grande es Low risk, con 4.848 clientes")
    assert "no cumple ninguna regla y queda en Default" in words and "Segmentos vacíos: X." in words


def test_the_variants_table_shows_each_kpi_as_its_own_function_computes_it(frames):
    """The variants of both months, computed together, are the figures each KPI's own
    function gives for one month (formatted as the tiles are), row by row."""
    import re

    from collect_kit import kpis
    from collect_kit.reports.portfolio import VARIANTS, _show, kpi_label, variants_table

    month = pd.Period("2026-10", "M")
    fmt = Formatter("en", "CLP")
    html = variants_table(frames, month.to_timestamp(how="end").normalize(), fmt)
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    cells = {}
    for row in rows:
        found = [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S)
        ]
        if found:
            cells[found[0]] = found[1:3]
    for name in VARIANTS:
        k = kpis.REGISTRY[name]
        now, before = (k.function(frames, m).value.iloc[0] for m in (month, month - 1))
        assert now == now and before == before, name
        assert cells[kpi_label(name, "en")] == [_show(now, k.unit, fmt), _show(before, k.unit, fmt)]
