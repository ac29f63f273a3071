"""Every public computation gives the same result on DuckDB and on Spark local mode.

The 2 000-customer sample is loaded twice from the same DuckDB file: once on DuckDB, once
on Spark (staged as Parquet). Segments per customer must be identical; every KPI's
numerator and denominator, every sufficient statistic of the experiments and every
snapshot feature equal to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collect_kit import kpis, risk, sources
from collect_kit import segmentation as sg
from collect_kit.demo import sample_config
from collect_kit.engine import is_spark
from collect_kit.experiments import run as experiments
from collect_kit.reports import context
from collect_kit.snapshot import snapshot

from . import SPARK

MONTH = pd.Timestamp("2026-10-31")
RTOL = 1e-9


@pytest.fixture(scope="module")
def books(sample_db):
    """The sample on DuckDB and on Spark, both validated."""
    duck = sources.load(sample_config(), database=sample_db)
    spark = sources.load(sample_config(), database=sample_db, engine_name="spark", spark=SPARK)
    assert is_spark(spark.connection) and not is_spark(duck.connection)
    yield duck, spark
    duck.close()
    spark.close()


def same(a: pd.DataFrame, b: pd.DataFrame, keys: list[str] | None = None) -> None:
    """Equal frames (same columns, dtypes and rows; numbers to 1e-9 relative)."""
    if keys:
        a, b = a.sort_values(keys), b.sort_values(keys)
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=RTOL, atol=0)


def test_validation_finds_the_same(books):
    duck, spark = books
    assert spark.report.ok and duck.report.ok
    assert spark.extraction_date == duck.extraction_date
    assert spark.report.info == duck.report.info
    assert spark.report.warnings == duck.report.warnings
    assert sorted(spark.tables) == sorted(duck.tables)


@pytest.mark.parametrize("as_of", ["2026-10-31", "2026-05-31"])
def test_snapshot_features_are_equal(books, as_of):
    duck, spark = books
    d = snapshot(duck.tables, as_of, **duck.snapshot_options).to_pandas()
    s = snapshot(spark.tables, as_of, **spark.snapshot_options).to_pandas()
    assert len(d) > 1_000
    same(d, s, ["customer_id"])


@pytest.mark.parametrize("rules", ["consumer", "bureau_risk", "debt_age"])
def test_segments_per_customer_are_identical(books, rules):
    """The cascade runs on each engine over that engine's snapshot."""
    duck, spark = books
    seg = sg.load(context.example_segmentation(rules))
    d = sg.assign(seg, snapshot(duck.tables, MONTH, **duck.snapshot_options))
    s = sg.assign(seg, snapshot(spark.tables, MONTH, **spark.snapshot_options))
    d = d.select("customer_id", "segment").to_pandas()
    s = s.select("customer_id", "segment").to_pandas()
    assert d.segment.nunique() >= 3
    same(d, s, ["customer_id"])


def test_every_kpi_numerator_and_denominator(books):
    """Every registered KPI on both engines (by a customer column in the next test)."""
    duck, spark = books
    for name, k in kpis.REGISTRY.items():
        d, s = k.function(duck.tables, MONTH), k.function(spark.tables, MONTH)
        assert (d.numerator.notna() | d.note.ne("")).all(), name
        same(d, s)


def test_float_literals_stay_doubles_on_spark(books):
    """Spark SQL reads ``30.0`` as a DECIMAL: a days / 30.0 feature would be rounded to
    six places there. The engine compiles float literals as DOUBLE."""
    duck, spark = books
    out = []
    for book in (duck, spark):
        r = book.tables["receivables"]
        days = (r.due_at.delta(r.issued_at, unit="day") + 1).name("days")
        e = r.select("receivable_id", months=days / 30.0, share=days * 0.1 / 7.0)
        out.append(e.to_pandas())
    d, s = out
    assert (d.months % 1 != 0).any()
    pd.testing.assert_frame_equal(
        d.sort_values("receivable_id", ignore_index=True),
        s.sort_values("receivable_id", ignore_index=True),
        check_exact=False,
        rtol=1e-14,  # a decimal rounded to six places is off by up to 1e-7
    )


