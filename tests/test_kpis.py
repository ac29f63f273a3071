"""KPIs: hand-worked on the tiny portfolio, cross-checked on the sample in plain pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collect_kit import kpis
from collect_kit.errors import InvalidParameterError

from .test_snapshot import reference_snapshot

# The tiny portfolio (conftest.tiny), month of March 2025, opening book on 2025-02-28:
#   A: A1 100 (due 2024-12-31) paid by p1 (150 on account, 02-10), which also pays 50 of
#      A2 (200, due 01-31) -> opening overdue 150. In March: p2 100 on A2; A3 300 issued 03-01.
#   B: B1 1000 issued 02-15, due 03-01 -> current at the opening, not delinquent.
#      In March: p3 400. (p4 600 is in April.)
#   C: C1 500, 100 paid in 2024, 400 written off on 02-28 -> nothing owed at the opening.
#      In March: p6 30 on account with nothing open (a credit).


def one(frame: pd.DataFrame) -> pd.Series:
    assert len(frame) == 1
    return frame.iloc[0]


def test_registry_is_documented():
    m = kpis.methodology()
    assert {"recovery_rate", "payer_rate", "overdue_ratio", "dso", "dso_moonflow", "cei"} <= set(
        m.name
    )
    assert (
        m[["label", "unit", "definition", "numerator", "denominator", "source"]].notna().all().all()
    )


def test_recovery_rate_by_hand(tiny):
    r = one(kpis.recovery_rate(tiny, "2025-03"))
    # only A is delinquent at the opening (150 overdue); it pays 100 in March: 100 / 150
    assert (r.numerator, r.denominator) == (100, 150)
    assert r.value == pytest.approx(100 / 150)
    assert r.period == pd.Timestamp("2025-03-31")


def test_payer_rate_and_collected_by_hand(tiny):
    r = one(kpis.payer_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator, r.value) == (
        1,
        1,
        1.0,
    )  # A paid; B and C were not delinquent
    r = one(kpis.collected_per_delinquent_customer(tiny, "2025-03"))
    assert (r.numerator, r.denominator, r.value) == (100, 1, 100)
    r = one(kpis.collected(tiny, "2025-03"))
    assert r.value == 100 + 400 + 30  # p2 + p3 + p6 (a payment with nothing open still counts)
    # January: C (400 overdue since 2024) is the only delinquent customer and pays nothing
    r = one(kpis.payer_rate(tiny, "2025-01"))
    assert (r.numerator, r.denominator, r.value) == (0, 1, 0.0)


def test_overdue_ratio_and_dso_by_hand(tiny):
    # March 31: A owes 50 overdue (A2) + 300 current (A3); B owes 600 overdue; C nothing
    r = one(kpis.overdue_ratio(tiny, "2025-03"))
    assert (r.numerator, r.denominator) == (50 + 600, 50 + 300 + 600)
    r = one(kpis.dso(tiny, "2025-03"))
    # receivables at the end 950 x 31 days / credit sales of March (A3 300)
    assert (r.numerator, r.denominator, r.value) == (950 * 31, 300, 950 * 31 / 300)
    r = one(kpis.best_possible_dso(tiny, "2025-03"))
    assert (r.numerator, r.denominator, r.value) == (300 * 31, 300, 31.0)
    r = one(kpis.dso_moonflow(tiny, "2025-03"))
    # fell due in (2024-12-31, 2025-03-31]: A2 200 + B1 1000; overdue 650 x 90
    assert (r.numerator, r.denominator, r.value) == (650 * 90, 1200, 650 * 90 / 1200)


def test_cei_by_hand(tiny):
    r = one(kpis.cei(tiny, "2025-03"))
    opening, sales, closing, current = 150 + 1000 + 0, 300, 950, 300
    assert r.numerator == opening + sales - closing
    assert r.denominator == opening + sales - current
    assert r.value == pytest.approx((opening + sales - closing) / (opening + sales - current) * 100)


def test_zero_denominator_gives_nan_with_the_denominator_shown(tiny):
    # nothing was settled by payment in March (A2 and B1 still open, A1 settled in February)
    r = one(kpis.average_collection_time(tiny, "2025-03"))
    assert r.denominator == 0 and np.isnan(r.value)
    r = one(kpis.average_days_late(tiny, "2025-02"))
    # February: A1 settled by p1 on 02-10: issued 2024-12-01 (71 days), due 2024-12-31 (41 days late)
    assert (r.numerator, r.denominator, r.value) == (41, 1, 41)
    assert one(kpis.average_collection_time(tiny, "2025-02")).value == 71


def test_empty_portfolio_month(tiny):
    r = one(kpis.recovery_rate(tiny, "2023-01"))
    assert r.denominator == 0 and np.isnan(r.value) and r.numerator == 0


def test_by_groups_and_missing_column(tiny):
    out = kpis.overdue_ratio(tiny, "2025-03", by=["customer_type"]).set_index("customer_type")
    assert out.loc["person", "numerator"] == 50 and out.loc["person", "denominator"] == 350
    assert out.loc["company", "value"] == 1.0
    groups = pd.DataFrame({"customer_id": ["A", "B", "C"], "segment": ["S1", "S2", "S1"]})
    out = kpis.overdue_ratio(tiny, "2025-03", by=["segment"], groups=groups).set_index("segment")
    assert out.loc["S2", "numerator"] == 600
    with pytest.raises(ValueError, match="by: \\['nope'\\]"):
        kpis.overdue_ratio(tiny, "2025-03", by=["nope"])


@pytest.mark.parametrize("month", ["2025-03", "2025-04"])
def test_kpis_adding_several_books_by_group_equal_each_groups_own_book(tiny, month):
    """DSO, CEI and the others add a month-end book, the month's sales, the opening book
    and the non-cash reductions: per customer type, the same as the KPI of the tables kept
    to that type's customers."""
    names = ["overdue_ratio", "dso", "best_possible_dso", "dso_moonflow", "cei", "cei_cash"]
    by = kpis.compute(tiny, month, names, by=["customer_type"])
    for kind in ("person", "company"):
        ids = set(tiny["customers"].customer_id[tiny["customers"].customer_type == kind])
        own = {n: f[f.customer_id.isin(ids)] if "customer_id" in f else f for n, f in tiny.items()}
        alone = kpis.compute(own, month, names).set_index("kpi")
        got = by[by.customer_type == kind].set_index("kpi").loc[alone.index]
        np.testing.assert_allclose(got[["numerator", "denominator"]].to_numpy(float),
                                   alone[["numerator", "denominator"]].to_numpy(float), rtol=1e-12)  # fmt: skip
    assert by.denominator.gt(0).any()


