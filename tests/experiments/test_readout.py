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
