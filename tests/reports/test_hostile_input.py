"""Report output that cannot be turned against its reader, and as_of refused in a notebook.

Names a user writes (segments, strategies, descriptions, the report title) reach HTML in
tables, sentences, headings and the print stylesheet. The run's HTML is parsed with an
HTML parser and searched for live markup: any element or attribute a name could have
injected (script, img, a link with a javascript: URL, an on* handler).
"""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import papermill as pm
import pytest
import yaml

from collect_kit.reports.runner import notebook_path, run_report

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "src" / "collect_kit" / "configs"

HOSTILE_TITLE = 'Cobranza </style><script>alert(3)</script> "q" \\'
IMG = "<img src=x onerror=alert(2)>"
LINK = "[x](javascript:alert(1))"
TINY = "<script>alert(1)</script> & | tiny"


def three_unique_balances(sample_db) -> list[float]:
    """Three balances that one customer each has at the report date."""
    from collect_kit import sources
    from collect_kit.snapshot import snapshot

    portfolio = sources.load(CONFIGS / "sources" / "sample.yaml", database=sample_db)
    snap = snapshot(portfolio.tables, "2026-10-31").to_pandas()
    counts = snap.balance.value_counts()
    return [float(v) for v in counts[counts == 1].index if v > 0][:3]


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data


def live_markup(page: str) -> list[str]:
    """Elements and attributes that would run or navigate: none may come from a name."""
    parser = Elements()
    parser.feed(page)
    found = []
    for tag, attrs in parser.tags:
        if tag in ("script", "iframe", "object", "embed"):
            found.append(tag)
        if tag == "img" and not str(attrs.get("src", "")).startswith("data:image/"):
            found.append(f"img src={attrs.get('src')}")
        for name, value in attrs.items():
            if name.startswith("on") or "javascript:" in str(value).lower():
                found.append(f"{tag} {name}={value}")
    return found


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, sample_db):
    folder = tmp_path_factory.mktemp("hostile")
    os.environ.setdefault("COLLECT_KIT_CACHE", str(folder / "cache"))
    rules = yaml.safe_load((CONFIGS / "segments" / "consumer.yaml").read_text())
    for segment in (*rules["segments"], rules["default"]):  # the names themselves show
        segment.pop("label", None)
    rules.pop("strategies")
    rules["segments"][0]["name"] = IMG  # New customers
    # a segment of exactly three customers: suppressed as "<5" wherever it shows
    rules["segments"].insert(0, {"name": TINY, "when": {"column": "balance", "op": "in",
                                                        "value": three_unique_balances(sample_db)}})  # fmt: skip
    rules["segments"][-1]["name"] = LINK  # Low risk: the largest, named in the summary
    rules["segments"][-1]["description"] = "**bold** <b>html</b>"
    rules["segments"][1]["strategy"] = '=HYPERLINK("http://evil","x")'
    rules["default"]["strategy"] = "<svg onload=alert(4)>"
    (folder / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    config = yaml.safe_load((CONFIGS / "reports" / "monthly.yaml").read_text())
    config.update(
        title=HOSTILE_TITLE,
        sources=str(CONFIGS / "sources" / "sample.yaml"),
        segmentation=str(folder / "rules.yaml"),
        experiments=[str(CONFIGS / "experiments" / "sms_call_pilot.yaml")],
        plan=str(CONFIGS / "plans" / "next_month.yaml"),
        notebooks=["segmentation"],
    )
    (folder / "report.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    result = run_report(folder / "report.yaml", output_dir=folder / "out", database=sample_db)
    assert result.ok, result.error
    return result


def test_names_and_title_stay_text_in_the_html(hostile_run):
    page = (hostile_run.folder / "segmentation.html").read_text(encoding="utf-8")
    assert live_markup(page) == []
    # the names are there, as text the reader sees
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "[x](javascript:alert(1))" in page
    assert "**bold** &lt;b&gt;html&lt;/b&gt;" in page or "**bold**" not in page
    # the title cannot close the style block: it sits there CSS-escaped
    parser = Elements()
    parser.feed(page)
    assert "@page" in parser.style and "alert" in parser.style
    assert "</style" not in parser.style.lower()


def test_a_three_customer_segment_is_suppressed(hostile_run):
    import re

    page = (hostile_run.folder / "segmentation.html").read_text(encoding="utf-8")
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; | tiny"
    row = re.search(re.escape(escaped) + r"</td>(.*?)</tr>", page).group(1)
    assert "&lt;5" in row and not re.search(r">\s*3\s*<", row)


def test_the_pdf_shows_the_title_and_names_as_written(hostile_run):
    import subprocess

    text = subprocess.run(
        ["pdftotext", "-layout", str(hostile_run.folder / "segmentation.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "</style><script>alert(3)</script>" in text  # the running header, verbatim
    assert "<img src=x" in text and "onerror=alert(2)>" in text  # wrapped in its cell
    assert "[x](javascript:alert(1))" in text


@pytest.mark.parametrize(
    ("as_of", "words"),
    [
        ("2026-10-15", "must be a month end"),
        ("01/10/2026", "never guessed"),
        ("2030-12-31", "after the data's extraction date"),
        ("1990-01-31", "first month"),
        ("nonsense", "YYYY-MM-DD"),
    ],
)
def test_a_notebook_run_by_papermill_refuses_a_bad_as_of(as_of, words, tmp_path, sample_db):
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(
            str(notebook_path("segmentation")), str(tmp_path / "out.ipynb"),
            parameters={"as_of": as_of, "database": str(sample_db)},
            kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
        )  # fmt: skip
    assert info.value.ename == "InvalidParameterError"
    assert info.value.evalue.startswith("as_of: ") and words in info.value.evalue