def test_aging_by_hand(tiny):
    a = kpis.aging(tiny, "2025-03-31").set_index("dpd_bucket")
    assert list(a.index) == ["current", "1-30", "31-60", "61-90", "91-180", "181-360", "361+"]
    assert a.loc["31-60", "numerator"] == 350 and a.loc["31-60", "customers"] == 1  # A: 59 days
    assert a.loc["1-30", "numerator"] == 600  # B: 30 days
    assert a.loc["current", "customers"] == 0  # C owes nothing: not in the table
    assert a.loc["361+", "customers"] == 0  # empty buckets stay, with 0
    assert a.value.sum() == pytest.approx(1.0)


# --------------------------------------------------------------- the sample, in pandas


@pytest.mark.parametrize("month", ["2026-10", "2026-03"])
def test_sample_kpis_match_pandas(frames, month):
    p = pd.Period(month, freq="M")
    start, end = p.start_time.normalize(), p.end_time.normalize()
    opening = start - pd.Timedelta(days=1)
    ref_open = reference_snapshot(frames, opening)
    ref_end = reference_snapshot(frames, end)
    pay = frames["payments"]
    paid = pay[(pay.paid_at >= start) & (pay.paid_at <= end)].groupby("customer_id").amount.sum()
    book = ref_open[ref_open.overdue_balance > 0]
    paid_book = paid.reindex(book.index, fill_value=0.0)
    expected = {
        "recovery_rate": (
            np.minimum(paid_book, book.overdue_balance).sum(),
            book.overdue_balance.sum(),
        ),
        "payer_rate": ((paid_book > 0).sum(), len(book)),
        "collected_per_delinquent_customer": (paid_book.sum(), len(book)),
    }
    rec = frames["receivables"]
    sales = rec[(rec.issued_at >= start) & (rec.issued_at <= end)].amount.sum()
    days = (end - start).days + 1
    current_end = ref_end.balance - ref_end.overdue_balance
    fell_due = rec[(rec.due_at > end - pd.Timedelta(days=90)) & (rec.due_at <= end)].amount.sum()
    expected |= {
        "overdue_ratio": (ref_end.overdue_balance.sum(), ref_end.balance.sum()),
        "dso": (ref_end.balance.sum() * days, sales),
        "best_possible_dso": (current_end.sum() * days, sales),
        "dso_moonflow": (ref_end.overdue_balance.sum() * 90, fell_due),
        "cei": (
            ref_open.balance.sum() + sales - ref_end.balance.sum(),
            ref_open.balance.sum() + sales - current_end.sum(),
        ),
    }
    for name, (num, den) in expected.items():
        r = one(kpis.REGISTRY[name].function(frames, month))
        assert r.numerator == pytest.approx(num, rel=1e-9, abs=1e-6), name
        assert r.denominator == pytest.approx(den, rel=1e-9, abs=1e-6), name
    assert one(kpis.collected(frames, month)).value == pytest.approx(paid.sum())
    assert len(book) > 100


def test_contact_and_promise_kpis_by_hand(tiny):
    # March actions: k3 (A sms delivered), k8 (A call promise), k9 (B promise), k4 (B promise),
    # k5 (B email no answer), k6 (C promise); k7 is in April
    r = one(kpis.contact_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator) == (4, 6)
    r = one(kpis.right_party_contact_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator) == (4, 6)
    by = kpis.contact_rate(tiny, "2025-03", by=["channel"]).set_index("channel")
    assert (
        by.loc["call", "value"] == 1.0
        and by.loc["email", "value"] == 0.0
        and by.loc["sms", "denominator"] == 1
    )
    r = one(kpis.promise_to_pay_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator) == (4, 4)
    # due in March: k8 (200 by 03-28, nothing paid) broken; k4 (500, 400 paid) broken;
    # k9 superseded by k4; k6 falls due in April (pending, left out)
    r = one(kpis.promise_kept_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator, r.value) == (0, 2, 0.0)
    r = one(kpis.promise_kept_rate(tiny, "2025-02"))  # k2: 150 promised, p1 150 paid in time
    assert (r.numerator, r.denominator) == (1, 1)
    r = one(kpis.managed_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator) == (1, 1)
    r = one(kpis.cost_to_collect(tiny, "2025-03"))
    assert r.numerator == 40 + 650 + 650 + 650 + 5 + 650 and r.denominator == 530


