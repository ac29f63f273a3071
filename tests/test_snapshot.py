"""Snapshot features: a hand-worked fixture and an independent plain-Python recomputation."""

from __future__ import annotations

import math
import re

import ibis
import numpy as np
import pandas as pd
import pytest

from collect_kit.errors import InvalidParameterError
from collect_kit.snapshot import DPD_BUCKETS, FEATURES, snapshot

D = pd.Timestamp
AS_OF = D("2025-03-31")


def days(a: str, b: str) -> int:
    return (D(a) - D(b)).days


@pytest.fixture
def snap(tiny) -> pd.DataFrame:
    return snapshot(tiny, AS_OF).set_index("customer_id")


def test_customers_known_at_as_of_only(snap):
    assert sorted(snap.index) == ["A", "B", "C"]  # D arrives after as_of


def test_columns_are_the_documented_features_and_no_personal_data(snap):
    assert ["customer_id", *snap.columns] == list(FEATURES)
    assert not {"name", "phone", "email"} & set(snap.columns)


def test_customer_a_fifo_partial_payments_and_promises(snap):
    a = snap.loc["A"]
    # p1 (150, on account, 2025-02-10) pays A1 (100) then 50 of A2; p2 pays 100 of A2.
    # A2: 200 - 100 - 50 = 50 open, due 2025-01-31; A3 (300) not yet due.
    assert a.balance == 50 + 300
    assert a.overdue_balance == 50
    assert a.current_balance == 300
    assert a.credit_balance == 0
    assert a.open_receivables == 2 and a.overdue_receivables == 1
    assert a.max_days_past_due == days("2025-03-31", "2025-01-31") == 59
    assert a.weighted_days_past_due == 59
    assert a.dpd_bucket == "31-60"
    # A1 settled by p1 on 2025-02-10: term from 2024-12-01, late from 2024-12-31
    assert a.settled_receivables == 1
    assert a.avg_payment_term_days == days("2025-02-10", "2024-12-01") == 71
    assert a.avg_days_late == days("2025-02-10", "2024-12-31") == 41
    assert a.late_payments == 1
    assert a.payments == 2 and a.paid_amount == 250
    assert a.days_since_last_payment == days("2025-03-31", "2025-03-05")
    assert a.contact_attempts == 4 and a.right_party_contacts == 3
    # k2 (150 by 02-12) kept by p1; k8 (200 between 03-25 and 03-28) broken
    assert a.promises_due == 2 and a.broken_promises == 1
    assert a.has_valid_phone and a.has_valid_email
    assert a.score == 620 and D(a.score_at) == D("2025-03-31")  # the April score is later
    assert a.tenure_days == days("2025-03-31", "2020-01-01") and not a.is_new


def test_customer_b_new_partial_payment_and_superseded_promise(snap):
    b = snap.loc["B"]
    # p3 pays 400 of B1 (1000); p4 (2025-04-05) is after as_of and ignored
    assert b.balance == 600 and b.overdue_balance == 600 and b.current_balance == 0
    assert b.max_days_past_due == days("2025-03-31", "2025-03-01") == 30
    assert b.dpd_bucket == "1-30"
    assert (
        b.settled_receivables == 0 and pd.isna(b.avg_payment_term_days) and pd.isna(b.avg_days_late)
    )
    assert b.payments == 1 and b.paid_amount == 400
    assert b.days_since_last_payment == 11
    assert b.contact_attempts == 3 and b.right_party_contacts == 2
    # k9 (due 03-15) is superseded by k4 made on 03-10; k4 (500) got only 400 -> broken
    assert b.promises_due == 1 and b.broken_promises == 1
    assert not b.has_valid_phone and not b.has_valid_email  # null phone, e-mail without @
    assert pd.isna(b.score)
    assert b.tenure_days == 44 and b.is_new
    assert b.open_dispute and pd.isna(b.industry)


