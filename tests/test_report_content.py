"""The report's added content against independent computations on the raw rows: aging by
invoice reconciles with % overdue, the cash-only CEI and the roll to write-off on a
hand-made book, IFRS 9 stages by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collect_kit import kpis, risk
from collect_kit.snapshot import DEFAULT_DPD


@pytest.mark.parametrize("as_of", ["2026-08-31", "2026-10-31"])
def test_invoice_level_aging_reconciles_with_overdue_ratio(frames, as_of):
    by_invoice = kpis.aging_receivables(frames, as_of)
    overdue = by_invoice.loc[by_invoice.dpd_bucket != DEFAULT_DPD.labels[0], "numerator"].sum()
    ratio = kpis.overdue_ratio(frames, pd.Timestamp(as_of).strftime("%Y-%m")).iloc[0]
    assert overdue / by_invoice.numerator.sum() == pytest.approx(ratio.value, rel=1e-12)
    assert by_invoice.numerator.sum() == pytest.approx(ratio.denominator, rel=1e-12)
    # the customer-level table puts not-yet-due invoices in the customer's worst bucket:
    # the same total, a different split
    by_customer = kpis.aging(frames, as_of)
    assert by_customer.numerator.sum() == pytest.approx(by_invoice.numerator.sum(), rel=1e-12)
    current = DEFAULT_DPD.labels[0]
    assert (by_customer.set_index("dpd_bucket").numerator[current]
            < by_invoice.set_index("dpd_bucket").numerator[current])  # fmt: skip


def test_invoice_level_aging_by_hand(tiny):
    """Each open invoice in its own bucket, computed with pandas from the receivables,
    payments (on account: oldest first) and adjustments of the tiny book."""
    as_of = pd.Timestamp("2025-03-31")
    got = kpis.aging_receivables(tiny, as_of).set_index("dpd_bucket")
    from collect_kit.snapshot import allocate

    with kpis._inputs(tiny, None) as t:
        b = (
            allocate(t["receivables"], t["payments"], t["adjustments"], as_of)
            .balances()
            .to_pandas()
        )
    b = b[b.balance > 0]
    days = (as_of - pd.to_datetime(b.due_at)).dt.days.where(pd.to_datetime(b.due_at) < as_of, 0)
    expect = b.balance.groupby(DEFAULT_DPD.cut(days)).sum()
    for bucket, money in expect.items():
        assert got.numerator[bucket] == pytest.approx(money)
    assert got.receivables.sum() == len(b)


def book():
    """Two customers over February and March 2026. A: owes 1 000 due 2026-02-10, pays 300
    on 03-05 and gets a 200 credit note on 03-20; B: owes 500 due 2026-02-15, written off
    on 03-25. March sales: A gets a new invoice of 400 due 2026-04-30."""
    rec = pd.DataFrame({
        "receivable_id": ["R1", "R2", "R3"], "customer_id": ["A", "B", "A"],
        "issued_at": pd.to_datetime(["2026-01-10", "2026-01-15", "2026-03-10"]),
        "due_at": pd.to_datetime(["2026-02-10", "2026-02-15", "2026-04-30"]),
        "amount": [1000.0, 500.0, 400.0], "product": "loan",
    })  # fmt: skip
    pay = pd.DataFrame({"payment_id": ["P1"], "customer_id": ["A"], "receivable_id": ["R1"],
                        "paid_at": pd.to_datetime(["2026-03-05"]), "amount": [300.0],
                        "method": "transfer"})  # fmt: skip
    adj = pd.DataFrame({"adjustment_id": ["J1", "J2"], "receivable_id": ["R1", "R2"],
                        "customer_id": ["A", "B"],
                        "at": pd.to_datetime(["2026-03-20", "2026-03-25"]),
                        "kind": ["credit_note", "write_off"], "amount": [200.0, 500.0]})  # fmt: skip
    customers = pd.DataFrame({"customer_id": ["A", "B"], "customer_type": "person",
                              "joined_at": pd.to_datetime(["2025-01-01", "2025-01-01"])})  # fmt: skip
    return {"customers": customers, "receivables": rec, "payments": pay, "adjustments": adj}


def test_cash_only_cei_and_roll_to_write_off_by_hand():
    t = book()
    # opening (Feb 28): A 1 000 + B 500 = 1 500; sales 400; closing: A 500 + 400 = 900, of
    # which current 400. CEI = (1 500 + 400 - 900) / (1 500 + 400 - 400) = 1 000 / 1 500.
    # Cash only: the 200 credit note and the 500 write-off were not cash: 300 / 1 500.
    cei = kpis.cei(t, "2026-03").iloc[0]
    assert cei.value == pytest.approx(100 * 1000 / 1500)
    cash = kpis.cei_cash(t, "2026-03").iloc[0]
    assert (cash.numerator, cash.denominator) == (pytest.approx(300.0), pytest.approx(1500.0))
    assert cash.value == pytest.approx(100 * 300 / 1500)
    # both owed at the start; B was written off (not a forward roll), A stayed late
    assert kpis.write_off_rate(t, "2026-03").iloc[0].value == pytest.approx(0.5)
    assert kpis.forward_roll_rate(t, "2026-03").iloc[0].value == pytest.approx(
        0.5
    )  # A: 1-30 -> 31-60
    rolls = kpis.roll_rates(t, "2026-03")
    assert set(rolls.to_state.astype(str)) == {"31-60", "written_off"}
    assert rolls.groupby("from_bucket", observed=True).customer_share.sum().eq(1).all()


def test_ifrs9_stages_by_hand():
    scored = pd.DataFrame({"balance": [100.0, 200.0, 300.0, 400.0],
                           "p_pay": [0.9, 0.5, 0.2, 0.7],
                           "max_days_past_due": [0, 30, 31, 91]})  # fmt: skip
    s = risk.ifrs9_stages(scored, lgd=0.5).set_index("stage")
    assert list(s.customers) == [2, 1, 1]
    assert s.balance.tolist() == [300.0, 300.0, 400.0]
    el = [(0.1 * 100 + 0.5 * 200) * 0.5, 0.8 * 300 * 0.5, 1.0 * 400 * 0.5]
    assert s.expected_loss.tolist() == pytest.approx(el)
    assert s.coverage[3] == pytest.approx(0.5)
    empty = risk.ifrs9_stages(scored.iloc[:0], lgd=0.5)
    assert empty.customers.tolist() == [0, 0, 0] and np.isnan(empty.coverage).all()