def test_cost_to_collect_without_costs_is_nan(tiny):
    tiny["contacts"] = tiny["contacts"].assign(cost=float("nan"))
    r = one(kpis.cost_to_collect(tiny, "2025-03"))
    assert np.isnan(r.value) and r.denominator == 530


def test_roll_rates_by_hand(tiny):
    # February: opening 01-31: A owes 300 (A1 31 days late -> 31-60), C owes 400 (184 days ->
    # 181-360). End 02-28: A owes 150 of A2 (28 days -> 1-30: a roll back); C's 400 written off.
    feb = kpis.roll_rates(tiny, "2025-02")
    got = {(r.from_bucket, r.to_state): (r.customers, r.balance) for r in feb.itertuples()}
    assert got == {("31-60", "1-30"): (1, 300.0), ("181-360", "written_off"): (1, 400.0)}
    # March: A 1-30 -> 31-60 (59 days), B current -> 1-30 (30 days): both roll forward
    mar = kpis.roll_rates(tiny, "2025-03")
    got = {(r.from_bucket, r.to_state): r.customers for r in mar.itertuples()}
    assert got == {("current", "1-30"): 1, ("1-30", "31-60"): 1}
    r = one(kpis.forward_roll_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator) == (2, 2)
    r = one(kpis.cure_rate(tiny, "2025-03"))
    assert (r.numerator, r.denominator) == (0, 1)  # B was current at the opening: not in the base
    assert (mar.groupby("from_bucket", observed=True).customer_share.sum() == 1).all()


def test_cure_then_relapse(tiny):
    # D2: a customer late in January, current (still owing) in February, late again in March
    extra = pd.DataFrame(
        {"receivable_id": ["D1", "D2", "D3"], "customer_id": ["C"] * 3, "product": ["loan"] * 3,
         "issued_at": pd.to_datetime(["2024-12-01", "2025-01-20", "2025-02-20"]).astype("datetime64[s]"),
         "due_at": pd.to_datetime(["2025-01-10", "2025-03-05", "2025-03-10"]).astype("datetime64[s]"),
         "amount": [80.0, 90.0, 70.0], "currency": ["CLP"] * 3}
    )  # fmt: skip
    pay = pd.DataFrame(
        {"payment_id": ["q1"], "customer_id": ["C"], "receivable_id": ["D1"],
         "paid_at": pd.to_datetime(["2025-02-03"]).astype("datetime64[s]"), "amount": [80.0]}
    )  # fmt: skip
    tiny["receivables"] = pd.concat([tiny["receivables"], extra], ignore_index=True)
    tiny["payments"] = pd.concat([tiny["payments"], pay], ignore_index=True)
    # Jan 31: C owes D1 (21 days) and C1 (184 days). Feb 28: D1 paid, C1 written off, D2 and D3
    # not yet due -> current while owing: a cure from 181-360. Mar 31: D2, D3 unpaid -> 1-30.
    feb = {
        (r.from_bucket, r.to_state): r.customers
        for r in kpis.roll_rates(tiny, "2025-02").itertuples()
    }
    assert feb[("181-360", "current")] == 1
    r = one(kpis.cure_rate(tiny, "2025-02"))
    assert (r.numerator, r.denominator) == (1, 2)  # A (31-60 -> 1-30) is not cured
    mar = {
        (r.from_bucket, r.to_state): r.customers
        for r in kpis.roll_rates(tiny, "2025-03").itertuples()
    }
    assert mar[("current", "1-30")] == 2  # B and the relapsing C


