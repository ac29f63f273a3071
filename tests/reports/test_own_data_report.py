"""The executive report on a team's own book: only customers, receivables and payments
(no contacts, scores, adjustments or assignments), with fields of its own — one used as a
breakdown, one personal that must never reach the run folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pypdf import PdfReader

from collect_kit.reports.runner import run_report

from ..conftest import snapshot_cache

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "src" / "collect_kit" / "configs"


@pytest.fixture(scope="module")
def own_run(tmp_path_factory, frames):
    folder = tmp_path_factory.mktemp("own-book")
    cache = tmp_path_factory.mktemp("cache")
    rng = np.random.default_rng(8)
    customers = frames["customers"].drop(columns=["customer_since"]).copy()
    customers["product_line"] = rng.choice(["cards", "loans"], len(customers))
    customers["contact_name"] = [f"ZZPERSONAL-{i:05d}" for i in range(len(customers))]
    tables = {"customers": customers, "receivables": frames["receivables"],
              "payments": frames["payments"]}  # fmt: skip
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    sources = {
        "portfolio": "Own book",
        "currency": "CLP",
        "extraction_date": "2026-10-31",
        "tables": {name: {"path": f"{name}.csv"} for name in tables},
    }
    sources["tables"]["customers"]["extra"] = {
        "product_line": {"type": "string"},
        "contact_name": {"type": "string", "personal": True},
    }
    (folder / "sources.yaml").write_text(yaml.safe_dump(sources))
    report = {
        "name": "own",
        "title": "Own book",
        "sources": "sources.yaml",
        "segmentation": str(CONFIGS / "segments" / "consumer.yaml"),
        "notebooks": ["portfolio_report"],
        "experiments": [],
        "breakdowns": ["product_line"],
    }
    (folder / "report.yaml").write_text(yaml.safe_dump(report))
    with snapshot_cache(cache):
        result = run_report(folder / "report.yaml", output_dir=folder / "out")
    return result, folder


def _pdf_text(path: Path) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(str(path)).pages)


def test_report_runs_on_customers_receivables_and_payments_only(own_run):
    result, _ = own_run
    assert result.status == "ok", result.console_detail
    text = _pdf_text(result.folder / "portfolio_report.pdf")
    flat = " ".join(text.split())
    # every figure needing contacts says so; none is shown as 0
    assert "Not available: the data has no contacts table." in flat
    assert flat.count("Not available: the data has no contacts table") >= 2  # section + methodology
    assert "Contact rate" in flat
    # the breakdown by the team's own field
    assert "Indicators by product_line" in flat
    assert "cards" in flat and "loans" in flat
    # the risk model says what it left out (no contact or score data)
    assert "Left out of the model:" in flat and "score_z (no value)" in flat
    assert "ranked by" in flat


def test_a_personal_field_never_reaches_the_run_folder(own_run):
    result, _ = own_run
    found = []
    for path in result.folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".xlsx":  # a zip of XML parts: search the parts
            import zipfile

            with zipfile.ZipFile(path) as z:
                data = b"".join(z.read(n) for n in z.namelist())
        if b"ZZPERSONAL" in data or b"contact_name" in data:
            found.append(path.name)
        if path.suffix == ".pdf":
            text = _pdf_text(path)
            if "ZZPERSONAL" in text or "contact_name" in text:
                found.append(path.name + " (text)")
    assert found == []


def test_a_personal_or_numeric_breakdown_is_refused_before_anything_runs(own_run):
    from collect_kit.errors import ConfigError

    _, folder = own_run
    for column, message in (
        ("contact_name", "is personal data"),
        ("balance", "expected text or true/false"),
        ("nope", "is not a snapshot column"),
    ):
        cfg = yaml.safe_load((folder / "report.yaml").read_text())
        cfg["breakdowns"] = [column]
        path = folder / f"report-{column}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        with pytest.raises(ConfigError, match=message):
            run_report(path, output_dir=folder / "refused")
        assert not (folder / "refused" / "own").exists()
