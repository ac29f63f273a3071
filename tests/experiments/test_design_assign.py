"""Experiment design (power), hash assignment (engine vs hashlib) and the SRM check."""

from __future__ import annotations

import hashlib
import math

import ibis
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from collect_kit.experiments import assign_arms, design, hash_bucket, srm_check
from collect_kit.experiments.srm import srm_overall
from collect_kit.reports.format import Formatter
from collect_kit.reports.text import design_sentence

W = {"A": {"champion": 0.8, "challenger": 0.2}, "B": {"champion": 0.5, "challenger": 0.5}}


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    ids = [f"CU{i:07d}{chr(65 + i % 26)}" for i in range(20_000)]
    return pd.DataFrame(
        {"customer_id": ids, "segment": np.where(np.arange(20_000) % 3 == 0, "B", "A")}
    )


def test_engine_bucket_equals_hashlib(population):
    out = assign_arms(population, "exp-1", W)
    ref = [
        int(hashlib.md5(("exp-1" + c).encode()).hexdigest()[:7], 16) / 16**7
        for c in population.customer_id
    ]
    assert np.array_equal(out.bucket.to_numpy(), np.array(ref))
    assert out.customer_id.tolist() == population.customer_id.tolist()  # same rows, same order
    assert hash_bucket(population.customer_id[0], "exp-1") == ref[0]


def test_arms_follow_cumulative_weights(population):
    out = assign_arms(population, "exp-1", W)
    expected = np.where(
        out.segment == "A",
        np.where(out.bucket < 0.8, "champion", "challenger"),
        np.where(out.bucket < 0.5, "champion", "challenger"),
    )
    assert (out.arm.to_numpy() == expected).all()


def test_deterministic_stable_and_salted(population):
    a = assign_arms(population, "exp-1", W)
    b = assign_arms(population, "exp-1", W)
    assert a.arm.tolist() == b.arm.tolist()
    subset = assign_arms(population.iloc[::7], "exp-1", W)  # fewer customers: nobody moves
    assert subset.arm.tolist() == a.iloc[::7].arm.tolist()
    other = assign_arms(population, "exp-2", W)
    assert (other.arm != a.arm).mean() > 0.2  # another salt, another split
    t = assign_arms(ibis.memtable(population), "exp-1", W)
    assert isinstance(t, ibis.expr.types.Table)


def test_weights_respected_within_binomial_tolerance(population):
    out = assign_arms(population, "exp-1", W)
    for seg, w in W.items():
        g = out[out.segment == seg]
        n, share = len(g), w["challenger"]
        k = (g.arm == "challenger").sum()
        assert abs(k - n * share) < 3 * math.sqrt(n * share * (1 - share)), seg
    counts = out.groupby(["segment", "arm"]).size().rename("customers").reset_index()
    assert not srm_check(counts, W).srm.any()


def test_srm_against_scipy_and_a_broken_split():
    counts = pd.DataFrame(
        {"segment": ["S", "S"], "arm": ["champion", "challenger"], "customers": [5_500, 4_500]}
    )
    r = srm_check(counts, {"champion": 1, "challenger": 1}).iloc[0]
    chi2, p = stats.chisquare([5_500, 4_500], [5_000, 5_000])
    assert r.chi2 == pytest.approx(chi2) and r.p_value == pytest.approx(p) and r.srm
    fine = pd.DataFrame(
        {"segment": ["S", "S"], "arm": ["champion", "challenger"], "customers": [5_030, 4_970]}
    )
    assert not srm_check(fine, {"champion": 1, "challenger": 1}).srm.iloc[0]
    with pytest.raises(ValueError, match="not in the design"):
        srm_check(counts.assign(arm=["champion", "other"]), {"champion": 1, "challenger": 1})


def test_customers_in_an_arm_designed_at_weight_zero_fail_both_levels():
    w = {"A": {"champion": 1, "challenger": 1, "retired": 0}, "B": {"champion": 1, "challenger": 1}}
    counts = pd.DataFrame(
        {
            "segment": ["A", "A", "A", "B", "B"],
            "arm": ["champion", "challenger", "retired", "champion", "challenger"],
            "customers": [500, 490, 12, 300, 305],
        }
    )
    per = srm_check(counts, w).set_index("segment")
    assert per.loc["A", "srm"] and per.loc["A", "p_value"] == 0.0
    assert not per.loc["B", "srm"]
    assert srm_overall(counts, w).srm.iloc[0]
    # nobody in the retired arm: the arm is not tested, the rest match their weights
    fine = counts[counts.arm != "retired"]
    assert not srm_check(fine, w).srm.any() and not srm_overall(fine, w).srm.iloc[0]