def test_sample_contact_roll_and_aging_match_pandas(frames):
    month = "2026-08"
    p = pd.Period(month, freq="M")
    start, end = p.start_time.normalize(), p.end_time.normalize()
    opening = start - pd.Timedelta(days=1)
    ref_open, ref_end = reference_snapshot(frames, opening), reference_snapshot(frames, end)
    c = frames["contacts"]
    cm = c[(c["at"] >= start) & (c["at"] <= end)]
    pay = frames["payments"]
    paid = pay[(pay.paid_at >= start) & (pay.paid_at <= end)]
    book = ref_open[ref_open.overdue_balance > 0]
    expected = {
        "contact_rate": (
            cm.outcome.isin(["contacted", "right_party", "promise", "refused"]).sum(),
            len(cm),
        ),
        "right_party_contact_rate": (
            cm.outcome.isin(["right_party", "promise", "refused"]).sum(),
            len(cm),
        ),
        "promise_to_pay_rate": (
            (cm.outcome == "promise").sum(),
            cm.outcome.isin(["right_party", "promise", "refused"]).sum(),
        ),
        "managed_rate": (book.index.isin(cm.customer_id).sum(), len(book)),
        "cost_to_collect": (cm.cost.sum(), paid.amount.sum()),
    }
    # promises due in the month, not superseded, kept when covered within 1 %
    kept = due = 0
    for _, g in c[c.outcome == "promise"].sort_values(["at", "contact_id"]).groupby("customer_id"):
        rows = list(g.itertuples())
        for i, q in enumerate(rows):
            if not (opening < q.promise_due <= end) or (
                i + 1 < len(rows) and rows[i + 1].at <= q.promise_due
            ):
                continue
            due += 1
            mine = pay[
                (pay.customer_id == q.customer_id)
                & (pay.paid_at >= q.at)
                & (pay.paid_at <= q.promise_due)
            ]
            kept += mine.amount.sum() >= q.promise_amount * 0.99
    expected["promise_kept_rate"] = (kept, due)
    # roll: buckets at the opening (owing customers) and states at the end
    owing = ref_open[ref_open.balance > 0]
    adj = frames["adjustments"]
    wrote = set(
        adj[(adj.kind == "write_off") & (adj["at"] >= start) & (adj["at"] <= end)].customer_id
    )
    end_state = ref_end.reindex(owing.index)
    state = np.where(end_state.balance > 0, end_state.dpd_bucket,
                     np.where(owing.index.isin(wrote), "written_off", "paid_off"))  # fmt: skip
    order = {
        b: i
        for i, b in enumerate(["current", "1-30", "31-60", "61-90", "91-180", "181-360", "361+"])
    }
    from_rank = owing.dpd_bucket.map(order).to_numpy()
    to_rank = pd.Series(state).map(order).fillna(-1).to_numpy()
    expected["forward_roll_rate"] = ((to_rank > from_rank).sum(), len(owing))
    expected["cure_rate"] = (((from_rank > 0) & (state == "current")).sum(), (from_rank > 0).sum())
    for name, (num, den) in expected.items():
        r = one(kpis.REGISTRY[name].function(frames, month))
        assert (r.numerator, r.denominator) == pytest.approx((num, den)), name
    matrix = kpis.roll_rates(frames, month)
    ref = pd.DataFrame({"from_bucket": owing.dpd_bucket.to_numpy(), "to_state": state,
                        "balance": owing.balance.to_numpy()})  # fmt: skip
    ref = ref.groupby(["from_bucket", "to_state"]).agg(
        customers=("balance", "size"), balance=("balance", "sum")
    )
    got = matrix.set_index(["from_bucket", "to_state"])[["customers", "balance"]]
    got.index = got.index.set_levels([lvl.astype(str) for lvl in got.index.levels])
    pd.testing.assert_frame_equal(got.sort_index(), ref.sort_index(), check_dtype=False)
    aging = kpis.aging(frames, end).set_index("dpd_bucket")
    owing_end = ref_end[ref_end.balance > 0]
    for bucket, g in owing_end.groupby("dpd_bucket"):
        assert aging.loc[bucket, "numerator"] == pytest.approx(g.balance.sum())
        assert aging.loc[bucket, "customers"] == len(g)
    assert expected["forward_roll_rate"][0] > 10 and expected["promise_kept_rate"][1] > 10


def test_vintages_by_hand(tiny):
    v = kpis.vintage_curves(tiny, "2024-12", "2025-04", max_months=3)
    got = {
        (r.vintage.strftime("%Y-%m"), r.months_since): (r.episodes, r.numerator, r.denominator)
        for r in v.itertuples()
    }
    # A enters delinquency at 2025-01-31 with A1 (100) overdue; p1 (150, February) recovers it all.
    # B enters at 2025-03-31 with 600 overdue; p4 (600, April) recovers it all. C was already
    # delinquent in the first month (history unknown): no episode. Immature cells are left out.
    assert got == {
        ("2025-01", 1): (1, 100, 100), ("2025-01", 2): (1, 100, 100), ("2025-01", 3): (1, 100, 100),
        ("2025-03", 1): (1, 600, 600),
    }  # fmt: skip
    # a single month has no later month to recover in: no cell, the same columns and types
    empty = kpis.vintage_curves(tiny, "2025-04", "2025-04")
    assert empty.empty and empty.dtypes.to_dict() == v.dtypes.to_dict()


def test_time_to_first_payment_by_hand_and_against_statsmodels(tiny):
    from statsmodels.duration.survfunc import SurvfuncRight

    km = kpis.time_to_first_payment(tiny, "2024-12", "2025-04")
    # A: entry 2025-01-31, first payment 02-10 (10 days); B: entry 03-31, paid 04-05 (5 days)
    assert km.days.tolist() == [5, 10] and km.survival.tolist() == [0.5, 0.0]
    # with a censored episode: March as the last month, B has no payment by 03-31
    km = kpis.time_to_first_payment(tiny, "2024-12", "2025-03")
    ref = SurvfuncRight(np.array([10.0]), np.array([1]))
    assert km.survival.tolist() == list(ref.surv_prob)


@pytest.fixture(scope="module")
def sample_months(frames):
    ends = [pd.Timestamp(m) for m in ("2026-05-31", "2026-06-30", "2026-07-31", "2026-08-31")]
    return ends, {m: reference_snapshot(frames, m) for m in ends}


def test_sample_vintages_and_survival_match_pandas(frames, sample_months):
    from statsmodels.duration.survfunc import SurvfuncRight

    ends, refs = sample_months
    customers = sorted(set().union(*[set(r.index) for r in refs.values()]))
    pay = frames["payments"]
    rows, durations = [], []
    for c in customers:
        delinquent = [c in refs[m].index and refs[m].loc[c, "overdue_balance"] > 0 for m in ends]
        episodes = [i for i in range(1, len(ends)) if delinquent[i] and not delinquent[i - 1]]
        mine = pay[pay.customer_id == c]
        for n, i in enumerate(episodes):
            stop = episodes[n + 1] if n + 1 < len(episodes) else len(ends)
            entry = refs[ends[i]].loc[c, "overdue_balance"]
            cum = 0.0
            for k in range(1, len(ends) - i):
                month = i + k
                if month < stop:
                    lo, hi = ends[month - 1] + pd.Timedelta(days=1), ends[month]
                    cum += mine[(mine.paid_at >= lo) & (mine.paid_at <= hi)].amount.sum()
                rows.append((ends[i], k, min(cum, entry), entry))
            later = mine[mine.paid_at > ends[i]].paid_at
            first = later[later <= ends[-1]].min()
            durations.append(
                ((first - ends[i]).days, 1) if pd.notna(first) else ((ends[-1] - ends[i]).days, 0)
            )
    ref = (
        pd.DataFrame(rows, columns=["vintage", "months_since", "num", "den"])
        .groupby(["vintage", "months_since"])
        .sum()
    )
    got = kpis.vintage_curves(frames, "2026-05", "2026-08", max_months=3).set_index(
        ["vintage", "months_since"]
    )
    assert len(ref) == len(got) == 3  # Jun +1, Jun +2, Jul +1
    np.testing.assert_allclose(got.loc[ref.index, "numerator"], ref.num, rtol=1e-9)
    np.testing.assert_allclose(got.loc[ref.index, "denominator"], ref.den, rtol=1e-9)
    d = np.array(durations, dtype=float)
    sf = SurvfuncRight(d[:, 0], d[:, 1])
    km = kpis.time_to_first_payment(frames, "2026-05", "2026-08")
    np.testing.assert_allclose(km.survival.to_numpy(), sf.surv_prob, rtol=1e-9)
    np.testing.assert_allclose(km.days.to_numpy(), sf.surv_times)


