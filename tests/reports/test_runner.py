"""Report runs for real: papermill, nbconvert, WeasyPrint, run folders, failures, privacy."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pypdf import PdfReader
from typer.testing import CliRunner

from collect_kit import segmentation as sg
from collect_kit.cli import app
from collect_kit.reports.runner import run_report

ROOT = Path(__file__).resolve().parents[2]
MONTHLY = ROOT / "src" / "collect_kit" / "configs" / "reports" / "monthly.yaml"
#: the documents of a monthly run
DOCUMENTS = ["portfolio_report", "segmentation", "experiment_readout", "strategy_plan"]


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("COLLECT_KIT_CACHE")
    os.environ["COLLECT_KIT_CACHE"] = str(cache)
    yield
    if old is None:
        os.environ.pop("COLLECT_KIT_CACHE")
    else:
        os.environ["COLLECT_KIT_CACHE"] = old


def write_config(folder: Path, **changes) -> Path:
    """A copy of the monthly config with absolute paths and some settings changed."""
    cfg = yaml.safe_load(MONTHLY.read_text())
    cfg["sources"] = str(ROOT / "src" / "collect_kit" / "configs" / "sources" / "sample.yaml")
    cfg["segmentation"] = str(
        ROOT / "src" / "collect_kit" / "configs" / "segments" / "consumer.yaml"
    )
    cfg["experiments"] = [
        str(ROOT / "src" / "collect_kit" / "configs" / "experiments" / f"{name}.yaml")
        for name in ("sms_call_pilot", "discount_offer")
    ]
    cfg["plan"] = str(ROOT / "src" / "collect_kit" / "configs" / "plans" / "next_month.yaml")
    cfg.update(changes)
    path = folder / f"report-{len(list(folder.glob('report-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


def test_run_folder_has_everything(good_run):
    result, out = good_run
    assert result.ok, result.error
    names = sorted(p.name for p in result.folder.iterdir())
    assert names == sorted(
        [f"{nb}{suffix}" for nb in ("experiment_readout", "portfolio_report", "segmentation",
                                    "strategy_plan")
         for suffix in (".html", ".ipynb", ".pdf", ".xlsx", "-tables")]
        + ["manifest.json", "run.log"]
    )  # fmt: skip
    latest = out / "monthly" / "latest"
    assert latest.is_symlink() and latest.resolve() == result.folder.resolve()
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert [n["status"] for n in manifest["notebooks"]] == ["ok", "ok", "ok", "ok"]
    assert manifest["parameters"]["as_of"] == "2026-10-31"
    assert len(manifest["config_sha256"]) == 64 and manifest["data_fingerprint"]
    assert manifest["package_version"] and manifest["started_at"] and manifest["ended_at"]
    assert manifest["heartbeat_at"] and len(manifest["kernel_pids"]) == 4
    assert manifest["published"] is True and manifest["overrides"] == {}
    # the two experiments (one also measures the plan's effects) read out once for the run
    assert manifest["parameters"]["stored_readouts"] == 2 and manifest["seconds_readouts"] > 0
    assert result.published and not result.overrides


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_html_table_is_a_sheet_and_a_csv(good_run, name):
    """Read back with openpyxl: one sheet per table of the page, the same header and cells
    (numbers as the numbers behind the page's text, "<5" and text as text); the manifest
    lists the files."""
    import csv

    import openpyxl

    from collect_kit.reports.spreadsheet import tables_of

    result, _ = good_run
    tables = tables_of((result.folder / f"{name}.html").read_text())
    assert len(tables) >= 2
    book = openpyxl.load_workbook(result.folder / f"{name}.xlsx")
    assert len(book.sheetnames) == len(tables)
    for table, ws in zip(tables, book.worksheets, strict=True):
        rows = [[c.value for c in r] for r in ws.iter_rows()]
        assert [v or "" for v in rows[0]] == table.header
        for cells, got in zip(table.rows, rows[1:], strict=True):
            for cell, value in zip(cells, got, strict=False):
                if cell.value is not None:
                    assert value == pytest.approx(cell.value, rel=1e-12)
                else:
                    assert (value or "") in (cell.text, "'" + cell.text)
    manifest = json.loads((result.folder / "manifest.json").read_text())
    listed = next(n["tables"] for n in manifest["notebooks"] if n["name"] == name)
    assert listed[0] == f"{name}.xlsx" and len(listed) == len(tables) + 1
    first = list(csv.reader((result.folder / listed[1]).open(encoding="utf-8")))
    assert first[0] == tables[0].header and len(first) == len(tables[0].rows) + 1


def test_manifest_holds_no_absolute_paths(good_run, sample_db):
    result, out = good_run
    text = (result.folder / "manifest.json").read_text()

    def strings(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)
        elif isinstance(node, str):
            yield node

    assert not [s for s in strings(json.loads(text)) if s.startswith("/")]
    for absolute in (str(ROOT), str(out), str(Path.home())):
        assert absolute not in text
    parameters = json.loads(text)["parameters"]
    assert parameters["sources"] == "src/collect_kit/configs/sources/sample.yaml"  # cwd: ROOT
    assert set(parameters["snapshots"]) >= {"2026-10-31", "2026-09-30"}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_html_has_no_code_and_loads_nothing(good_run, name):
    result, _ = good_run
    page = (result.folder / f"{name}.html").read_text()
    assert "plots.apply_theme" not in page and "context.open_portfolio" not in page
    assert "In&nbsp;[" not in page and "Out[" not in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert page.count("data:image/png;base64") >= 2  # figures embedded


def test_portfolio_report_shows_the_package_kpis(good_run, sample_db):
    from collect_kit import kpis, sources
    from collect_kit.reports.format import Formatter

    result, _ = good_run
    text = pdf_text(result.folder / "portfolio_report.pdf")
    assert "Monthly collections report" in text and "2026-10-31" in text
    portfolio = sources.load(
        ROOT / "src/collect_kit/configs/sources/sample.yaml", database=sample_db
    )
    fmt = Formatter("en", "CLP")
    for name in ("recovery_rate", "overdue_ratio", "payer_rate"):
        value = kpis.REGISTRY[name].function(portfolio.tables, "2026-10").value.iloc[0]
        assert fmt.percent(value) in text, name
    collected = kpis.collected(portfolio.tables, "2026-10").value.iloc[0]
    assert fmt.short_money(collected) in text  # the tile: CLP 18.2 bn
    assert fmt.number(collected) in text  # the appendix: numerator in full
    assert "Methodology" in text and "Numerator" in text and "Denominator" in text
    assert "What happened, what to do" in text.split("Indicators of the month")[0]


def test_experiment_readout_shows_the_package_results(good_run, sample_db):
    from collect_kit import sources
    from collect_kit.experiments import readout_experiment
    from collect_kit.reports.format import Formatter

    result, _ = good_run
    text = pdf_text(result.folder / "experiment_readout.pdf")
    assert "Monthly collections report" in text and "2026-10-31" in text
    for heading in ("Design recap", "Sample-ratio check", "Effects per segment",
                    "Time to first payment", "Recommendation"):  # fmt: skip
        assert heading in text
    portfolio = sources.load(
        ROOT / "src/collect_kit/configs/sources/sample.yaml", database=sample_db
    )
    fmt = Formatter("en", "CLP")
    configs = ROOT / "src/collect_kit/configs/experiments"
    for name, label in (
        ("sms_call_pilot", "SMS + call pilot"),
        ("discount_offer", "Discount offer"),
    ):
        r = readout_experiment(configs / f"{name}.yaml", as_of="2026-10-31", portfolio=portfolio)
        assert f"Experiment: {label}" in text  # the config's label
        payer = r.results[r.results.metric == "payer_rate"]
        for row in payer.itertuples():
            if min(row.n_champion, row.n_challenger) >= 5:
                assert (
                    fmt.percent(row.champion) in text and fmt.percent(row.challenger_value) in text
                )
    page = (result.folder / "experiment_readout.html").read_text()
    assert page.count("data:image/png;base64") >= 8  # 3 forest plots + survival, per experiment
    summary = pdf_text(result.folder / "portfolio_report.pdf")
    assert "Strategy tests" in summary and "SMS + call pilot" in summary
    assert "Discount offer" in summary


def test_strategy_plan_shows_the_package_plan(good_run, sample_db):
    """The plan table's customers and money are the package's plan; its customers per
    segment are the customers owing at the month end, counted here in pandas."""
    from collect_kit import sources
    from collect_kit.planning.run import make_plan
    from collect_kit.reports.spreadsheet import tables_of
    from collect_kit.snapshot import snapshot

    result, _ = good_run
    configs = ROOT / "src/collect_kit/configs"
    portfolio = sources.load(configs / "sources/sample.yaml", database=sample_db)
    plan = make_plan(configs / "plans/next_month.yaml", as_of="2026-10-31", portfolio=portfolio,
                     draws=0)  # fmt: skip
    page = (result.folder / "strategy_plan.html").read_text()
    [table] = [t for t in tables_of(page) if t.name.startswith("The plan by segment")]
    shown = {(r[0].text, r[1].text.rstrip(" †")): (r[2].value, r[4].value) for r in table.rows[:-1]}
    a = plan.chosen.allocation[plan.chosen.allocation.customers > 0]
    names = {"Default": "No score"} | {t: w["en"] for t, w in plan.labels.items() if "en" in w}
    expected = {(names.get(r.segment, r.segment), names[r.treatment]): (r.customers, r.money)
                for r in a.itertuples()}  # fmt: skip
    assert shown.keys() == expected.keys()
    for key, (n, money) in expected.items():
        assert shown[key][0] == n and shown[key][1] == pytest.approx(money, abs=0.5), key
    rules = sg.load(configs / "segments/bureau_risk.yaml")
    seg = sg.assign(rules, snapshot(portfolio.tables, "2026-10-31").to_pandas())
    owing = seg[seg.overdue_balance > 0].segment.value_counts()
    per_segment = a.groupby("segment").customers.sum()
    assert per_segment.to_dict() == owing.to_dict()
    text = pdf_text(result.folder / "strategy_plan.pdf")
    for heading in ("What to do next month", "Capacities and what one more unit is worth",
                    "How sure: the effects' uncertainty", "Where the effects come from"):  # fmt: skip
        assert heading in text


def test_pdf_pages_title_date_and_package_numbers(good_run, sample_db):
    result, _ = good_run
    pdf = result.folder / "segmentation.pdf"
    reader = PdfReader(str(pdf))
    assert len(reader.pages) > 1
    text = pdf_text(pdf)
    assert "Monthly collections report" in text and "2026-10-31" in text
    assert "Page 1 of" in text
    # the customers per segment the package computes for the same data
    from collect_kit import sources
    from collect_kit.snapshot import snapshot

    portfolio = sources.load(
        ROOT / "src/collect_kit/configs/sources/sample.yaml", database=sample_db
    )
    snap = snapshot(portfolio.tables, "2026-10-31").to_pandas()
    seg = sg.explain(
        sg.load(ROOT / "src/collect_kit/configs/segments/consumer.yaml"), snap
    ).segments
    for row in seg.itertuples():
        if row.customers >= 5:
            assert f"{row.customers:,}" in text, row.segment


def test_no_personal_data_anywhere_in_the_run_folder(good_run, small_sample):
    result, _ = good_run
    customers = small_sample.frame("customers")
    needles = set(customers.customer_id) | set(customers.name.dropna())
    needles |= set(customers.phone.dropna()) | set(customers.email.dropna())
    needles |= set(small_sample.frame("receivables").receivable_id.head(500))
    import openpyxl

    contents = []
    for path in result.folder.rglob("*"):
        if path.is_dir():
            continue
        if path.suffix == ".xlsx":  # zipped XML: read the cells
            book = openpyxl.load_workbook(path)
            contents += [str(c.value) for ws in book for r in ws.iter_rows() for c in r]
            continue
        contents.append(
            pdf_text(path) if path.suffix == ".pdf" else path.read_text(errors="replace")
        )
    blob = "\n".join(contents)
    leaked = [n for n in needles if n in blob]
    assert leaked == []


@pytest.fixture(scope="module")
def spanish_june_run(env, tmp_path_factory, sample_db):
    """One ad-hoc run shared by two checks: Spanish (config) and as_of 2026-06-30 (given)."""
    folder = tmp_path_factory.mktemp("es-june")
    config = write_config(folder, language="es")
    result = run_report(config, as_of="2026-06-30", output_dir=folder / "out", database=sample_db)
    assert result.ok, result.error
    return result, folder / "out"


def test_injected_as_of_appears_in_the_output(spanish_june_run):
    result, out = spanish_june_run
    # an ad-hoc run: its own folder, latest left alone
    assert result.overrides == {"as_of": "2026-06-30"} and not result.published
    assert not (out / "monthly" / "latest").exists()
    for name in DOCUMENTS:
        page = (result.folder / f"{name}.html").read_text()
        assert "30-06-2026" in page and "31-10-2026" not in page, name
    # the discount offer started on 2026-07-01: nothing to read yet, said instead of failing
    page = (result.folder / "experiment_readout.html").read_text()
    assert "Sin resultados aún al 30-06-2026" in page and "Oferta de descuento" in page


def test_each_document_has_its_own_title_and_a_header_date_in_its_language(
    good_run, spanish_june_run
):
    result, _ = good_run
    titles = {}
    for name, words in (("portfolio_report", "Portfolio"), ("segmentation", "Segmentation"),
                        ("experiment_readout", "Strategy tests"),
                        ("strategy_plan", "Strategy plan for next month")):  # fmt: skip
        page = (result.folder / f"{name}.html").read_text()
        titles[name] = re.search(r"<title>(.*?)</title>", page).group(1)
        assert titles[name] == f"Monthly collections report: {words} — 2026-10-31"
        assert f"<h1>Monthly collections report: {words}" in page  # segmentation adds its rules
    assert len(set(titles.values())) == 4
    es, _ = spanish_june_run
    text = pdf_text(es.folder / "segmentation.pdf")
    assert "Informe mensual de cobranza: Segmentación — 30-06-2026" in text  # title in es
    assert "2026-06-30" not in text


def test_a_missing_segmentation_is_refused_before_anything_runs(good_run, sample_db, tmp_path):
    """Found in pre-flight now (exit 2, no run folder); a notebook failing later is tested in
    test_run_lifecycle.py (exit 1, the evidence kept)."""
    result, out = good_run
    previous = (out / "monthly" / "latest").resolve()
    folders = sorted((out / "monthly").iterdir())
    cli = CliRunner().invoke(
        app,
        ["report", "run", str(MONTHLY), "--output-dir", str(out), "--database", str(sample_db),
         "-p", f"segmentation={tmp_path / 'missing.yaml'}"],
    )  # fmt: skip
    assert cli.exit_code == 2, cli.output
    assert "missing.yaml" in cli.output and "does not exist" in cli.output
    assert sorted((out / "monthly").iterdir()) == folders
    assert (out / "monthly" / "latest").resolve() == previous


def test_spanish_report(spanish_june_run):
    result, _ = spanish_june_run
    text = pdf_text(result.folder / "segmentation.pdf")
    assert "Segmentos" in text and "Página 1 de" in text
    assert re.search(r"\d+,\d %", text), "decimal comma in percentages"
    assert re.search(r"\d{1,3}(\.\d{3})+", text), "dot as thousands separator"
    readout = pdf_text(result.folder / "experiment_readout.pdf")
    assert "Resumen del diseño" in readout and "Recomendación" in readout
    assert "Design recap" not in readout and re.search(r"\d+,\d %", readout)
    summary = pdf_text(result.folder / "portfolio_report.pdf")
    assert "Pruebas de estrategia" in summary and "Qué pasó y qué hacer" in summary


def test_unknown_parameter_exits_2_before_anything_runs(tmp_path, sample_db):
    cli = CliRunner().invoke(
        app,
        ["report", "run", str(MONTHLY), "--output-dir", str(tmp_path), "--database",
         str(sample_db), "-p", "lgdd=0.5"],
    )  # fmt: skip
    assert cli.exit_code == 2 and "parameter lgdd: no notebook" in cli.output
    assert "lgd" in cli.output and not (tmp_path / "monthly").exists()


def test_experiment_readout_needs_experiments(tmp_path):
    config = write_config(tmp_path, experiments=[])
    cli = CliRunner().invoke(app, ["report", "run", str(config), "--output-dir", str(tmp_path)])
    assert cli.exit_code == 2 and "experiment_readout needs at least one config" in cli.output


def test_bad_report_config_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntitle: X\nsources: s.yaml\nsegmentation: s.yaml\nnotebooks: [nope]\n")
    cli = CliRunner().invoke(app, ["report", "run", str(bad), "--output-dir", str(tmp_path)])
    assert cli.exit_code == 2 and "bad.yaml: notebooks" in cli.output


def test_stored_notebooks_have_no_outputs_and_one_parameters_cell():
    for path in (ROOT / "src" / "collect_kit" / "notebooks").glob("*.ipynb"):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
            path.name
        )
        assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]) == 1


def test_profile_matches_pandas(sample_db):
    from collect_kit import sources
    from collect_kit.snapshot import snapshot

    portfolio = sources.load(
        ROOT / "src/collect_kit/configs/sources/sample.yaml", database=sample_db
    )
    snap = snapshot(portfolio.tables, "2026-10-31").to_pandas()
    rules = sg.load(ROOT / "src/collect_kit/configs/segments/consumer.yaml")
    prof = sg.profile(rules, snap).set_index("segment")
    assigned = sg.assign(rules, snap)
    for name, g in assigned.groupby("segment"):
        assert prof.loc[name, "customers"] == len(g)
        assert prof.loc[name, "mean_score"] == pytest.approx(g.score.mean())
        assert prof.loc[name, "company_share"] == pytest.approx(
            (g.customer_type == "company").mean()
        )
        assert prof.loc[name, "valid_phone_share"] == pytest.approx(g.has_valid_phone.mean())
    assert isinstance(prof, pd.DataFrame)


@pytest.mark.parametrize("name", ["segmentation", "portfolio_report", "experiment_readout"])
def test_notebook_runs_with_its_own_defaults_like_in_jupyterlab(tmp_path, sample_db, name):
    """No injected parameters: the notebook finds data/sample.duckdb from its folder, as
    when an analyst opens it in JupyterLab next to the demo data."""
    import papermill as pm

    from collect_kit.reports.runner import notebook_path

    (tmp_path / "data").mkdir()
    shutil.copy(sample_db, tmp_path / "data" / "sample.duckdb")
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(notebook_path(name)), str(out), cwd=str(tmp_path), progress_bar=False)
    executed = json.loads(out.read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html_out = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "as of 2026-10-31" in html_out


#: words English and Spanish share, allowed in a Spanish document even where an English
#: catalogue value holds them (abbreviations, names of methods and channels)
SHARED_TERMS = {"DSO", "CEI", "HHI", "Kaplan-Meier", "AUC", "Gini", "KS", "CUPED", "SMS",
                "WhatsApp", "P10", "P90", "Total"}  # fmt: skip


def english_catalogue_fragments() -> set[str]:
    """Every literal stretch (between placeholders) of every English catalogue value that
    differs from its Spanish value, at least three characters with a word in it."""
    import string

    from collect_kit import catalogue

    en, es = catalogue.catalogue("en"), catalogue.catalogue("es")
    out = set()
    for key, words in en.items():
        if key.startswith("format.") or not isinstance(words, str) or words == es[key]:
            continue
        for literal, *_ in string.Formatter().parse(words):
            part = literal.strip(" .,;:()")
            if len(part) >= 3 and part not in SHARED_TERMS and re.search(r"[A-Za-z]{3}", part):
                out.add(part)
    return out


def english_in(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    return sorted(
        f for f in english_catalogue_fragments()
        if re.search(r"(?<!\w)" + re.escape(f) + r"(?!\w)", text)
    )  # fmt: skip


@pytest.fixture(scope="module")
def spanish_override_run(env, tmp_path_factory, sample_db):
    """The sample month with ``-p language=es`` (the config says en): the portfolio report,
    the document with the most words."""
    folder = tmp_path_factory.mktemp("es-p")
    config = write_config(folder, notebooks=["portfolio_report"])
    result = run_report(config, parameters={"language": "es"}, output_dir=folder / "out",
                        database=sample_db)  # fmt: skip
    assert result.ok, result.error
    return result


def test_the_english_check_finds_english():
    assert english_in("Recovery rate by segment (segment at the start of the month)") != []
    assert english_in("Tasa de recuperación por segmento") == []


def test_spanish_pdfs_hold_no_english_catalogue_words(spanish_june_run, spanish_override_run):
    es, _ = spanish_june_run
    documents = [es.folder / f"{n}.pdf" for n in DOCUMENTS]
    documents.append(spanish_override_run.folder / "portfolio_report.pdf")
    for pdf in documents:
        text = pdf_text(pdf)
        assert english_in(text) == [], pdf
        assert "Página 1 de" in text and "Page 1 of" not in text, pdf
    page_one = PdfReader(str(documents[-1])).pages[0].extract_text()
    assert "Qué pasó y qué hacer" in page_one and "Indicadores del mes" in page_one
    assert "31-10-2026" in page_one and "2026-10-31" not in page_one


@pytest.mark.parametrize("name", DOCUMENTS)
def test_no_lone_lines_rows_or_headings_on_a_page(good_run, spanish_override_run, name):
    """Laid out as the PDF is: no page without an image holding at most one line of text
    or one table row, no page ending on a heading or a table's caption (its content on the
    next page)."""
    from collect_kit.reports.export import page_layout

    result, _ = good_run
    documents = [result.folder / f"{name}.html"]
    if name == "portfolio_report":
        documents.append(spanish_override_run.folder / f"{name}.html")
    for document in documents:
        pages = page_layout(document.read_text())
        assert len(pages) == len(PdfReader(str(document.with_suffix(".pdf"))).pages)
        for number, page in enumerate(pages, 1):
            assert not page.thin, (document.name, number, page)
            assert page.last not in ("h1", "h2", "h3", "caption"), (document.name, number, page)


def test_the_layout_check_sees_thin_pages_and_trailing_headings():
    from collect_kit.reports.export import html_document, page_layout

    filler = "<p>" + "words " * 40 + "</p>"
    page = '<p style="break-before: page">'
    lone = page_layout(html_document(f"{filler * 3}{page}alone</p>", "t", "h", "en", "A4"))
    assert [p.thin for p in lone] == [False, True]
    row = "<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>"
    orphan = page_layout(html_document(f"{filler}<div style='break-before: page'>{row}</div>",
                                       "t", "h", "en", "A4"))  # fmt: skip
    assert orphan[1].rows == 1 and orphan[1].thin
    heading = page_layout(html_document(f"{filler}<h2>Risk</h2>{page}{filler}</p>", "t", "h",
                                        "en", "A4"))  # fmt: skip
    assert heading[0].last == "h2" and heading[1].last == "p"
    rows = "".join(f"<tr><td>{i}</td></tr>" for i in range(10))
    table = f'<p class="ck-caption">Cap</p><table class="ck-table"><tbody>{rows}</tbody></table>'
    kept = page_layout(html_document(filler * 11 + table, "t", "h", "en", "A4"))
    assert all(p.last != "caption" for p in kept)


#: Chromium's flags for a closed network (no background connections, no updates)
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]  # fmt: skip


def test_every_html_opens_in_a_real_browser(good_run):
    """Debian's Chromium, headless, driven by Playwright: no console error, no request
    outside the file (images are data URIs), every table and figure laid out with a size."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no Chromium on this machine: scripts/test-deps.sh installs Debian's as root")
    result, _ = good_run
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        errors, requests = [], []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        for name in DOCUMENTS:
            url = (result.folder / f"{name}.html").resolve().as_uri()
            requests.clear()
            page.goto(url, wait_until="load")
            sizes = page.eval_on_selector_all(
                "table, img",
                "els => els.map(e => [e.tagName, e.getBoundingClientRect().width,"
                " e.getBoundingClientRect().height])",
            )
            tables = [s for s in sizes if s[0] == "TABLE"]
            images = [s for s in sizes if s[0] == "IMG"]
            assert len(tables) >= 3 and len(images) >= 2, (name, len(tables), len(images))
            assert all(w > 0 and h > 0 for _, w, h in sizes), (name, sizes)
            outside = [u for u in requests if u != url and not u.startswith("data:")]
            assert outside == [], (name, outside)
        browser.close()
    assert errors == []


def test_portuguese_falls_back_to_english_and_the_log_lists_it_once(env, tmp_path, sample_db):
    config = write_config(tmp_path, notebooks=["segmentation"])
    result = run_report(config, parameters={"language": "pt"}, output_dir=tmp_path / "out",
                        database=sample_db)  # fmt: skip
    assert result.ok, result.error
    log = (result.folder / "run.log").read_text()
    assert log.count("catalogue 'pt' lacks") == 1 and "sentences.largest_segment" in log
    text = pdf_text(result.folder / "segmentation.pdf")
    assert "Segmentos" in text and "Página 1 de" in text  # headings in Portuguese
    assert re.search(r"\d{2}/\d{2}/\d{4}", text) and re.search(r"\d+,\d %", text)  # pt-BR