def test_customer_c_write_off_credit_and_future_events(snap):
    c = snap.loc["C"]
    # C1: 500 - 100 paid - 400 written off = 0; C2 is issued after as_of
    assert c.balance == 0 and c.overdue_balance == 0 and c.open_receivables == 0
    assert c.max_days_past_due == 0 and c.dpd_bucket == "current"
    assert c.credit_balance == 30  # p6 found nothing open
    assert c.settled_receivables == 0  # a write-off is not a settlement
    assert c.payments == 1 and c.paid_amount == 30
    assert c.days_since_last_payment == 16
    assert c.contact_attempts == 1  # k7 is after as_of
    assert c.promises_due == 0  # k6 falls due after as_of
    assert not c.has_valid_phone and not c.has_valid_email
    assert c.score == 450


def test_later_as_of_sees_later_payment(tiny):
    later = snapshot(tiny, "2025-04-30").set_index("customer_id")
    assert later.loc["B", "balance"] == 0  # p4 settles B1
    assert later.loc["B", "settled_receivables"] == 1
    assert later.loc["B", "avg_days_late"] == days("2025-04-05", "2025-03-01")
    assert "D" not in later.index


def test_ibis_input_gives_ibis_output(tiny):
    tables = {k: ibis.memtable(v) for k, v in tiny.items()}
    out = snapshot(tables, AS_OF)
    assert isinstance(out, ibis.expr.types.Table)
    assert out.count().execute() == 3


def test_reversal_adds_back(tiny):
    tiny["adjustments"] = pd.concat(
        [
            tiny["adjustments"],
            pd.DataFrame(
                {"adjustment_id": ["a2"], "receivable_id": ["B1"], "customer_id": ["B"],
                 "at": [D("2025-03-25")], "kind": ["reversal"], "amount": [400.0]}
            ).astype({"at": "datetime64[s]"}),
        ]
    )  # fmt: skip
    b = snapshot(tiny, AS_OF).set_index("customer_id").loc["B"]
    assert b.balance == 1000  # the 400 payment bounced


# ------------------------------------------------------------ independent recomputation