def test_empty_group_shows_zero_over_zero(tiny):
    out = kpis.recovery_rate(tiny, "2025-03", by=["customer_type"]).set_index("customer_type")
    # no company was delinquent at the opening: the group is there, 0 / 0, value NaN
    assert out.loc["company", "denominator"] == 0 and np.isnan(out.loc["company", "value"])
    assert out.loc["person", "value"] == pytest.approx(100 / 150)


def test_sample_collection_time_matches_pandas(frames):
    for month in ("2026-10", "2026-03"):
        end = pd.Period(month, freq="M").end_time.normalize()
        ref = reference_snapshot(frames, end, months=1)  # settled in (previous month end, end]
        n = ref.settled_receivables.sum()
        term = (ref.avg_payment_term_days.fillna(0) * ref.settled_receivables).sum()
        late = (ref.avg_days_late.fillna(0) * ref.settled_receivables).sum()
        r = one(kpis.average_collection_time(frames, month))
        assert (r.numerator, r.denominator) == pytest.approx((term, n))
        r = one(kpis.average_days_late(frames, month))
        assert (r.numerator, r.denominator) == pytest.approx((late, n))


def test_month_end_books_are_shared_and_give_the_same_numbers(sample_db, frames):
    """On a database the month-end book is computed once per date and reused; the KPIs
    equal those computed on the same data loaded from pandas (which is never cached)."""
    from collect_kit import engine, sources
    from collect_kit.demo import sample_config

    portfolio = sources.load(sample_config(), database=sample_db)
    engine._SHARED.clear()
    with engine.inputs(portfolio.tables, kpis._SPECS) as t:  # as the KPIs take them
        first = kpis.customer_balances(t, "2026-09-30")
        again = kpis.customer_balances(t, "2026-09-30")
    assert again.get_name() == first.get_name() and len(engine._SHARED) == 1
    for name in ("recovery_rate", "payer_rate", "overdue_ratio", "dso", "cei", "cure_rate"):
        for month in ("2026-09", "2026-10"):
            db = kpis.REGISTRY[name].function(portfolio.tables, month)
            pd_ = kpis.REGISTRY[name].function(frames, month)
            pd.testing.assert_frame_equal(db, pd_, check_exact=False, rtol=1e-12)
    # Aug, Sep and Oct month ends: three books for twelve KPI calls
    assert len(engine._SHARED) == 3
    engine._SHARED.clear()


def test_shared_keeps_a_bounded_number_of_results(sample_db, monkeypatch):
    from collect_kit import engine, sources
    from collect_kit.demo import sample_config

    portfolio = sources.load(sample_config(), database=sample_db)
    monkeypatch.setattr(engine, "SHARED_MAX", 2)
    engine._SHARED.clear()
    for month_end in ("2026-07-31", "2026-08-31", "2026-09-30"):
        kpis.customer_balances(portfolio.tables, month_end)
    assert len(engine._SHARED) == 2
    # pandas inputs are loaded for one call and dropped after it: results on them never kept
    with engine.inputs({"a": pd.DataFrame({"a": [1, 2]})}) as t:
        expr = t["a"].mutate(b=t["a"].a * 2)
        assert engine.shared(expr) is expr and len(engine._SHARED) == 2
    engine._SHARED.clear()


def test_the_allocation_is_built_once_per_connection_and_date(sample_db, monkeypatch):
    """Asking again for the KPIs of a month builds no allocation expression (each costs
    milliseconds of Python); a new connection to the same file builds its own."""
    from collect_kit import engine, snapshot, sources
    from collect_kit.demo import sample_config

    engine.release_shared()
    built = []
    real = snapshot.allocate
    monkeypatch.setattr(snapshot, "allocate", lambda *a: built.append(a[3]) or real(*a))
    portfolio = sources.load(sample_config(), database=sample_db)
    names = ("recovery_rate", "overdue_ratio", "cure_rate", "average_days_late", "dso")
    first = kpis.compute(portfolio.tables, "2026-10", names)
    # the settlements keep October's allocation and October's book reads it: one
    # allocation per month end
    assert sorted(built) == [pd.Timestamp("2026-09-30"), pd.Timestamp("2026-10-31")]
    first = [kpis.REGISTRY[n].function(portfolio.tables, "2026-10") for n in names]
    after_first = len(built)
    again = [kpis.REGISTRY[n].function(portfolio.tables, "2026-10") for n in names]
    assert len(built) == after_first
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b)
    other = sources.load(sample_config(), database=sample_db)
    fresh = kpis.REGISTRY["overdue_ratio"].function(other.tables, "2026-10")
    assert len(built) > after_first
    pd.testing.assert_frame_equal(fresh, first[1])
    portfolio.close()
    other.close()
    engine.release_shared()


