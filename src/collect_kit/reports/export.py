"""Executed notebook -> self-contained HTML (no code) -> paginated PDF (WeasyPrint).

Route: nbconvert's ``basic`` template renders only the code cells' outputs (no
inputs, no prompts, images embedded as data URIs); we wrap them in our own page with a
stylesheet for screen and print, so the HTML loads nothing from the internet. WeasyPrint
(a PyPI package using Pango, no browser) lays the same HTML out on paper: ``@page`` rules
set the size and margins, a running header with the report name and date, and page
numbers; tables shrink to the page width and repeat their header; figures and short
tables are never split across pages.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

_CSS = """
:root { --ink: #1a1a1a; --muted: #555; --rule: #c8d3e0; --head: #08306b; }
body { font-family: "DejaVu Sans", Verdana, sans-serif; color: var(--ink); font-size: 10pt;
       line-height: 1.4; max-width: 1000px; margin: 0 auto; padding: 1.2em; }
h1 { color: var(--head); font-size: 18pt; margin: 0 0 .2em; }
h2 { color: var(--head); font-size: 13pt; border-bottom: 1px solid var(--rule);
     padding-bottom: .15em; margin-top: 1.3em; page-break-after: avoid; }
h3 { font-size: 11pt; page-break-after: avoid; }
.ck-title .sub { color: var(--muted); font-size: 9pt; }
table.ck-table { border-collapse: collapse; width: 100%; margin: .5em 0 1em;
                 font-size: 8pt; table-layout: auto; }
p.ck-caption { text-align: left; color: var(--muted); font-size: 8pt; margin: .5em 0 .2em;
               break-after: avoid; page-break-after: avoid; }
p.ck-caption + table.ck-table { margin-top: 0; }
table.ck-short { break-inside: avoid; page-break-inside: avoid; }
table.ck-table th { background: #eef3f9; color: var(--head); font-weight: bold;
                    text-align: left; vertical-align: bottom; }
table.ck-table th, table.ck-table td { border-bottom: 1px solid var(--rule); padding: 2px 4px; }
table.ck-table th { overflow-wrap: normal; word-break: normal; hyphens: manual; }
table.ck-table td.text { overflow-wrap: break-word; }
table.ck-table td.num { text-align: right; white-space: nowrap; }
table.ck-table th.num { text-align: right; }
.ck-light { white-space: nowrap; }
.ck-light-green { color: #1a7f37; }
.ck-light-yellow { color: #9a6700; }
.ck-light-red { color: #b42318; }
table.ck-table th.row { background: none; font-weight: normal; color: var(--ink); }
table.ck-cols-l { font-size: 6.5pt; }
table.ck-cols-xl { font-size: 5.5pt; }
table.ck-cols-l td.num, table.ck-cols-xl td.num { white-space: normal; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
img { max-width: 100%; height: auto; }
.output_png, .output_svg, figure, .ck-keep { page-break-inside: avoid; break-inside: avoid; }
.ck-note { color: var(--muted); font-size: 8.5pt; }
.ck-tiles { display: flex; flex-wrap: wrap; gap: 6px; margin: .4em 0 1em; }
.ck-tile { flex: 1 1 30%; border: 1px solid var(--rule); border-radius: 4px; padding: 6px 8px;
           page-break-inside: avoid; }
.ck-tile-label { color: var(--muted); font-size: 8pt; }
.ck-tile-value { color: var(--head); font-size: 15pt; font-weight: bold; }
.ck-tile-value.ck-long { font-size: 11.5pt; padding: 3px 0 2px; }
.ck-tile-note { font-size: 7.5pt; color: var(--ink); }
p.ck-lead { break-after: avoid; page-break-after: avoid; }
.ck-warning { border-left: 3px solid #d94801; padding-left: .5em; }
.ck-trend { font-weight: bold; }
.ck-up_good, .ck-down_good { color: #1a7f37; }
.ck-up_bad, .ck-down_bad { color: #b42318; }
.ck-up, .ck-down, .ck-flat { color: var(--muted); }
ol.ck-findings { padding-left: 1.4em; margin: .3em 0 1em; }
ol.ck-findings li { margin-bottom: .45em; page-break-inside: avoid; }
tr.ck-total td { font-weight: bold; border-top: 1.5px solid var(--head); }
.input, .prompt, .input_prompt, .output_prompt { display: none; }
pre { white-space: pre-wrap; font-size: 8pt; }
"""

_PRINT = """
@page {{
  size: {size}; margin: 20mm 13mm 17mm 13mm;
  @top-center {{ content: "{header}"; font-family: "DejaVu Sans", sans-serif; font-size: 7.5pt;
                 color: #555; }}
  @bottom-right {{ content: "{page} " counter(page) " {of} " counter(pages);
                   font-family: "DejaVu Sans", sans-serif; font-size: 7.5pt; color: #555; }}
}}
@media print {{ body {{ max-width: none; padding: 0; font-size: 9pt; }} }}
"""


def _css_string(text: str) -> str:
    """``text`` safe inside a double-quoted CSS string in a ``<style>`` block: letters,
    digits and spaces stay; every other character becomes a CSS hex escape (its trailing
    space is part of the escape), so a title
    holding ``"``, ``\\`` or ``</style><script>`` can neither end the string nor the block."""
    return "".join(
        c if (c.isalnum() or c == " ") and c.isprintable() else f"\\{ord(c):06x} " for c in text
    )


def notebook_body(executed: str | os.PathLike) -> str:
    """The outputs of an executed notebook as HTML (no code, no prompts, no markdown: a
    notebook's markdown cells guide the analyst reading it; the report's words come from
    the text catalogue, in the report's language)."""
    nb = nbformat.read(str(executed), as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"]
    for cell in nb.cells:
        if cell.cell_type == "code":  # warnings and logs are not report content
            cell.outputs = [
                o
                for o in cell.get("outputs", [])
                if not (o.output_type == "stream" and o.name == "stderr")
            ]
    exporter = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    return body


def html_document(body: str, title: str, header: str, language: str, page_size: str) -> str:
    """A complete, self-contained HTML page around ``body`` (screen and print styles)."""
    from .text import label

    page, of = label("page", language), label("of", language)
    print_css = _PRINT.format(size=page_size, header=_css_string(header), page=page, of=of)
    return (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}{print_css}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_html(document: str, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.write_text(document, encoding="utf-8")
    return path


def write_pdf(document: str, path: str | os.PathLike) -> Path:
    """Render the HTML document to a paginated PDF with WeasyPrint."""
    from weasyprint import HTML  # imported here: loading Pango costs ~0.5 s

    path = Path(path)
    HTML(string=document, base_url=str(path.parent)).write_pdf(str(path))
    return path


#: block elements whose order on a page matters for the layout checks
_BLOCKS = {"h1", "h2", "h3", "p", "table", "ol", "ul", "img", "li"}


@dataclass(frozen=True)
class PageLayout:
    """What one laid-out page holds (running header and footer left out): ``lines`` of text
    outside tables, body ``rows`` of tables, ``images`` and the tag of the ``last`` block
    (``h2``, ``p``, ``table``..., ``caption`` for a table's caption paragraph)."""

    lines: int
    rows: int
    images: int
    last: str | None

    @property
    def thin(self) -> bool:
        """No image and at most one line of text or one table row."""
        return self.images == 0 and self.lines + self.rows <= 1


def page_layout(document: str) -> list[PageLayout]:
    """Lay ``document`` (a page of :func:`html_document`) out as WeasyPrint does for the
    PDF and say what each page holds."""
    from weasyprint import HTML

    return [_page_summary(page._page_box) for page in HTML(string=document).render().pages]


def _page_summary(page_box) -> PageLayout:
    """Walk one page's boxes (WeasyPrint's layout tree), margin boxes left out."""
    count = {"lines": 0, "rows": 0, "images": 0, "last": None}
    stack = [(page_box, False, False)]  # box, inside a table, a row of a tbody
    while stack:
        box, in_table, body_row = stack.pop()
        kind = type(box).__name__
        if kind == "MarginBox":
            continue
        tag = getattr(box, "element_tag", None)
        children = list(getattr(box, "children", []))
        if (
            kind == "LineBox"
            and not in_table
            and any(type(c).__name__ == "TextBox" and c.text.strip() for c in children)
        ):
            count["lines"] += 1
        if kind == "TableRowBox" and body_row:
            count["rows"] += 1
        if kind in ("InlineReplacedBox", "BlockReplacedBox"):
            count["images"] += 1
            count["last"] = "img"
        if (kind == "BlockBox" and tag in _BLOCKS) or kind == "TableBox":
            count["last"] = "table" if kind == "TableBox" else tag
            element = getattr(box, "element", None)
            if tag == "p" and "ck-caption" in (
                element.get("class") or "" if element is not None else ""
            ):
                count["last"] = "caption"  # a table's caption
        inside = in_table or kind == "TableBox"
        for child in reversed(children):  # depth first, in document order
            stack.append((child, inside, kind == "TableRowGroupBox" and tag == "tbody"))
    return PageLayout(**count)
