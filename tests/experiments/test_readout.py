"""Readout: engine sufficient statistics equal a plain-pandas recomputation; SRM and family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collect_kit.experiments.readout import outcome_stats, readout

W = {"champion": 0.8, "challenger": 0.2}


def pilot_in_pandas(sample):
    """The pilot's assignments, all payments, its start date and its 31-day window, in pandas."""
    a = sample.frame("assignments")
    a = a[a.experiment_id == "sms_call_pilot"]
    pay = sample.frame("payments")
    pay["paid_at"] = pd.to_datetime(pay.paid_at)
    start = pd.to_datetime(a.assigned_at.iloc[0])
    window = pay[(pay.paid_at >= start) & (pay.paid_at < start + pd.Timedelta(days=31))]
    return a, pay, start, window


@pytest.fixture(scope="module")
def sample():
    from collect_kit import synth

    return synth.generate(20_000, seed=8)


def test_sufficient_statistics_match_pandas(sample):
    got = outcome_stats(sample.tables, "sms_call_pilot", "2026-10-31", window_days=31).set_index(
        ["segment", "arm"]
    )
    a, pay, start, window = pilot_in_pandas(sample)
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
    a, pay, start, window = pilot_in_pandas(sample)
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
    assert list(rec.code) == ["run_challenger", "withheld_srm", "keep_testing", "keep_champion"]
    het = heterogeneity(result)
    assert set(het.metric) == {"payer_rate", "collected_per_customer"} and (het.segments == 3).all()


def _with_assignments(sample, frame):
    tables = dict(sample.tables)
    tables["assignments"] = frame
    return tables


def test_bad_experiments_are_refused_or_explicit(sample):
    a = sample.frame("assignments")
    pilot = a[a.experiment_id == "sms_call_pilot"]
    one_arm = pilot.assign(arm="champion")
    with pytest.raises(ValueError, match="only one arm"):
        outcome_stats(_with_assignments(sample, one_arm), "sms_call_pilot", "2026-10-31")
    twice = pd.concat([pilot, pilot.head(3).assign(segment="Low risk")])
    with pytest.raises(ValueError, match="3 customers are assigned more than once"):
        outcome_stats(_with_assignments(sample, twice), "sms_call_pilot", "2026-10-31")
    with pytest.raises(ValueError, match="no assignments"):
        outcome_stats(sample.tables, "nope", "2026-10-31")
    # a segment where nobody got the challenger: an explicit row, not a crash or a silent NaN
    empty_arm = pilot[~((pilot.segment == "Low risk") & (pilot.arm == "challenger"))]
    stats_frame = outcome_stats(
        _with_assignments(sample, empty_arm), "sms_call_pilot", "2026-10-31"
    )
    r = readout(stats_frame, W)
    low = r[r.segment == "Low risk"]
    assert (
        set(low.reason) == {"no customers in this arm"}
        and len(low) == 3
        and low.estimate.isna().all()
    )


def test_aa_readout_is_labelled_a_calibration_check(sample):
    from collect_kit.experiments.readout import recommend

    stats_frame = outcome_stats(sample.tables, "sms_call_pilot", "2026-10-31", window_days=31)
    # relabel arms as identical (A1/A2) to read the pilot as if both arms got the same thing
    r = readout(stats_frame, W, aa=True)
    assert r.calibration_check.all()
    assert (r.warning != "").sum() == (r.p_value < 0.05).sum()
    rec = recommend(r, {s: 100 for s in r.segment})
    assert rec.decision.str.startswith("A/A calibration check").all()


def test_demo_sample_readout_recovers_the_truth():
    """Default demo sample: each segment's 95 % interval holds the true payer-rate lift; the
    recommendation agrees with the truth or says keep testing."""
    from collect_kit import synth
    from collect_kit.demo import DEFAULT_CUSTOMERS, DEFAULT_SEED
    from collect_kit.experiments.readout import recommend

    s = synth.generate(DEFAULT_CUSTOMERS, seed=DEFAULT_SEED)
    truth = s.truth.experiments.set_index(["experiment_id", "segment"])
    designs = {
        "sms_call_pilot": {"champion": 0.8, "challenger": 0.2},
        "discount_offer": {"champion": 0.5, "challenger": 0.5},
    }
    for exp, w in designs.items():
        r = readout(outcome_stats(s.tables, exp, "2026-10-31", window_days=31), w)
        payer = r[r.metric == "payer_rate"].set_index("segment")
        for seg, row in payer.iterrows():
            true = truth.loc[(exp, seg), "true_lift"]
            assert row.ci_low <= true <= row.ci_high, (exp, seg, row.ci_low, true, row.ci_high)
        assigned = s.frame("assignments")
        monthly = assigned[assigned.experiment_id == exp].groupby("segment").size().to_dict()
        for rec in recommend(r, monthly).itertuples():
            true = truth.loc[(exp, rec.segment), "true_lift"]
            if rec.decision.startswith("run challenger"):
                assert true > 0
            elif rec.decision.startswith("run champion") or rec.decision.startswith(
                "keep champion"
            ):
                assert true < 0.03  # no effect of the design's size
            else:
                assert rec.decision == "keep testing"