def test_a_year_of_kpis_keeps_few_allocations_and_every_book(sample_db, monkeypatch):
    """KPIs of several months of a book too large to allocate them together keep at most
    KEPT_ALLOCATIONS allocations (a row per receivable each) but every month-end book:
    the aging and roll rates asked for afterwards, as a report does, allocate nothing
    again."""
    from collect_kit import engine, snapshot, sources
    from collect_kit.demo import sample_config

    monkeypatch.setattr(kpis, "TOGETHER_CUSTOMER_DATES", 0)  # month by month
    engine.release_shared()
    built = []
    real = snapshot.allocate
    monkeypatch.setattr(snapshot, "allocate", lambda *a: built.append(a[3]) or real(*a))
    portfolio = sources.load(sample_config(), database=sample_db)
    months = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    kpis.compute(portfolio.tables, months)
    kept = [k for k in engine._BUILT if k[0] == "allocation"]
    assert len(kept) == snapshot.KEPT_ALLOCATIONS < len(months)
    assert max(k[1] for k in kept) == pd.Timestamp("2026-10-31")
    after_compute = len(built)
    assert after_compute == len(months) + 1  # each month end once, and the first opening
    for month in months:
        kpis.aging(portfolio.tables, pd.Period(month).end_time.normalize())
        kpis.roll_rates(portfolio.tables, month)
    assert len(built) == after_compute
    portfolio.close()
    engine.release_shared()


