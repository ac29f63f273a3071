"""Every public aggregate comes back with NumPy dtypes, and pulls are bounded.

Numbers are int64 / float64 (float64 with NaN where a value is missing), never Python
objects or pandas' nullable extension types; text is pandas' ``str`` (or object holding
str);
dates are datetime64; labels may be categorical.
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from collect_kit import engine, kpis, risk, sources
from collect_kit import segmentation as sg
from collect_kit.demo import sample_config
from collect_kit.errors import ResultTooLargeError
from collect_kit.experiments.run import readout_experiment
from collect_kit.reports.context import example_segmentation, experiment_configs

MONTH = pd.Timestamp("2026-10-31")


def assert_numpy_dtypes(frame: pd.DataFrame, what: str) -> None:
    assert isinstance(frame, pd.DataFrame), what
    for name in frame.columns:
        col = frame[name]
        dtype = col.dtype
        where = f"{what}.{name} ({dtype})"
        if isinstance(dtype, pd.StringDtype):  # pandas' default text dtype
            continue
        if isinstance(dtype, pd.CategoricalDtype):
            assert all(isinstance(v, str) for v in dtype.categories), where
        elif dtype.kind == "O":
            values = col.dropna()
            assert all(isinstance(v, str | bool | tuple | list | dict) for v in values), (
                where + f": {values.map(type).unique()[:3]}"
            )
            assert not any(isinstance(v, int | float) for v in values), where
        else:
            assert not isinstance(dtype, pd.api.extensions.ExtensionDtype), where
            assert dtype.kind in "iufbM", where


@pytest.fixture(scope="module")
def portfolio(sample_db):
    p = sources.load(sample_config(), database=sample_db)
    yield p
    p.close()


@pytest.fixture(scope="module")
def snap(portfolio):
    return portfolio.snapshot(MONTH)


def test_every_kpi_with_and_without_groups(portfolio, snap):
    rules = sg.load(example_segmentation("consumer"))
    groups = sg.assign(rules, snap).select("customer_id", "segment")
    for name, k in kpis.REGISTRY.items():
        assert_numpy_dtypes(k.function(portfolio.tables, "2026-10"), name)
        by = k.function(portfolio.tables, "2026-10", by=["segment"], groups=groups)
        assert_numpy_dtypes(by, f"{name} by segment")
        assert by.numerator.notna().all(), name


def test_tables_of_the_book(portfolio):
    t = portfolio.tables
    for name, frame in {
        "aging": kpis.aging(t, MONTH),
        "aging by customer type": kpis.aging(t, MONTH, by=["customer_type"]),
        "aging_receivables": kpis.aging_receivables(t, MONTH),
        "concentration": kpis.concentration(t, MONTH),
        "roll_rates": kpis.roll_rates(t, MONTH),
        "vintage_curves": kpis.vintage_curves(t, "2026-01-31", MONTH),
        "time_to_first_payment": kpis.time_to_first_payment(t, "2026-05-31", MONTH),
        "cost_to_collect": kpis.cost_to_collect(t, "2026-10", by=["customer_type"]),
        "contact_intensity": kpis.contact_intensity(t, "2026-10"),
        "methodology": kpis.methodology(),
    }.items():
        assert len(frame), name
        assert_numpy_dtypes(frame, name)


def test_risk_review_and_segmentation(portfolio, snap):
    rules = sg.load(example_segmentation("consumer"))
    assigned = sg.assign(rules, snap)
    review = risk.review(portfolio.tables, snap, MONTH, assigned, lgd=0.6)
    for name in ("calibration", "loss", "distribution", "stages"):
        assert_numpy_dtypes(getattr(review, name), f"review.{name}")
    result = sg.explain(rules, snap)
    for name in ("segments", "absorption", "leaves", "columns", "lint"):
        assert_numpy_dtypes(getattr(result, name), f"explain.{name}")
    assert_numpy_dtypes(sg.profile(rules, snap), "profile")
    before = portfolio.snapshot("2026-09-30")
    moves = sg.compare(rules, rules, before, snap)
    assert_numpy_dtypes(moves.migration, "compare.migration")
    assert_numpy_dtypes(moves.psi, "compare.psi")


def test_experiment_readout(portfolio):
    config = experiment_configs(["sms_call_pilot"])[0]
    r = readout_experiment(config, as_of=MONTH, portfolio=portfolio)
    for name in ("statistics", "moments", "results", "overall", "survival", "logrank",
                 "heterogeneity", "recommendations"):  # fmt: skip
        assert_numpy_dtypes(getattr(r, name), f"readout.{name}")


def test_pull_keeps_numpy_dtypes_where_values_are_missing():
    t = ibis.memtable(
        pd.DataFrame(
            {
                "n": pd.array([1, None, 3], dtype="Int64"),
                "x": [1.5, None, 2.0],
                "d": pd.to_datetime(["2026-01-31", None, "2026-03-31"]).date,
                "s": ["a", None, "c"],
            }
        )
    ).mutate(d=ibis._.d.cast("date"), dec=ibis.literal(1.25).cast("decimal(10, 2)"))
    out = engine.pull(t)
    assert out.n.dtype == np.float64 and np.isnan(out.n[1])
    assert out.x.dtype == np.float64 and out.dec.dtype == np.float64
    assert out.d.dtype == np.dtype("datetime64[ns]") and pd.isna(out.d[1])
    assert out.s.isna().tolist() == [False, True, False] and out.s[2] == "c"


def test_pull_refuses_a_result_per_customer(portfolio, monkeypatch):
    """A book of 2 000 customers against a limit of 500 rows: a pull of every customer,
    or a KPI broken down by customer, is refused before it fills the memory."""
    monkeypatch.setattr(engine, "MAX_PULL_ROWS", 500)
    assert len(engine.pull(portfolio.tables["customers"].limit(500), "500 customers")) == 500
    with pytest.raises(ResultTooLargeError, match="customers: more than 500 rows"):
        engine.pull(portfolio.tables["customers"], "customers")
    with pytest.raises(ResultTooLargeError, match="by customer_id"):
        kpis.REGISTRY["payer_rate"].function(portfolio.tables, "2026-10", by=["customer_id"])
    assert len(kpis.aging(portfolio.tables, MONTH, by=["customer_type"])) < 500