def test_winsorization_caps_pooled_across_arms(sample):
    raw = outcome_stats(sample.tables, "sms_call_pilot", "2026-10-31", window_days=31)
    capped = outcome_stats(
        sample.tables, "sms_call_pilot", "2026-10-31", window_days=31, winsorize=0.95
    )
    a, pay, start, window = pilot_in_pandas(sample)
    y = window.groupby("customer_id").amount.sum().reindex(a.customer_id, fill_value=0.0).to_numpy()
    frame = a.assign(y=y)
    for seg, g in frame.groupby("segment"):
        cap = np.quantile(g.y, 0.95)  # both arms together
        for arm, h in g.groupby("arm"):
            row = capped.set_index(["segment", "arm"]).loc[(seg, arm)]
            assert row.cap == pytest.approx(cap, rel=1e-9)
            assert row.sum_y == pytest.approx(np.minimum(h.y, cap).sum(), rel=1e-9)
    assert (capped.sum_y <= raw.sum_y + 1e-6).all()
    with pytest.raises(ValueError, match="winsorize"):
        outcome_stats(sample.tables, "sms_call_pilot", "2026-10-31", winsorize=1.5)


def test_monthly_inflow_averages_the_last_three_months_of_intake():
    from collect_kit.experiments.run import monthly_inflow

    # segment S: 10 assigned in January, 20 in February, 30 in March, 40 in April;
    # segment T: 100 at once in March; another experiment's rows are ignored
    rows = [
        ("S", f"2026-{m:02d}-05") for m, k in ((1, 10), (2, 20), (3, 30), (4, 40)) for _ in range(k)
    ]
    rows += [("T", "2026-03-01")] * 100
    frame = pd.DataFrame(rows, columns=["segment", "assigned_at"])
    frame["experiment_id"], frame["customer_id"], frame["arm"] = "x", range(len(frame)), "champion"
    frame = pd.concat([frame, frame.assign(experiment_id="other")], ignore_index=True)
    frame["assigned_at"] = pd.to_datetime(frame.assigned_at)
    got = monthly_inflow(frame, "x", "2026-04-30")
    assert got == {"S": (20 + 30 + 40) / 3, "T": 100 / 3}  # Feb-Apr
    # as of February: only January and February exist yet (T not started)
    assert monthly_inflow(frame, "x", "2026-02-28") == {"S": (10 + 20) / 2}
    assert monthly_inflow(frame, "nope", "2026-04-30") == {}


def test_strategy_cost_of_the_outcome_window_matches_pandas(sample):
    got = outcome_stats(sample.tables, "sms_call_pilot", "2026-10-31", window_days=31)
    prices = {"sms": 25.0, "call": 900.0}
    priced = outcome_stats(
        sample.tables, "sms_call_pilot", "2026-10-31", window_days=31, cost_per_action=prices
    )
    a, *_ = pilot_in_pandas(sample)
    c = sample.frame("contacts")
    c["at"] = pd.to_datetime(c["at"])
    j = a.assign(assigned_at=pd.to_datetime(a.assigned_at)).merge(c, on="customer_id")
    j = j[(j["at"] >= j.assigned_at) & (j["at"] < j.assigned_at + pd.Timedelta(days=31))]
    j["priced"] = j.channel.map(prices).fillna(j.cost)
    assert j.cost.notna().any() and len(j) > 0
    for (seg, arm), g in j.groupby(["segment", "arm"]):
        row = got.set_index(["segment", "arm"]).loc[(seg, arm)]
        assert row.contacts == len(g) and row.costed_contacts == g.cost.notna().sum()
        assert row.sum_cost == pytest.approx(g.cost.sum(), rel=1e-12)
        other = priced.set_index(["segment", "arm"]).loc[(seg, arm)]
        assert other.sum_cost == pytest.approx(g.priced.sum(), rel=1e-12)


def test_measured_costs_are_netted_per_segment_against_the_named_champion():
    from collect_kit.experiments.config import ExperimentConfig
    from collect_kit.experiments.readout import recommend
    from collect_kit.experiments.run import strategy_costs

    stats_frame = pd.DataFrame({
        "segment": ["Win", "Win"], "arm": ["A", "B"], "n": [4000, 1000],
        "costed_contacts": [10, 10], "sum_cost": [4000 * 50.0, 1000 * 250.0],
    })  # fmt: skip
    cfg = ExperimentConfig(experiment_id="x", sources="s.yaml", arms={"A": 0.8, "B": 0.2})
    costs = strategy_costs(cfg, stats_frame)
    assert costs == {"Win": {"A": 50.0, "B": 250.0}}
    result = pd.DataFrame([
        _row("Win", "payer_rate", 0.05, 0.02, 0.08, 0.001), _row("Win", "collected_per_customer", 1000.0, 200.0, 1800.0, 0.01),
    ]).assign(challenger="B")  # fmt: skip
    rec = recommend(result, {"Win": 100}, costs, weights=cfg.arms).iloc[0]
    assert rec.extra_cost_per_customer == 200.0
    assert rec.money_per_month == pytest.approx((1000.0 - 200.0) * 100)
    # an explicit cost table in the config wins over the measured one
    explicit = cfg.model_copy(update={"cost_per_customer": {"A": 0.0, "B": 10.0}})
    assert strategy_costs(explicit, stats_frame) == {"A": 0.0, "B": 10.0}