def test_a_small_book_allocates_every_month_end_in_one_query(sample_db, monkeypatch):
    """A small book (customers x month ends up to TOGETHER_CUSTOMER_DATES) allocates the
    month ends of a KPI call together (one allocate_each of every opening and end),
    keeps each month's settlements and book, and gives the KPIs, aging and roll rates
    of the month-by-month path; nothing is allocated again afterwards."""
    from collect_kit import engine, snapshot, sources
    from collect_kit.demo import sample_config

    months = ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    ends = [pd.Period(m).end_time.normalize() for m in months]
    limit = kpis.TOGETHER_CUSTOMER_DATES
    assert 2000 * (len(months) + 1) <= limit  # the sample's 2 000 customers

    def year(limit: int):
        engine.release_shared()
        monkeypatch.setattr(kpis, "TOGETHER_CUSTOMER_DATES", limit)
        portfolio = sources.load(sample_config(), database=sample_db)
        out = (kpis.compute(portfolio.tables, months), kpis.aging(portfolio.tables, ends),
               kpis.roll_rates(portfolio.tables, months))  # fmt: skip
        return portfolio, out

    one_by_one = year(0)[1]
    together, one = [], []
    real_each, real_one = kpis.allocate_each, snapshot.allocate
    monkeypatch.setattr(kpis, "allocate_each", lambda *a: together.append(a[3]) or real_each(*a))
    monkeypatch.setattr(snapshot, "allocate", lambda *a: one.append(a[3]) or real_one(*a))
    portfolio, joint = year(limit)
    assert together == [[pd.Period("2026-05").end_time.normalize(), *ends]] and one == []
    for a, b in zip(joint, one_by_one, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    assert joint[0].period.nunique() == len(months) and joint[0].value.notna().sum() > 50
    assert joint[0].set_index("kpi").loc["average_days_late", "denominator"].gt(0).all()
    for month in months:  # asked again one by one, as a report does
        kpis.compute(portfolio.tables, month)
    assert len(together) == 1 and one == []
    portfolio.close()
    engine.release_shared()


def test_kpis_needing_an_absent_input_are_not_available_never_zero(tiny):
    without = {k: v for k, v in tiny.items() if k != "contacts"}
    needing = [n for n, k in kpis.REGISTRY.items() if "contacts" in k.needs]
    for name in [*needing, "recovery_rate", "overdue_ratio", "cure_rate"]:
        k = kpis.REGISTRY[name]
        out = k.function(without, "2025-03")
        if "contacts" in k.needs:
            assert out.note.tolist() == ["not available: no contacts table"], name
            assert out[["numerator", "denominator", "value"]].isna().all().all(), name
        else:
            assert (out.note == "").all(), name
    by = kpis.contact_rate(without, "2025-03", by=["channel"])
    assert len(by) == 1 and by.note.iloc[0].startswith("not available")
    no_cost = {**tiny, "contacts": tiny["contacts"].drop(columns="cost")}
    out = kpis.cost_to_collect(no_cost, "2025-03")
    assert out.note.iloc[0] == "not available: no cost column in contacts"
    assert np.isnan(out.value.iloc[0])
    # with the table present, the same KPI is computed
    assert kpis.contact_rate(tiny, "2025-03").note.iloc[0] == ""
    m = kpis.methodology(["contacts"]).set_index("name").availability
    assert m["contact_rate"] == "not available: no contacts table" and m["recovery_rate"] == ""


def test_contact_kpis_group_by_agent_and_collected_by_method(tiny):
    contacts = tiny["contacts"].assign(
        agent=["AG1" if i % 2 else "AG2" for i in range(len(tiny["contacts"]))]
    )
    t = {**tiny, "contacts": contacts}
    by = kpis.contact_rate(t, "2025-03", by=["agent"]).set_index("agent")
    c = contacts[(contacts["at"] >= "2025-03-01") & (contacts["at"] <= "2025-03-31")]
    reached = c.outcome.isin(["contacted", "right_party", "promise", "refused"])
    expected = reached.groupby(c.agent).mean()
    pd.testing.assert_series_equal(by.value.sort_index(), expected.sort_index(), check_names=False)
    payments = tiny["payments"].assign(method=["card", "cash"] * (len(tiny["payments"]) // 2)
                                       + ["card"] * (len(tiny["payments"]) % 2))  # fmt: skip
    got = kpis.collected({**tiny, "payments": payments}, "2025-03", by=["method"])
    p = payments[(payments.paid_at >= "2025-03-01") & (payments.paid_at <= "2025-03-31")]
    assert got.set_index("method").value.to_dict() == p.groupby("method").amount.sum().to_dict()


def test_contact_intensity_against_pandas(frames):
    month = "2026-09"
    from collect_kit.snapshot import snapshot

    start = snapshot(frames, "2026-08-31")
    delinquent = set(start.customer_id[start.overdue_balance > 0])
    c = frames["contacts"]
    c = c[(c["at"] >= "2026-09-01") & (c["at"] <= "2026-09-30") & c.customer_id.isin(delinquent)]
    out = kpis.contact_intensity(frames, month)
    assert out.denominator.iloc[0] == len(delinquent)
    assert out.value.iloc[0] == pytest.approx(len(c) / len(delinquent))
    per = c.groupby("customer_id").size()
    assert out.above_cap_share.iloc[0] == pytest.approx((per > 10).sum() / len(delinquent))
    by = kpis.contact_intensity(frames, month, by=["channel"], cap=2).set_index("channel")
    assert by.numerator.to_dict() == c.groupby("channel").size().astype(float).to_dict()
    assert (by.denominator == len(delinquent)).all()
    per_channel = c.groupby(["channel", "customer_id"]).size()
    expected = (per_channel > 2).groupby(level=0).sum() / len(delinquent)
    pd.testing.assert_series_equal(by.above_cap_share.sort_index(), expected.sort_index(),
                                   check_names=False)  # fmt: skip


def test_compute_sums_every_measure_in_one_query_equal_to_each_kpi(sample_db, monkeypatch):
    """Three months of every KPI, by segment: every measure summed in one query, and the
    same rows as each KPI computed on its own (which the hand-worked tests above
    check)."""
    from collect_kit import engine, sources
    from collect_kit import segmentation as sg
    from collect_kit.demo import sample_config
    from collect_kit.reports.context import example_segmentation

    portfolio = sources.load(sample_config(), database=sample_db)
    snap = portfolio.snapshot("2026-07-31")
    groups = sg.assign(sg.load(example_segmentation("consumer")), snap).select(
        "customer_id", "segment"
    )
    months = ["2026-08", "2026-09", "2026-10"]
    measures = [n for n, k in kpis.REGISTRY.items() if k.measure is not None]
    pulled = []
    real = kpis.pull
    monkeypatch.setattr(kpis, "pull", lambda expr, what="", **kw: pulled.append(what)
                        or real(expr, what, **kw))  # fmt: skip
    together = kpis.compute(portfolio.tables, months, measures, by=["segment"], groups=groups)
    # every measure of every month in one query (each frame aggregated once)
    assert pulled == [", ".join(measures) + " by segment", "the groups of segment"]
    monkeypatch.setattr(kpis, "pull", real)
    alone = pd.concat(
        [kpis.REGISTRY[n].function(portfolio.tables, m, by=["segment"], groups=groups)
         for m in months for n in measures], ignore_index=True,
    )  # fmt: skip
    pd.testing.assert_frame_equal(together, alone, check_exact=False, rtol=1e-12)
    assert set(together.kpi) == set(measures) and together.period.nunique() == 3
    everything = kpis.compute(portfolio.tables, "2026-10")
    assert list(everything.kpi) == list(kpis.REGISTRY)
    with pytest.raises(InvalidParameterError, match="not KPIs"):
        kpis.compute(portfolio.tables, "2026-10", ["recovery"])
    with pytest.raises(InvalidParameterError, match="at least one month"):
        kpis.compute(portfolio.tables, [])
    twice = kpis.compute(portfolio.tables, ["2026-10", "2026-09", "2026-10"], ["collected"])
    assert list(twice.period.dt.strftime("%Y-%m")) == ["2026-10", "2026-09"]  # as asked, once
    del snap, groups  # the kept snapshot is dropped while its connection is open
    engine.release_shared()
    portfolio.close()


def test_books_computed_in_parts_of_customers_give_the_same_kpis(sample_db, monkeypatch):
    """A book of more than twice PART_CUSTOMERS customers computes its month-end books and its
    allocations one range of customers at a time (Parquet parts): same KPIs and aging."""
    from collect_kit import engine, snapshot, sources
    from collect_kit.demo import sample_config

    names = ("overdue_ratio", "recovery_rate", "cure_rate", "average_days_late", "cei")
    portfolio = sources.load(sample_config(), database=sample_db)
    engine.release_shared()
    whole = kpis.compute(portfolio.tables, ["2026-09", "2026-10"], names)
    aging = kpis.aging(portfolio.tables, "2026-10-31")
    by_receivable = kpis.aging_receivables(portfolio.tables, "2026-10-31")
    vintages = kpis.vintage_curves(portfolio.tables, "2026-03", "2026-10")
    paid = kpis.time_to_first_payment(portfolio.tables, "2026-04", "2026-09", by=["customer_type"])
    portfolio.close()
    monkeypatch.setattr(snapshot, "PART_CUSTOMERS", 600)
    monkeypatch.setattr(snapshot, "_RANGES", {})
    monkeypatch.setattr(kpis, "TOGETHER_CUSTOMER_DATES", 0)  # a large book's path
    portfolio = sources.load(sample_config(), database=sample_db)
    parted = kpis.compute(portfolio.tables, ["2026-09", "2026-10"], names)
    book = kpis.customer_balances(portfolio.tables, "2026-10-31")
    assert book.get_name().startswith("ibis_read_parquet")  # written in parts
    scratch = engine.scratch_folder(portfolio.connection)
    assert len(list(scratch.glob("parts-*/book/part-*.parquet"))) >= 3 * 4  # 3 month ends
    assert len(list(scratch.glob("parts-*/allocation/part-*.parquet"))) >= 3 * 2  # settlements
    pd.testing.assert_frame_equal(parted, whole)
    pd.testing.assert_frame_equal(kpis.aging(portfolio.tables, "2026-10-31"), aging)
    pd.testing.assert_frame_equal(
        kpis.aging_receivables(portfolio.tables, "2026-10-31"), by_receivable
    )
    assert len(list(scratch.glob("parts-*/open/part-*.parquet"))) >= 4
    # the vintages' month ends not computed yet: their overdue balances together, in parts too
    pd.testing.assert_frame_equal(kpis.vintage_curves(portfolio.tables, "2026-03", "2026-10"),
                                  vintages, check_exact=False, rtol=1e-12)  # fmt: skip
    assert len(list(scratch.glob("parts-*/overdue/part-*.parquet"))) >= 4
    pd.testing.assert_frame_equal(
        kpis.time_to_first_payment(portfolio.tables, "2026-04", "2026-09", by=["customer_type"]),
        paid, check_exact=False, rtol=1e-12,
    )  # fmt: skip
    del book
    portfolio.close()
    engine.release_shared()


def test_overdue_balances_of_several_month_ends_are_computed_together(sample_db, monkeypatch):
    """overdue_balances computes the month ends without a kept book or result in one query
    (one overdue_each) and keeps each date's; a date whose month-end book is kept reads
    its book. Each equals the overdue balances of its date's month-end book."""
    from collect_kit import engine, snapshot, sources
    from collect_kit.demo import sample_config

    portfolio = sources.load(sample_config(), database=sample_db)
    t = portfolio.tables
    dates = [pd.Timestamp(d) for d in ("2026-04-30", "2026-06-30", "2026-07-31", "2026-09-30")]
    engine.release_shared()
    books = {}
    for d in dates:
        books[d] = kpis.customer_balances(t, d).to_pandas()
        engine.release_shared()
    kept = kpis.customer_balances(t, dates[-1])  # kept: read, not computed again
    together = []
    real = kpis.overdue_each
    monkeypatch.setattr(kpis, "overdue_each", lambda *a: together.append(a[3]) or real(*a))
    monkeypatch.setattr(snapshot, "allocate", lambda *a: pytest.fail("allocated again"))
    owed = kpis.overdue_balances(t, [*reversed(dates), dates[0]])
    assert together == [dates[:-1]] and list(owed) == dates
    again = kpis.overdue_balances(t, dates[:2])  # kept: nothing computed again
    assert together == [dates[:-1]] and again[dates[0]].equals(owed[dates[0]])
    for d in dates:
        got = owed[d].to_pandas().sort_values("customer_id", ignore_index=True)
        want = books[d][["customer_id", "overdue_balance"]]
        want = want.sort_values("customer_id", ignore_index=True)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
        assert want.overdue_balance.gt(0).sum() > 50 and want.overdue_balance.eq(0).any()
    del owed, again, kept  # the kept tables are dropped before their connection closes
    engine.release_shared()
    portfolio.close()


def test_concentration_by_group_against_pandas_on_the_book(frames):
    """The top fractions' customers and balances and the HHI per group (a missing group
    is a group too) equal pandas on the snapshot's balances: sorted by balance, largest first,
    ties by customer_id, the top ceil(top x owing) of each group."""
    import math

    from collect_kit.snapshot import snapshot

    when = pd.Timestamp("2026-10-31")
    book = snapshot(frames, when)[["customer_id", "balance"]]
    groups = frames["customers"][["customer_id"]].copy()
    i = np.arange(len(groups))
    groups["g"] = np.where(i % 3 == 0, None, np.where(i % 3 == 1, "a", "b"))
    got = kpis.concentration(frames, when, tops=(0.01, 0.2, 1.0), by=["g"], groups=groups)
    owing = book[book.balance > 0].merge(groups, on="customer_id", how="left")
    assert owing.g.isna().any() and owing.g.notna().any()
    for g, rows in owing.groupby("g", dropna=False):
        rows = rows.sort_values(["balance", "customer_id"], ascending=[False, True])
        mine = got[got.g.isna()] if g != g or g is None else got[got.g == g]
        total = rows.balance.sum()
        for top in (0.01, 0.2, 1.0):
            k = math.ceil(top * len(rows))
            r = mine[mine.top == top].iloc[0]
            assert r.customers == k
            assert r.numerator == pytest.approx(rows.balance.iloc[:k].sum(), rel=1e-12)
            assert r.denominator == pytest.approx(total, rel=1e-12)
        hhi = mine[mine.top.isna()].iloc[0]
        assert hhi.customers == len(rows)
        assert hhi.value == pytest.approx(((rows.balance / total) ** 2).sum(), rel=1e-9)
