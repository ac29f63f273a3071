"""Sample generator: invariants on several seeds, and the ground truth visible in the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from collect_kit import schema, synth
from collect_kit.snapshot import snapshot

END = pd.Timestamp("2026-10-31")


@pytest.fixture(scope="module", params=[1, 2, 3])
def frames(request) -> dict[str, pd.DataFrame]:
    s = synth.generate(3_000, seed=request.param)
    return {k: s.frame(k) for k in s.tables}


def test_tables_follow_the_canonical_model(frames):
    generated = {n: s for n, s in schema.TABLES.items() if n not in synth.NOT_GENERATED}
    assert set(frames) == set(generated)
    for name, spec in generated.items():
        columns = [c for c in spec.column_names if f"{name}.{c}" not in synth.NOT_GENERATED]
        assert list(frames[name].columns) == columns, name
        assert len(frames[name]) > 0, name


def test_ids_unique_and_distinctive(frames):
    for name, spec in schema.TABLES.items():
        if name in synth.NOT_GENERATED:
            continue
        assert not frames[name].duplicated(list(spec.key)).any(), name
    c = frames["customers"]
    assert c.customer_id.str.fullmatch(r"CU\d{7}[A-Z]{2}").all()
    assert frames["receivables"].receivable_id.str.fullmatch(r"RC\d{9}").all()
    assert frames["payments"].payment_id.str.fullmatch(r"PY\d{9}").all()
    # names, phones and e-mails are long distinctive strings (a leak test can grep them)
    assert c.name.str.len().min() >= 12
    assert c.email.dropna().str.contains(r"\d{7}").all()
    assert c.phone.dropna().str.len().min() >= 7


def test_referential_integrity(frames):
    customers = set(frames["customers"].customer_id)
    receivables = set(frames["receivables"].receivable_id)
    for name in ("receivables", "payments", "adjustments", "contacts", "scores", "assignments"):
        assert set(frames[name].customer_id) <= customers, name
    assert set(frames["payments"].receivable_id.dropna()) <= receivables
    assert set(frames["adjustments"].receivable_id) <= receivables
    rec_owner = frames["receivables"].set_index("receivable_id").customer_id
    for name in ("payments", "adjustments"):
        t = frames[name].dropna(subset=["receivable_id"])
        assert (rec_owner.loc[t.receivable_id].to_numpy() == t.customer_id.to_numpy()).all(), name


def test_amounts_positive_and_never_overpaid(frames):
    for name in ("receivables", "payments", "adjustments"):
        assert (frames[name].amount > 0).all(), name
    r = frames["receivables"].set_index("receivable_id")
    paid = frames["payments"].groupby("receivable_id").amount.sum()
    adj = frames["adjustments"].groupby("receivable_id").amount.sum()
    assert (paid <= r.amount.loc[paid.index] + 1e-9).all()
    total = paid.add(adj, fill_value=0.0)
    assert (total <= r.amount.loc[total.index] + 1e-9).all()
    # and the money received covers the linked plus on-account payments overall
    assert frames["payments"].receivable_id.isna().mean() > 0.03  # payments on account exist


def test_dates_ordered(frames):
    r = frames["receivables"]
    assert (r.due_at >= r.issued_at).all()
    issued = r.set_index("receivable_id").issued_at
    p = frames["payments"].dropna(subset=["receivable_id"])
    assert (p.paid_at.to_numpy() > issued.loc[p.receivable_id].to_numpy()).all()
    first_issue = r.groupby("customer_id").issued_at.min()
    since = frames["customers"].set_index("customer_id").customer_since.loc[first_issue.index]
    assert (since <= first_issue).all()
    c = frames["contacts"]
    promises = c[c.outcome == "promise"]
    assert (promises.promise_due > promises["at"]).all() and promises.promise_amount.gt(0).all()
    assert c.loc[c.outcome != "promise", "promise_due"].isna().all()
    for name, col in [("receivables", "issued_at"), ("payments", "paid_at"), ("adjustments", "at"),
                      ("contacts", "at"), ("scores", "scored_at"), ("assignments", "assigned_at")]:  # fmt: skip
        assert (pd.to_datetime(frames[name][col]) <= END).all(), name


def test_the_data_is_varied(frames):
    c, a, ct = frames["customers"], frames["adjustments"], frames["contacts"]
    assert set(c.customer_type) == {"person", "company"}
    assert set(a.kind) == {"write_off", "discount", "credit_note"}
    assert set(ct.channel) == set(schema.CHANNELS)
    assert set(ct.outcome) == set(schema.OUTCOMES)
    # new customers arrive in every month of the data
    months = pd.to_datetime(c.customer_since).dt.to_period("M")
    window = pd.period_range(END - pd.DateOffset(months=17), END, freq="M")
    assert set(window) <= set(months)
    # partial payments: receivables with two payments
    assert (
        frames["payments"].dropna(subset=["receivable_id"]).receivable_id.value_counts() > 1
    ).any()


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = synth.generate(500, seed=5), synth.generate(500, seed=5), synth.generate(500, seed=6)
    for name in a.tables:
        assert a.tables[name].equals(b.tables[name]), name
    assert not a.tables["payments"].equals(c.tables["payments"])


def test_ground_truth_is_never_a_column():
    s = synth.generate(500, seed=5)
    columns = {c for t in s.tables.values() for c in t.column_names}
    assert not columns & {"latent_z", "propensity", "default_month", "true_lift", "designed_lift"}


@pytest.fixture(scope="module")
def big() -> synth.Sample:
    return synth.generate(100_000, seed=21)


def test_payer_rate_rises_with_true_propensity(big):
    """Customers delinquent at a month end pay more often the next month the higher their propensity."""
    tables = {k: big.tables[k] for k in ("customers", "receivables", "payments", "adjustments")}
    as_of = pd.Timestamp("2026-08-31")
    snap = snapshot(tables, as_of).to_pandas()  # Arrow in, Arrow out
    delinquent = snap[snap.overdue_balance > 0][["customer_id"]]
    pay = big.frame("payments")
    paid_at = pd.to_datetime(pay.paid_at)
    payers = set(pay.customer_id[(paid_at > as_of) & (paid_at <= as_of + pd.offsets.MonthEnd(1))])
    d = delinquent.merge(big.truth.customers, on="customer_id")
    d["paid"] = d.customer_id.isin(payers)
    d["band"] = pd.qcut(d.propensity, 5, labels=False)
    rates = d.groupby("band").paid.mean()
    assert rates.is_monotonic_increasing and rates.iloc[-1] - rates.iloc[0] > 0.3
    rho = stats.spearmanr(d.propensity, d.paid).statistic
    assert rho > 0.2


def test_score_partly_reveals_propensity(big):
    scores = big.frame("scores")
    last = scores[pd.to_datetime(scores.scored_at) == END].merge(
        big.truth.customers, on="customer_id"
    )
    r = np.corrcoef(last.score, last.latent_z)[0, 1]
    noise = np.hypot(*synth.SCORE_NOISE_SD)
    expected = 1 / np.sqrt(1 + noise**2)  # corr(z, z + e) before rounding and clipping
    assert abs(r - expected) < 0.02


def test_experiment_effects_show_up_in_raw_means(big):
    """Per segment, challenger minus champion payer rate is within 3 SE of the documented truth."""
    truth = big.truth.experiments
    assert dict(zip(truth.segment, truth.designed_lift, strict=True)) == {
        "High risk": 0.03, "Medium risk": 0.015, "Low risk": 0.0,
        "61-90": 0.03, "91-180": 0.02, "181+": 0.0,
    }  # fmt: skip
    a = big.frame("assignments")
    pay = big.frame("payments")
    paid_at = pd.to_datetime(pay.paid_at)
    checked = 0
    for row in truth.itertuples():
        window = (paid_at >= row.window_start) & (paid_at <= row.window_end)
        payers = set(pay.customer_id[window])
        g = a[(a.experiment_id == row.experiment_id) & (a.segment == row.segment)]
        paid = g.customer_id.isin(payers)
        p1, n1 = paid[g.arm == "challenger"].mean(), (g.arm == "challenger").sum()
        p0, n0 = paid[g.arm == "champion"].mean(), (g.arm == "champion").sum()
        assert (n1, n0) == (row.n_challenger, row.n_champion)
        se = np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
        assert abs((p1 - p0) - row.true_lift) < 3 * se, (row.experiment_id, row.segment)
        assert 0 <= row.true_lift <= row.designed_lift + 1e-12
        checked += 1
    assert checked == 6
    # weights as designed: 80/20 for the pilot, 50/50 for the discount offer
    share = a.groupby("experiment_id").arm.apply(lambda s: (s == "challenger").mean())
    assert abs(share["sms_call_pilot"] - 0.2) < 0.02 and abs(share["discount_offer"] - 0.5) < 0.03


def test_discount_offer_gives_discounts_in_the_window(big):
    a = big.frame("assignments")
    adj = big.frame("adjustments")
    t = big.truth.experiments.query("experiment_id == 'discount_offer'").iloc[0]
    at = pd.to_datetime(adj["at"])
    disc = set(
        adj.customer_id[(adj.kind == "discount") & (at >= t.window_start) & (at <= t.window_end)]
    )
    g = a[a.experiment_id == "discount_offer"]
    rate = g.assign(d=g.customer_id.isin(disc)).groupby("arm").d.mean()
    assert rate["challenger"] > rate["champion"] + 0.1


@pytest.mark.parametrize("kind", synth.DEFECT_KINDS)
def test_defects_are_injected_and_recorded(kind):
    s = synth.generate(500, seed=5, defects=[kind])
    ids = s.truth.defects[kind]
    assert 3 <= len(ids) <= 6
    pay = s.frame("payments")
    if kind == "negative_amounts":
        assert (pay.set_index("payment_id").amount.loc[ids] < 0).all()
    elif kind == "duplicate_ids":
        assert pay.payment_id.isin(ids).sum() == 2 * len(ids)
    elif kind == "orphan_payments":
        known = set(s.frame("customers").customer_id)
        assert not pay.set_index("payment_id").customer_id.loc[ids].isin(known).any()
    else:
        c = s.frame("customers").set_index("customer_id")
        assert (c.phone.loc[ids] == "12-34").all()


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="defects"):
        synth.generate(100, defects=["typo"])
    with pytest.raises(ValueError, match="month end"):
        synth.generate(100, end="2026-10-15")
    with pytest.raises(ValueError, match="months"):
        synth.generate(100, months=6)


def _owing_customers(sample: synth.Sample, month_ends) -> list[int]:
    """Customers with a positive balance at each month end, from raw rows: documents issued
    by then - payments by then - reducing adjustments by then (reversals add back)."""
    r, p, a = (sample.frame(t) for t in ("receivables", "payments", "adjustments"))
    sign = np.where(
        a.kind.isin(schema.REDUCING_ADJUSTMENTS), 1.0, np.where(a.kind == "reversal", -1.0, 0.0)
    )
    a = a.assign(signed=a.amount * sign)
    out = []
    for end in month_ends:
        owed = r[pd.to_datetime(r.issued_at) <= end].groupby("customer_id").amount.sum()
        paid = p[pd.to_datetime(p.paid_at) <= end].groupby("customer_id").amount.sum()
        adj = a[pd.to_datetime(a["at"]) <= end].groupby("customer_id").signed.sum()
        balance = owed.sub(paid, fill_value=0.0).sub(adj, fill_value=0.0)
        out.append(int((balance > 0.5).sum()))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_last_month_looks_like_the_others(seed):
    """Receivables are issued through the whole last month (instalments due early next
    month included): over the last 6 months each product's issued count stays within
    +-15 % of the month before, and customers owing move by less than 10 % a month."""
    sample = synth.generate(20_000, seed=seed)
    r = sample.frame("receivables")
    month = pd.to_datetime(r.issued_at).dt.to_period("M")
    counts = r.groupby([month, r["product"]]).size().unstack().sort_index().iloc[-7:]
    change = counts.pct_change().iloc[1:]
    assert (change.abs() <= 0.15).all().all(), change
    assert pd.to_datetime(r.issued_at).max() <= sample.extraction_date
    ends = pd.date_range(end=sample.extraction_date, periods=7, freq="ME")
    owing = np.array(_owing_customers(sample, ends))
    assert (np.abs(np.diff(owing) / owing[:-1]) < 0.10).all(), owing