def _grouped(frame: pd.DataFrame, key: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for row in frame.itertuples(index=False):
        out.setdefault(getattr(row, key), []).append(row)
    return out


def _missing(v) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def reference_snapshot(
    t: dict[str, pd.DataFrame], as_of: pd.Timestamp, months: int = 6
) -> pd.DataFrame:
    """A deliberately plain, sequential re-implementation of the snapshot definitions."""
    start = as_of - pd.DateOffset(months=months)
    cust = t["customers"][t["customers"].customer_since <= as_of]
    rec_by = _grouped(t["receivables"][t["receivables"].issued_at <= as_of], "customer_id")
    pay_by = _grouped(t["payments"][t["payments"].paid_at <= as_of], "customer_id")
    adj_by_rec = _grouped(t["adjustments"][t["adjustments"]["at"] <= as_of], "receivable_id")
    ct_by = _grouped(t["contacts"][t["contacts"]["at"] <= as_of], "customer_id")
    sc_by = _grouped(t["scores"][t["scores"].scored_at <= as_of], "customer_id")
    rows = []
    for c in cust.itertuples(index=False):
        recs = sorted(
            rec_by.get(c.customer_id, []), key=lambda x: (x.due_at, x.issued_at, x.receivable_id)
        )
        pays = pay_by.get(c.customer_id, [])
        items = []
        pool_events = []
        for x in recs:
            net, wo = 0.0, False
            for y in adj_by_rec.get(x.receivable_id, []):
                net += -y.amount if y.kind == "reversal" else y.amount
                wo = wo or y.kind == "write_off"
            linked = [y for y in pays if y.receivable_id == x.receivable_id]
            lp = sum(y.amount for y in linked)
            last = max((y.paid_at for y in linked), default=None)
            after = max(x.amount - net, 0.0)
            residual = max(after - lp, 0.0)
            if lp > after:
                pool_events.append((last, x.receivable_id, lp - after))
            items.append(dict(rid=x.receivable_id, issued=x.issued_at, due=x.due_at, residual=residual,
                              balance=residual, wo=wo, lp=lp, last=last, settled=None))  # fmt: skip
        for y in pays:
            if _missing(y.receivable_id):
                pool_events.append((y.paid_at, y.payment_id, y.amount))
        pool_events.sort()
        credit = 0.0
        for when, _tie, money in pool_events:  # pay oldest due first, event by event
            for it in items:
                if money <= 0:
                    break
                take = min(money, it["balance"])
                if take > 0:
                    it["balance"] -= take
                    money -= take
                    if it["balance"] <= 0.005:
                        it["balance"] = 0.0
                        it["settled"] = when
            credit += money
        for it in items:
            if it["wo"]:
                it["settled"] = None
            elif it["residual"] <= 0 and it["lp"] > 0:
                it["settled"] = it["last"]
            if it["settled"] is not None and it["settled"] < it["issued"]:
                it["settled"] = it["issued"]
        open_ = [it for it in items if it["balance"] > 0]
        overdue = [it for it in open_ if (as_of - it["due"]).days > 0]
        ob = sum(it["balance"] for it in overdue)
        maxdpd = max([(as_of - it["due"]).days for it in overdue], default=0)
        wdpd = (
            sum(it["balance"] * (as_of - it["due"]).days for it in overdue) / ob if ob > 0 else 0.0
        )
        bucket = next(label for label, up in DPD_BUCKETS if up is None or maxdpd <= up)
        settled = [
            it for it in items if it["settled"] is not None and start < it["settled"] <= as_of
        ]
        in_window = [y for y in pays if y.paid_at > start]
        contacts = ct_by.get(c.customer_id, [])
        recent = [k for k in contacts if k.at > start]
        # promises: due in the window, not superseded by the next promise made before due
        promises = sorted(
            (k for k in contacts if k.outcome == "promise"), key=lambda k: (k.at, k.contact_id)
        )
        due_n = broken = 0
        for i, q in enumerate(promises):
            if not (start < q.promise_due <= as_of):
                continue
            if i + 1 < len(promises) and promises[i + 1].at <= q.promise_due:
                continue
            due_n += 1
            got = sum(y.amount for y in pays if q.at <= y.paid_at <= q.promise_due)
            kept = got > 0 if _missing(q.promise_amount) else got >= q.promise_amount * 0.99
            broken += not kept
        scores = sorted(sc_by.get(c.customer_id, []), key=lambda k: (k.scored_at, k.score))
        phone = c.phone if isinstance(c.phone, str) else None
        email = c.email if isinstance(c.email, str) else None
        rows.append(
            {
                "customer_id": c.customer_id,
                "tenure_days": (as_of - c.customer_since).days,
                "balance": sum(it["balance"] for it in items),
                "overdue_balance": ob,
                "credit_balance": credit,
                "open_receivables": len(open_),
                "overdue_receivables": len(overdue),
                "max_days_past_due": maxdpd,
                "weighted_days_past_due": wdpd,
                "dpd_bucket": bucket,
                "settled_receivables": len(settled),
                "avg_payment_term_days": np.mean([(it["settled"] - it["issued"]).days for it in settled]) if settled else np.nan,
                "avg_days_late": np.mean([(it["settled"] - it["due"]).days for it in settled]) if settled else np.nan,
                "late_payments": sum(it["settled"] > it["due"] for it in settled),
                "payments": len(in_window),
                "paid_amount": sum(y.amount for y in in_window),
                "days_since_last_payment": (as_of - max(y.paid_at for y in pays)).days if pays else np.nan,
                "contact_attempts": len(recent),
                "right_party_contacts": sum(k.outcome in ("right_party", "promise", "refused") for k in recent),
                "promises_due": due_n,
                "broken_promises": broken,
                "has_valid_phone": bool(phone and re.fullmatch(r"\+?\d{8,15}", re.sub(r"[\s\-().]", "", phone))),
                "has_valid_email": bool(email and re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", email)),
                "score": scores[-1].score if scores else np.nan,
            }
        )  # fmt: skip
    return pd.DataFrame(rows).set_index("customer_id").sort_index()


def test_tiny_matches_reference(tiny):
    ref = reference_snapshot(tiny, AS_OF)
    got = snapshot(tiny, AS_OF).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(got[ref.columns], ref, check_dtype=False)


@pytest.mark.parametrize("as_of", ["2026-10-31", "2026-04-30"])
def test_sample_matches_independent_recomputation(frames, as_of):
    tables = frames
    ref = reference_snapshot(tables, D(as_of))
    got = snapshot(tables, as_of).set_index("customer_id").sort_index()
    assert len(got) == len(ref) > 1000
    assert got.index.equals(ref.index)
    for col in ref.columns:
        if ref[col].dtype.kind in "fc" or got[col].dtype.kind == "f":
            np.testing.assert_allclose(
                got[col].astype(float), ref[col].astype(float), rtol=1e-9, atol=1e-6, err_msg=col
            )
        else:
            assert (got[col].astype(str) == ref[col].astype(str)).all(), col
    # the sample exercises every path of the allocation
    assert got.balance.sum() > 0 and (got.dpd_bucket != "current").sum() > 100
    assert got.settled_receivables.sum() > 1000 and math.isfinite(got.avg_days_late.mean())


def test_payer_tiers_follow_the_settlement_history(frames):
    from collect_kit.snapshot import PayerTiers

    as_of = "2026-09-30"
    got = snapshot(frames, as_of).set_index("customer_id")
    # the 24-month behaviour columns, computed with a 24-month lookback
    wide = snapshot(frames, as_of, lookback_months=24).set_index("customer_id")
    n, days = wide.settled_receivables, wide.avg_days_late
    expected = np.select(
        [n < 5, days <= 0, days <= 3, days <= 7, days <= 14],
        ["not_enough_history", "before_due", "1-3", "4-7", "8-14"],
        "15+",
    )
    pd.testing.assert_series_equal(
        got.payer_tier, pd.Series(expected, index=wide.index), check_names=False,
        check_dtype=False,
    )  # fmt: skip
    assert got.payer_tier.nunique() >= 4
    tiers = PayerTiers(edges=(2, 10), min_events=3, window_months=12)
    assert tiers.labels == ("up_to_2", "3-10", "11+", "not_enough_history")
    custom = snapshot(frames, as_of, payer_tiers=tiers).set_index("customer_id")
    year = snapshot(frames, as_of, lookback_months=12).set_index("customer_id")
    n, days = year.settled_receivables, year.avg_days_late
    expected = np.select(
        [n < 3, days <= 2, days <= 10], ["not_enough_history", "up_to_2", "3-10"], "11+"
    )
    assert (custom.payer_tier.to_numpy() == expected).all()


def test_main_product_is_the_balance_weighted_mode(frames):
    import ibis

    from collect_kit.snapshot import allocate

    as_of = pd.Timestamp("2026-09-30")
    got = snapshot(frames, as_of).set_index("customer_id").main_product
    b = allocate(*(ibis.memtable(frames[n]) for n in ("receivables", "payments", "adjustments")),
                 as_of).balances().to_pandas()  # fmt: skip
    b = b.merge(frames["receivables"][["receivable_id", "product"]], on="receivable_id")
    b = b[b.balance > 0]
    w = b.groupby(["customer_id", "product"]).agg(w=("balance", "sum"), due=("due_at", "min"))
    w = w.reset_index().sort_values(["customer_id", "w", "due", "product"],
                                    ascending=[True, False, True, True])  # fmt: skip
    expected = w.drop_duplicates("customer_id").set_index("customer_id")["product"]
    owing = got.dropna()
    assert set(owing.index) == set(expected.index)
    assert (owing.sort_index() == expected.sort_index()).all()
    assert owing.nunique() > 1


def test_a_kept_allocation_is_the_allocation(sample_db):
    """The allocation kept for a date (read by the snapshot, the settlements and the
    aging) gives the same balances and settlement dates as the expression, and a month's
    balances read it only once it is kept."""
    from collect_kit import engine, sources
    from collect_kit.demo import sample_config
    from collect_kit.snapshot import allocate, allocated, balances_at

    portfolio = sources.load(sample_config(), database=sample_db)
    t = portfolio.tables
    events = [t["receivables"], t["payments"], t["adjustments"]]
    as_of = pd.Timestamp("2026-08-31")
    engine.release_shared()
    assert engine.kept("allocation", as_of, events) is None
    lazy = balances_at(*events, as_of)
    assert not reads_cached(lazy)
    kept = allocated(*events, as_of)
    assert engine.kept("allocation", as_of, events) is not None
    assert reads_cached(balances_at(*events, as_of))
    plain = allocate(*events, as_of)
    for got, want in ((kept.settlements(), plain.settlements()), (kept.events, plain.events),
                      (kept.credit(), plain.credit())):  # fmt: skip
        key = [c for c in ("receivable_id", "customer_id", "at", "tiebreak") if c in got.columns]
        a = got.to_pandas().sort_values(key, ignore_index=True)
        b = want.to_pandas().sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(a, b)
    assert kept.settlements().settled_at.notnull().sum().to_pyarrow().as_py() > 1000
    del kept, got  # the kept table is dropped before its connection closes
    portfolio.close()


def reads_cached(expr) -> bool:
    """Whether ``expr`` reads a table Ibis cached (``Table.cache``)."""
    from ibis.expr import operations as ops

    return any(t.name.startswith("ibis_cached") for t in expr.op().find(ops.DatabaseTable))


def _same_rows(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    got = got.sort_values(keys, ignore_index=True)[list(want.columns)]
    want = want.sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def _events_and_dates(source: str, frames: list, sample_db) -> tuple[list, list[str]]:
    """The receivables, payments and adjustments of a hand-made book (``frames``, with
    dates as the canonical tables have them) or of the sample (``source`` "sample"), and
    four month ends for each (one given twice for the sample)."""
    import ibis

    from collect_kit import sources
    from collect_kit.demo import sample_config

    if source == "tiny":
        events = [ibis.memtable(f) for f in frames]
        events = [
            e.mutate(**{c: e[c].date() for c, k in e.schema().items() if k.is_timestamp()})
            for e in events
        ]
        return events, ["2025-03-31", "2025-01-31", "2025-02-28", "2025-04-30"]
    portfolio = sources.load(sample_config(), database=sample_db)
    events = [portfolio.tables[n] for n in ("receivables", "payments", "adjustments")]
    return events, ["2026-10-31", "2025-12-31", "2026-05-31", "2026-05-31"]


@pytest.mark.parametrize("source", ["tiny", "sample"])
def test_overdue_balances_of_several_dates_sum_the_allocated_receivables(source, tiny, sample_db):
    """overdue_each (sums per customer, no allocation receivable by receivable) gives for
    each date (in any order) the overdue balance that the allocation of that date alone leaves on the
    receivables due before it, summed per customer in pandas; every customer with a
    receivable issued by then has a row (hand-made book: FIFO, a partial payment, a
    write-off, a credit beyond all balances, payments on account; the sample)."""

    from collect_kit.snapshot import allocate, overdue_each

    frames = [tiny[n] for n in ("receivables", "payments", "adjustments")]
    events, dates = _events_and_dates(source, frames, sample_db)
    together = overdue_each(*events, dates).to_pandas()
    days = sorted({pd.Timestamp(d) for d in dates})
    assert [c for c in together.columns if c.startswith("_overdue")] == [
        f"_overdue{k}" for k in range(len(days))
    ]
    receivables = events[0].to_pandas()
    seen = []
    for k, day in enumerate(days):
        got = together[together._first_issued <= day].set_index("customer_id")[f"_overdue{k}"]
        rows = allocate(*events, day).receivables.to_pandas()
        overdue = rows[rows.due_at < day]
        want = overdue.groupby("customer_id").balance.sum()
        present = receivables[receivables.issued_at <= day].customer_id.unique()
        want = want.reindex(present, fill_value=0.0)
        assert sorted(got.index) == sorted(want.index) and len(want) > 0
        assert np.allclose(got.sort_index(), want.sort_index(), rtol=1e-12, atol=1e-9)
        partly_paid = (overdue.balance > 0) & (overdue.balance < overdue.residual)
        seen.append([want.gt(0).any(), want.eq(0).any(), partly_paid.any()])
    # owing and settled customers, and a receivable partly paid by the pool, do occur
    assert np.any(seen, axis=0).tolist() == [True, True, True]
    with pytest.raises(InvalidParameterError, match="dates"):
        overdue_each(*events, [])


@pytest.mark.parametrize("source", ["tiny", "sample"])
def test_an_allocation_of_several_dates_is_each_dates_allocation(source, tiny, sample_db):
    """allocate_each gives, for each date, row for row the allocation of that date alone,
    in any order of the dates (hand-made book: FIFO, a write-off, a credit, payments
    after a date, a linked overpayment whose excess joins the pool, a reversal between
    two dates; the 2 000-customer sample)."""
    import ibis

    from collect_kit.snapshot import allocate, allocate_each

    if source == "tiny":
        pay = pd.concat(
            [
                tiny["payments"],
                pd.DataFrame(
                    {
                        "payment_id": ["p7"],
                        "customer_id": ["A"],
                        "receivable_id": ["A1"],
                        "paid_at": [pd.Timestamp("2025-01-20")],
                        "amount": [130.0],
                    }
                ),
            ],
            ignore_index=True,
        )
        adj = pd.concat(
            [
                tiny["adjustments"],
                pd.DataFrame(
                    {
                        "adjustment_id": ["a2", "a3"],
                        "receivable_id": ["A2", "B1"],
                        "customer_id": ["A", "B"],
                        "at": pd.to_datetime(["2025-02-01", "2025-03-25"]),
                        "kind": ["discount", "reversal"],
                        "amount": [20.0, 50.0],
                    }
                ),
            ],
            ignore_index=True,
        )
        pay["paid_at"] = pay.paid_at.astype("datetime64[s]")
        adj["at"] = adj["at"].astype("datetime64[s]")
    else:
        pay = adj = None
    events, dates = _events_and_dates(source, [tiny["receivables"], pay, adj], sample_db)
    together = allocate_each(*events, dates).receivables.to_pandas()
    assert sorted(together.as_of.unique()) == sorted({pd.Timestamp(d) for d in dates})
    for day in sorted(set(dates)):
        got = together[together.as_of == pd.Timestamp(day)].drop(columns="as_of")
        want = allocate(*events, day).receivables.to_pandas()
        assert len(got) == len(want) > 0
        got = got.sort_values("receivable_id", ignore_index=True)[list(want.columns)]
        want = want.sort_values("receivable_id", ignore_index=True)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
        assert want.balance.gt(0).any()
    if source == "tiny":  # the cases the book was made for happen
        assert together.excess.gt(0).any() and together.written_off.any()
    # the settlements too: pool and running sums per customer and date
    settled = allocate_each(*events, dates).settlements().to_pandas()
    for day in sorted(set(dates)):
        got = settled[settled.as_of == pd.Timestamp(day)].drop(columns="as_of")
        want = allocate(*events, day).settlements().to_pandas()
        got = got.sort_values("receivable_id", ignore_index=True)[list(want.columns)]
        want = want.sort_values("receivable_id", ignore_index=True)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
        paid = want[want.settled_at.notna()]
        assert (paid.settled_at != paid.issued_at).any()
    by_pool = settled[(settled.residual > 0) & settled.settled_at.notna()]
    assert len(by_pool) > 0  # receivables closed by pool money have their dates
    # only those settled since a date (a month's start, here from each row's as_of):
    # the same rows as all of them filtered afterwards
    starts = settled.as_of.dt.to_period("M").dt.start_time
    recent = settled[settled.settled_at >= starts]
    since = allocate_each(*events, dates).settlements(since=lambda r: r.as_of.truncate("M"))
    _same_rows(since.to_pandas(), recent, ["as_of", "receivable_id"])
    assert len(recent) > 0 and len(recent) < settled.settled_at.notna().sum()
    day = sorted(dates)[1]
    whole = allocate(*events, day).settlements().to_pandas()
    start = pd.Timestamp(day).to_period("M").start_time
    recent = whole[whole.settled_at >= start]
    since = allocate(*events, day).settlements(since=ibis.date(start.date())).to_pandas()
    _same_rows(since, recent, ["receivable_id"])
    assert 0 < len(recent) < whole.settled_at.notna().sum()
    with pytest.raises(InvalidParameterError, match="dates"):
        allocate_each(*events, [])
