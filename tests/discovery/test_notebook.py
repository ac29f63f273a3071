"""The segment discovery notebook, run for real (papermill, HTML, PDF) in both languages:
propensity segments in English, the pilot's uplift segments in Spanish."""

from __future__ import annotations

import pytest
import yaml
from pypdf import PdfReader

from collect_kit.demo import sample_config
from collect_kit.discovery.run import discover
from collect_kit.reports.runner import run_report
from collect_kit.reports.spreadsheet import tables_of

from ..reports.test_runner import english_in

CONFIGS = sample_config().parent.parent


def report(folder, **changes):
    raw = {
        "name": "discovery", "title": {"en": "Collections lab", "es": "Laboratorio de cobranza"},
        "sources": str(CONFIGS / "sources" / "sample.yaml"),
        "segmentation": str(CONFIGS / "segments" / "consumer.yaml"),
        "discovery": str(CONFIGS / "discovery" / "consumer_propensity.yaml"),
        "notebooks": ["segment_discovery"],
    } | changes  # fmt: skip
    path = folder / "report.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def pdf_text(path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


@pytest.fixture(scope="module")
def english(tmp_path_factory, sample_db):
    folder = tmp_path_factory.mktemp("disc-en")
    result = run_report(report(folder), output_dir=folder / "out", database=sample_db)
    assert result.ok, result.error
    return result


def test_propensity_pages_show_the_package_evidence(english, sample_db):
    from collect_kit import sources

    page = (english.folder / "segment_discovery.html").read_text()
    portfolio = sources.load(CONFIGS / "sources" / "sample.yaml", database=sample_db)
    found = discover(CONFIGS / "discovery" / "consumer_propensity.yaml", portfolio=portfolio)
    [evidence] = [t for t in tables_of(page) if t.name.startswith("The proposal against")]
    for row, key in zip(evidence.rows, ("proposal", "current"), strict=True):
        assert row[1].value == len(found.evidence[key]["segments"])
        assert row[3].value == pytest.approx(found.evidence[key]["gini"], abs=5e-4)
    text = pdf_text(english.folder / "segment_discovery.pdf")
    for words in ("The proposed segments", "Out-of-time evidence", "The proposal as a rule set",
                  "Proposed by `collect-kit discover`"):  # fmt: skip
        assert words in text
    assert page.count("data:image/png;base64") >= 2  # the tree and the migration


def test_uplift_pages_in_spanish(tmp_path, sample_db):
    result = run_report(report(tmp_path), parameters={"language": "es", "discovery": "pilot_uplift"},
                        output_dir=tmp_path / "out", database=sample_db)  # fmt: skip
    assert result.ok, result.error
    text = pdf_text(result.folder / "segment_discovery.pdf")
    assert "Efecto en la mitad reservada" in text and "coeficiente de Qini" in text
    page = (result.folder / "segment_discovery.html").read_text()
    assert page.count("data:image/png;base64") >= 2  # the tree and the Qini curve
    # the report's words are Spanish; the YAML block is the analyst's file, in its own words
    words = text.split("La propuesta como conjunto de reglas")[0]
    assert english_in(words) == []