def test_missing_segment_weights_and_one_arm(population):
    with pytest.raises(ValueError, match="no arm weights for segment"):
        assign_arms(population, "x", {"A": {"champion": 1, "challenger": 1}})
    with pytest.raises(ValueError, match="champion and at least one challenger"):
        design(
            pd.DataFrame({"segment": ["A"], "customers": [100], "payer_rate": [0.3]}),
            {"champion": 1},
        )


def test_design_reads_each_segments_own_weights_and_survives_extremes():
    base = pd.DataFrame({"segment": ["A", "B", "C"], "customers": [5_000] * 3,
                         "payer_rate": [0.25] * 3, "amount_sd": [1_000.0] * 3})  # fmt: skip
    w = {"A": {"champion": 0.5, "challenger": 0.5}, "B": {"champion": 0.9, "challenger": 0.1},
         "C": {"champion": 1.0, "challenger": 0.0}}  # fmt: skip
    d = design(base, w, mde_amount=100.0).set_index("segment")
    assert set(d.index) == {"A", "B"}  # C does not test the challenger
    flat_a = design(base.iloc[[0]], w["A"], mde_amount=100.0).iloc[0]
    flat_b = design(base.iloc[[1]], w["B"], mde_amount=100.0).iloc[0]
    assert d.loc["A", "needed_customers"] == flat_a.needed_customers
    assert d.loc["B", "needed_customers"] == flat_b.needed_customers
    assert d.loc["B", "needed_customers"] > 2 * d.loc["A", "needed_customers"]  # 90/10 costs
    assert (d.loc["B", "champion_share"], d.loc["B", "challenger_share"]) == (0.9, 0.1)
    # an MDE far beyond the spread: a few customers, not a crash (statsmodels does not converge)
    huge = design(base.iloc[[0]], w["A"], mde_amount=1e8).iloc[0]
    assert 2 <= huge.needed_customers_amount <= 10


def test_sample_size_matches_the_closed_form():
    p0, mde, alpha, power, w = 0.25, 0.03, 0.05, 0.8, {"champion": 0.8, "challenger": 0.2}
    b = pd.DataFrame(
        {"segment": ["S"], "customers": [5_000], "payer_rate": [p0], "amount_sd": [1_000.0]}
    )
    d = design(b, w, mde_payer_rate=mde, mde_amount=100.0, alpha=alpha, power=power).iloc[0]
    h = 2 * math.asin(math.sqrt(p0 + mde)) - 2 * math.asin(math.sqrt(p0))
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    ratio = 0.2 / 0.8
    n1 = (z / h) ** 2 * (1 + 1 / ratio)  # champion size, normal approximation
    assert abs(d.needed_customers - math.ceil(n1 / 0.8)) <= 1
    # the MDE achievable with the customers we have, fed back, needs about those customers
    again = design(b, w, mde_payer_rate=d.mde_payer_rate_achievable, alpha=alpha, power=power).iloc[
        0
    ]
    assert abs(again.needed_customers - 5_000) <= 2
    assert d.mde_amount_achievable > 0
    words = design_sentence(d, Formatter("en"))
    assert "customers split 80/20" in words and f"{d.needed_customers:,.0f} customers" in words


def test_expected_duration_by_hand():
    """Everyone owing now is assigned at once, the rest arrive with the inflow, then the
    last customer's outcome window closes."""
    from collect_kit.experiments.run import expected_weeks

    assert expected_weeks(800, 1000, 100, 31) == 5  # enough now: just the 31-day window
    # 1 000 short at 433.33 a month (100 a week): 10 weeks, then 31 days -> ceil(14.43)
    assert expected_weeks(2000, 1000, 100 * 52 / 12, 31) == 15
    assert np.isnan(expected_weeks(2000, 1000, 0, 31))  # never gets there
    assert np.isnan(expected_weeks(float("nan"), 1000, 100, 31))