def test_kpis_by_segment_groups(books):
    """``groups=`` (a pandas frame of customer -> segment) is loaded onto each engine."""
    duck, spark = books
    seg = sg.load(context.example_segmentation("consumer"))
    groups = sg.assign(seg, duck.snapshot(MONTH))
    groups = groups.select("customer_id", "segment").to_pandas()
    for name in ("recovery_rate", "payer_rate", "cure_rate", "contact_rate", "cost_to_collect"):
        d = kpis.REGISTRY[name].function(duck.tables, MONTH, by=["segment"], groups=groups)
        s = kpis.REGISTRY[name].function(spark.tables, MONTH, by=["segment"], groups=groups)
        assert len(d) >= 3
        same(d, s)
        by_type = kpis.REGISTRY[name].function(duck.tables, MONTH, by=["customer_type"])
        same(by_type, kpis.REGISTRY[name].function(spark.tables, MONTH, by=["customer_type"]))


def test_aging_rolls_vintages_concentration_and_survival(books):
    duck, spark = books
    first = "2026-01-31"
    for compute in (
        lambda t: kpis.aging(t, MONTH),
        lambda t: kpis.aging_receivables(t, MONTH),
        lambda t: kpis.concentration(t, MONTH),
        lambda t: kpis.roll_rates(t, MONTH),
        lambda t: kpis.vintage_curves(t, first, MONTH),
        lambda t: kpis.time_to_first_payment(t, first, MONTH),
    ):
        d, s = compute(duck.tables), compute(spark.tables)
        assert len(d) >= 5
        same(d, s)


def test_risk_model_and_scores(books):
    """The same design rows pulled for the fit, so the same coefficients and scores."""
    duck, spark = books
    t0 = pd.Timestamp("2026-06-30")
    models = []
    for book in (duck, spark):
        snap = snapshot(book.tables, t0, **book.snapshot_options)
        model = risk.fit(snap, book.tables["payments"], t0)
        scored = model.score(snapshot(book.tables, MONTH, **book.snapshot_options))
        models.append((model, scored.to_pandas()[["customer_id", "p_pay"]]))
    (md, sd), (ms, ss) = models
    assert md.rows == ms.rows > 1_000
    np.testing.assert_allclose(ms.coefficients, md.coefficients, rtol=1e-9)
    same(sd, ss, ["customer_id"])


def test_risk_review_aggregates(books):
    """Out-of-time AUC/KS, calibration and loss bands, the score by segment and the IFRS 9
    stages, all computed on the engine: the same on both."""
    rules = sg.load(context.example_segmentation("consumer"))
    reviews = []
    for book in books:
        snap = book.snapshot(MONTH)  # each month end computed once, as a report run does
        reviews.append(risk.review(book.tables, snap, MONTH, sg.assign(rules, snap), lgd=0.6,
                                   snapshot_of=book.snapshot))  # fmt: skip
    d, s = reviews
    for name in ("calibration", "loss", "distribution", "stages"):
        same(getattr(d, name), getattr(s, name))
    for key in ("model", "external"):
        a, b = d.evaluation[key], s.evaluation[key]
        assert a.n == b.n
        np.testing.assert_allclose(
            [b.auc, b.ks, b.payer_rate], [a.auc, a.ks, a.payer_rate], rtol=RTOL
        )


@pytest.mark.parametrize("name", ["sms_call_pilot", "discount_offer"])
def test_experiment_sufficient_statistics(books, name):
    """The readout's moments (n, sums, sums of squares and cross products per segment x
    arm x metric), arm statistics, survival curves and weekly looks."""
    duck, spark = books
    config = context.experiment_configs([name])[0]
    d = experiments.readout_experiment(config, as_of=MONTH, portfolio=duck)
    s = experiments.readout_experiment(config, as_of=MONTH, portfolio=spark)
    assert len(d.moments) >= 4
    for part in ("moments", "statistics", "survival", "logrank", "looks", "results", "overall"):
        same(getattr(d, part), getattr(s, part))


def test_hash_assignment_matches_python_on_both_engines(books):
    """Arms from the salted MD5 bucket: the same on both engines and in Python's hashlib."""
    from collect_kit.experiments.assign import assign_arms, hash_bucket

    duck, spark = books
    seg = sg.load(context.example_segmentation("consumer"))
    arms = {"champion": 0.5, "sms": 0.3, "call": 0.2}
    out = []
    for book in (duck, spark):
        snap = sg.assign(seg, book.snapshot(MONTH))
        got = assign_arms(snap.select("customer_id", "segment"), "salt-7", arms)
        out.append(got.to_pandas())
    d, s = out
    same(d, s, ["customer_id"])
    python = d.customer_id.map(lambda c: hash_bucket(c, "salt-7"))
    np.testing.assert_array_equal(d.bucket.to_numpy(), python.to_numpy())
    assert set(d.arm) == set(arms)
