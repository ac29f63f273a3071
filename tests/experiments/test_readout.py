"""Readout: engine sufficient statistics equal a plain-pandas recomputation; SRM and family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collect_kit.experiments.readout import outcome_stats, readout

W = {"champion": 0.8, "challenger": 0.2}


@pytest.fixture(scope="module")
def sample():
    from collect_kit import synth

    return synth.generate(20_000, seed=8)


def test_sufficient_statistics_match_pandas(sample):
    got = outcome_stats(sample.tables, "sms_call_pilot", "2026-10-31", window_days=31).set_index(
        ["segment", "arm"]
    )
    a = sample.frame("assignments")
    a = a[a.experiment_id == "sms_call_pilot"]
    pay = sample.frame("payments")
    pay["paid_at"] = pd.to_datetime(pay.paid_at)
    start = pd.to_datetime(a.assigned_at.iloc[0])
    window = pay[(pay.paid_at >= start) & (pay.paid_at < start + pd.Timedelta(days=31))]
    pre = pay[(pay.paid_at >= start - pd.Timedelta(days=90)) & (pay.paid_at < start)]
    y = window.groupby("customer_id").amount.sum().reindex(a.customer_id, fill_value=0.0).to_numpy()
    x = pre.groupby("customer_id").amount.sum().reindex(a.customer_id, fill_value=0.0).to_numpy()
    frame = a.assign(y=y, x=x, paid=(y > 0).astype(int))
    for (seg, arm), g in frame.groupby(["segment", "arm"]):
        row = got.loc[(seg, arm)]
        assert row.n == len(g) and row.payers == g.paid.sum()
        assert row.sum_y == pytest.approx(g.y.sum()) and row.sum_y2 == pytest.approx((g.y**2).sum())
        assert row.sum_x == pytest.approx(g.x.sum()) and row.sum_xy == pytest.approx(
            (g.x * g.y).sum()
        )
    r = readout(got.reset_index(), W)
    payer = r[r.metric == "payer_rate"].set_index("segment")
    for seg, g in frame.groupby("segment"):
        raw = g[g.arm == "challenger"].paid.mean() - g[g.arm == "champion"].paid.mean()
        assert payer.loc[seg, "estimate"] == pytest.approx(raw, rel=1e-12)
    assert not r.srm.any() and r.trustworthy.all()
    family = r[r.metric.isin(["payer_rate", "collected_per_customer"])]
    assert family.p_holm.notna().all() and (family.p_holm >= family.p_value - 1e-15).all()
    assert r[r.metric == "recovery_rate"].p_holm.isna().all()  # not in the declared family


def test_srm_marks_a_broken_split_untrustworthy(sample):
    stats_frame = outcome_stats(sample.tables, "sms_call_pilot", "2026-10-31", window_days=31)
    skewed = readout(stats_frame, {"champion": 0.5, "challenger": 0.5})  # designed 50/50, ran 80/20
    assert skewed.srm.all() and not skewed.trustworthy.any()


def test_reading_before_the_window_closes_is_refused(sample):
    with pytest.raises(ValueError, match="no assigned customer has a closed outcome window"):
        outcome_stats(sample.tables, "discount_offer", "2026-07-15", window_days=31)
    assert np.isfinite(
        readout(
            outcome_stats(sample.tables, "discount_offer", "2026-10-31"),
            {"champion": 1, "challenger": 1},
        ).estimate
    ).any()


def test_survival_counts_and_logrank_match_raw_rows(sample):
    from statsmodels.duration.survfunc import survdiff

    from collect_kit.experiments.readout import survival_counts, survival_readout

    counts = survival_counts(sample.tables, "sms_call_pilot", "2026-10-31", window_days=31)
    _, tests = survival_readout(counts, W)
    a = sample.frame("assignments")
    a = a[a.experiment_id == "sms_call_pilot"]
    pay = sample.frame("payments")
    pay["paid_at"] = pd.to_datetime(pay.paid_at)
    start = pd.to_datetime(a.assigned_at.iloc[0])
    window = pay[(pay.paid_at >= start) & (pay.paid_at < start + pd.Timedelta(days=31))]
    first = window.groupby("customer_id").paid_at.min().reindex(a.customer_id)
    time = np.where(first.notna(), (first - start).dt.days + 1, 31).astype(float)
    event = first.notna().to_numpy().astype(int)
    for seg in a.segment.unique():
        m = (a.segment == seg).to_numpy()
        chi2, p = survdiff(time[m], event[m], (a.arm.to_numpy()[m] == "challenger").astype(int))
        row = tests.set_index("segment").loc[seg]
        assert row.chi2 == pytest.approx(chi2, rel=1e-9) and row.p_value == pytest.approx(
            p, rel=1e-9
        )


def _row(seg, metric, est, low, high, p_holm, srm=False, p0=0.3, n0=4000, n1=1000):
    return {"segment": seg, "challenger": "challenger", "metric": metric, "estimate": est, "ci_low": low,
            "ci_high": high, "p_value": p_holm, "p_holm": p_holm, "srm": srm, "trustworthy": not srm,
            "champion": p0, "n_champion": n0, "n_challenger": n1}  # fmt: skip


def test_recommendations():
    from collect_kit.experiments.readout import heterogeneity, recommend

    result = pd.DataFrame([
        _row("Win", "payer_rate", 0.05, 0.02, 0.08, 0.001), _row("Win", "collected_per_customer", 1000.0, 200.0, 1800.0, 0.01),
        _row("SRM", "payer_rate", 0.05, 0.02, 0.08, 0.001, srm=True), _row("SRM", "collected_per_customer", 1.0, -1.0, 3.0, 0.5, srm=True),
        _row("Small", "payer_rate", 0.01, -0.05, 0.07, 0.7, n0=400, n1=100), _row("Small", "collected_per_customer", 5.0, -50.0, 60.0, 0.9, n0=400, n1=100),
        _row("Null", "payer_rate", 0.0, -0.01, 0.01, 0.9, n0=40000, n1=10000), _row("Null", "collected_per_customer", 1.0, -5.0, 7.0, 0.8, n0=40000, n1=10000),
    ])  # fmt: skip
    rec = recommend(
        result,
        {"Win": 200, "SRM": 100, "Small": 50, "Null": 1000},
        {"champion": 0.0, "challenger": 100.0},
    ).set_index("segment")
    assert rec.loc["Win", "decision"] == "run challenger"
    assert rec.loc["Win", "money_per_month"] == pytest.approx((1000.0 - 100.0) * 200)
    assert (rec.loc["Win", "money_ci_low"], rec.loc["Win", "money_ci_high"]) == pytest.approx(
        ((200.0 - 100.0) * 200, (1800.0 - 100.0) * 200)
    )
    assert rec.loc["SRM", "decision"].startswith("withheld")
    assert (
        rec.loc["Small", "decision"] == "keep testing"
        and rec.loc["Small", "extra_customers_needed"] > 0
    )
    assert rec.loc["Null", "decision"].startswith("keep champion")
    het = heterogeneity(result)
    assert set(het.metric) == {"payer_rate", "collected_per_customer"} and (het.segments == 3).all()
