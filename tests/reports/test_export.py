"""PDF layout: wide tables keep every header; figures are never split across pages."""

from __future__ import annotations

import base64
import io
import subprocess

import matplotlib

matplotlib.use("Agg")  # this test draws figures outside a notebook
import matplotlib.pyplot as plt
import pandas as pd
from pypdf import PdfReader

from collect_kit.reports.export import html_document, write_pdf
from collect_kit.reports.format import Formatter, html_table

FMT = Formatter("en", "CLP")


def test_fifteen_column_table_keeps_every_header(tmp_path):
    headers = [f"Column{i:02d}" for i in range(15)]
    frame = pd.DataFrame([[1_234_567.0 * (i + 1)] * 15 for i in range(30)], columns=headers)
    body = html_table(frame, dict.fromkeys(headers, "number"), FMT)
    pdf = write_pdf(
        html_document(body, "Wide", "Wide table — 2026-10-31", "en", "A4"), tmp_path / "wide.pdf"
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    missing = [h for h in headers if h not in text]
    assert missing == []
    assert "Wide table — 2026-10-31" in text  # the running header
    reader = PdfReader(str(pdf))
    width = float(reader.pages[0].mediabox.width)
    assert abs(width - 595.3) < 1  # A4 portrait: the table was fitted, not the page widened


def _png(height: float, i: int) -> str:
    fig, ax = plt.subplots(figsize=(6, height))
    ax.plot([0, 1], [0, i])  # distinct figures: identical images could be shared
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def test_figures_are_not_split_across_pages(tmp_path):
    parts = []
    for i in range(5):
        parts.append(f"<p>{'Text before the figure. ' * 40}</p>")
        parts.append(
            f'<div class="output_png"><img src="data:image/png;base64,{_png(4.5, i)}"></div>'
        )
    pdf = write_pdf(
        html_document("".join(parts), "Figs", "Figures", "en", "A4"), tmp_path / "figs.pdf"
    )
    reader = PdfReader(str(pdf))
    assert len(reader.pages) > 2
    # pdfimages lists every image drawn, with its page: a split figure would be drawn twice
    listing = subprocess.run(
        ["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    drawn = [line.split() for line in listing.splitlines()[2:] if line.split()[2] == "image"]
    assert len(drawn) == 5
    assert len({row[0] for row in drawn}) > 1  # they do spread over several pages
