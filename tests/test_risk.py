"""Risk: discrimination against scipy, the Logit against statsmodels, scoring, calibration."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from collect_kit import risk, synth
from collect_kit.errors import InvalidParameterError
from collect_kit.snapshot import snapshot

from .test_snapshot import reference_snapshot


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_ks_against_scipy(seed):
    rng = np.random.default_rng(seed)
    score = np.round(rng.normal(size=500), 1)  # rounding makes ties
    event = rng.random(500) < 1 / (1 + np.exp(-score))
    u = stats.mannwhitneyu(score[event], score[~event]).statistic
    assert risk.auc(score, event) == pytest.approx(u / (event.sum() * (~event).sum()), rel=1e-12)
    assert risk.ks(score, event) == pytest.approx(
        stats.ks_2samp(score[event], score[~event]).statistic, rel=1e-12
    )
    d = risk.discrimination(score, event)
    assert d.gini == pytest.approx(2 * d.auc - 1)
    assert np.isnan(risk.auc(score, np.zeros(500, bool)))


@pytest.mark.parametrize("seed", [0, 1])
def test_discrimination_on_the_engine_against_scipy(seed):
    rng = np.random.default_rng(seed)
    score = np.round(rng.normal(size=3_000), 1)  # ties
    paid = (rng.random(3_000) < 1 / (1 + np.exp(-score))).astype(float)
    score[:7] = np.nan  # left out, as a customer without a bureau score
    frame = pd.DataFrame({"customer_id": np.arange(3_000), "s": score, "paid": paid})
    d = risk.discrimination_on(ibis.memtable(frame), "s")
    ok = ~np.isnan(score)
    event = paid[ok] == 1
    u = stats.mannwhitneyu(score[ok][event], score[ok][~event]).statistic
    assert d.auc == pytest.approx(u / (event.sum() * (~event).sum()), rel=1e-12)
    assert d.ks == pytest.approx(
        stats.ks_2samp(score[ok][event], score[ok][~event]).statistic, rel=1e-12
    )
    assert d.n == ok.sum() and d.payer_rate == pytest.approx(event.mean())
    none_paid = risk.discrimination_on(ibis.memtable(frame.assign(paid=0.0)), "s")
    assert np.isnan(none_paid.auc) and none_paid.payer_rate == 0


def test_quantile_bands_match_pandas_qcut_of_ranks():
    rng = np.random.default_rng(9)
    n = 1_003
    frame = pd.DataFrame({"customer_id": rng.permutation(n), "balance": 1.0,
                          "p_pay": np.round(rng.uniform(size=n), 2)})  # fmt: skip
    got = risk.bands(frame, n_bands=7)
    ranked = frame.sort_values(["p_pay", "customer_id"], ignore_index=True)
    expected = pd.qcut(np.arange(1, n + 1), 7, labels=False) + 1
    sizes = pd.Series(expected).value_counts().sort_index()
    assert got.customers.tolist() == sizes.tolist()
    maxima = ranked.groupby(expected).p_pay.max()
    assert got.score_max.tolist() == maxima.tolist()


def pandas_design(ref: pd.DataFrame, frames, as_of: pd.Timestamp) -> pd.DataFrame:
    """The documented features, built in plain pandas from the reference snapshot."""
    r = ref[ref.balance > 0].copy()
    x = pd.DataFrame(index=r.index)
    x["log_balance"] = np.log1p(r.balance)
    x["log_overdue_balance"] = np.log1p(r.overdue_balance)
    x["overdue_share"] = r.overdue_balance / r.balance
    x["dpd_months"] = np.minimum(r.max_days_past_due / 30.0, 24.0)
    x["late_payments"] = np.minimum(r.late_payments, 12)
    x["broken_promises"] = np.minimum(r.broken_promises, 5)
    x["payments_6m"] = np.minimum(r.payments, 12)
    x["recency_months"] = np.minimum(r.days_since_last_payment.fillna(360) / 30.0, 12.0)
    x["never_paid"] = r.days_since_last_payment.isna().astype(float)
    x["right_party_contacts"] = np.minimum(r.right_party_contacts, 10)
    x["valid_phone"] = r.has_valid_phone.astype(float)
    c = frames["customers"].set_index("customer_id").loc[r.index]
    x["is_new"] = (r.tenure_days < 90).astype(float)
    x["company"] = (c.customer_type == "company").astype(float)
    x["score_z"] = ((r.score - 650.0) / 100.0).fillna(0.0)
    x["no_score"] = r.score.isna().astype(float)
    pay = frames["payments"]
    window = pay[(pay.paid_at > as_of) & (pay.paid_at <= as_of + pd.Timedelta(days=30))]
    x["paid"] = x.index.isin(window.customer_id).astype(float)
    return x.astype(float)


def test_logit_matches_statsmodels_on_a_pandas_design_and_engine_scoring_matches_predict(
    frames, small_sample
):
    t0, t1 = risk.training_dates("2026-10-31")
    x = pandas_design(reference_snapshot(frames, t0), frames, t0)
    names = list(risk.FEATURES)
    ref = sm.Logit(x["paid"], sm.add_constant(x[names], has_constant="add")).fit(
        disp=0, maxiter=200
    )
    snap0 = snapshot(small_sample.tables, t0).to_pandas()
    model = risk.fit(snap0, frames["payments"], t0)
    assert model.rows == len(x)
    np.testing.assert_allclose(
        model.coefficients[["const", *names]].to_numpy(),
        ref.params[["const", *names]].to_numpy(),
        rtol=1e-6,
        atol=1e-8,
    )
    # scoring compiled into the engine equals statsmodels' predict on the next snapshot
    snap1 = snapshot(small_sample.tables, t1).to_pandas()
    scored = model.score(snap1).set_index("customer_id")
    x1 = pandas_design(reference_snapshot(frames, t1), frames, t1)
    predicted = model.result.predict(sm.add_constant(x1[names], has_constant="add"))
    np.testing.assert_allclose(
        scored.loc[x1.index, "p_pay"].to_numpy(), predicted.to_numpy(), rtol=0, atol=1e-9
    )


def test_a_fit_above_max_rows_uses_the_hash_sample_drawn_on_the_engine(frames, small_sample):
    """The fit pulls only the customers whose salted-MD5 bucket (Python's hashlib here) is
    below max_rows / owing, and equals statsmodels on exactly those rows."""
    from collect_kit.hashing import hash_bucket

    t0, _ = risk.training_dates("2026-10-31")
    x = pandas_design(reference_snapshot(frames, t0), frames, t0)
    cap = 400
    share = cap / len(x)
    chosen = x[[hash_bucket(c, "risk-3") < share for c in x.index]]
    assert 300 < len(chosen) < 500
    names = list(risk.FEATURES)
    ref = sm.Logit(chosen["paid"], sm.add_constant(chosen[names], has_constant="add")).fit(
        disp=0, maxiter=200
    )
    model = risk.fit(
        snapshot(small_sample.tables, t0), frames["payments"], t0, max_rows=cap, seed=3
    )
    assert model.rows == len(chosen)
    kept = [c for c in ["const", *names] if c in model.coefficients.index]
    np.testing.assert_allclose(
        model.coefficients[kept].to_numpy(), ref.params[kept].to_numpy(), rtol=1e-5, atol=1e-7
    )


def test_the_model_recovers_the_truth():
    """Out-of-time AUC near the oracle's and above the bureau score's (60 000 customers)."""
    s = synth.generate(60_000, seed=5)
    t0, t1 = risk.training_dates(s.extraction_date)
    pay = s.frame("payments")
    model = risk.fit(snapshot(s.tables, t0).to_pandas(), pay, t0)
    snap1 = snapshot(s.tables, t1).to_pandas()
    out = risk.outcomes(model.score(snap1), pay, t1).merge(
        snap1[["customer_id", "score"]], on="customer_id"
    )
    out = out.merge(s.truth.customers, on="customer_id")
    model_auc = risk.auc(out.p_pay, out.paid)
    oracle_auc = risk.auc(out.propensity, out.paid)  # the generator's ground-truth propensity
    known = out.dropna(subset=["score"])
    bureau_auc = risk.auc(risk.external_score(known, "safer"), known.paid)
    # measured: model 0.802, oracle 0.818, bureau 0.751 (noise sd 0.6 persistent + 0.4 monthly)
    assert abs(model_auc - oracle_auc) < 0.03
    assert model_auc >= bureau_auc + 0.02


def test_bands_calibration_and_expected_loss():
    rng = np.random.default_rng(4)
    n = 20_000
    p = rng.uniform(0.05, 0.95, n)
    frame = pd.DataFrame(
        {
            "p_pay": p,
            "balance": rng.uniform(100, 1000, n),
            "paid": (rng.random(n) < p).astype(float),
        }
    )
    b = risk.bands(frame, n_bands=5, lgd=0.5)
    assert b.customers.sum() == n and (b.customers == n // 5).all()
    assert b.expected_loss.sum() == pytest.approx(((1 - p) * frame.balance * 0.5).sum())
    assert (b.horizon_days == 30).all()
    assert b.predicted_payer_rate.is_monotonic_increasing
    assert set(b.traffic_light) <= {"green", "yellow"}  # a calibrated score
    off = frame.assign(p_pay=np.clip(frame.p_pay + 0.2, 0, 0.99))
    assert "red" in set(risk.bands(off, n_bands=5).traffic_light)
    fixed = risk.bands(frame, cutoffs=[0.3, 0.6])
    assert len(fixed) == 3 and fixed.customers.sum() == n
    with pytest.raises(ValueError, match="lgd"):
        risk.bands(frame, lgd=1.5)


def test_binomial_light_against_scipy():
    n, rate = 1000, 0.3
    lo95, hi95 = stats.binom.interval(0.95, n, rate)
    lo999, hi999 = stats.binom.interval(0.999, n, rate)
    assert risk.binomial_light(int(hi95), n, rate) == "green"
    assert risk.binomial_light(int(hi95) + 1, n, rate) in ("yellow", "red")
    assert risk.binomial_light(int(hi999) + 1, n, rate) == "red"
    assert risk.binomial_light(int(lo999) - 1, n, rate) == "red"
    assert risk.binomial_light(0, 0, rate) == "n/a"


def test_score_psi_and_orientation():
    rng = np.random.default_rng(2)
    a = rng.normal(size=10_000)
    psi, reading, table = risk.score_psi(a, a)
    assert psi == pytest.approx(0.0) and reading == "stable" and len(table) == 10
    psi, reading, _ = risk.score_psi(a, a + 0.5)
    assert psi > 0.1
    snap = pd.DataFrame({"score": [500.0, 700.0]})
    assert risk.external_score(snap, "riskier").tolist() == [-500.0, -700.0]
    with pytest.raises(ValueError, match="higher_is"):
        risk.external_score(snap, None)


def test_training_dates_leave_complete_labels():
    t0, t1 = risk.training_dates("2026-10-31")
    assert (t0, t1) == (pd.Timestamp("2026-08-31"), pd.Timestamp("2026-09-30"))
    t0, t1 = risk.training_dates("2026-03-15", horizon_days=60)
    assert (
        t1 + pd.Timedelta(days=60) <= pd.Timestamp("2026-03-15")
        and t0 + pd.Timedelta(days=60) <= t1
    )


def test_score_distribution_by_segment():
    frame = pd.DataFrame(
        {"segment": ["a"] * 5 + ["b"] * 5, "p": [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9]}
    )
    d = risk.score_distribution(frame, "p", "segment").set_index("segment")
    assert d.loc["a", "customers"] == 5 and d.loc["a", "p50"] == pytest.approx(0.3)
    assert d.loc["b", "mean"] == pytest.approx(0.7) and d.loc["b", "p90"] == pytest.approx(
        np.quantile([0.5, 0.6, 0.7, 0.8, 0.9], 0.9)
    )


# ------------------------------------------------------------------ robust fitting


def _irls(X: np.ndarray, y: np.ndarray, ridge: np.ndarray | None = None) -> np.ndarray:
    """Newton-Raphson (IRLS) for the Logit, written here independently of the package:
    minimises sum log-loss + 1/2 b' diag(ridge) b."""
    b = np.zeros(X.shape[1])
    ridge = np.zeros(X.shape[1]) if ridge is None else ridge
    for _ in range(100):
        p = 1 / (1 + np.exp(-X @ b))
        grad = X.T @ (p - y) + ridge * b
        hess = X.T @ (X * (p * (1 - p))[:, None]) + np.diag(ridge)
        step = np.linalg.solve(hess, grad)
        b -= step
        if np.max(np.abs(step)) < 1e-13:
            break
    return b


@pytest.fixture(scope="module")
def awkward(small_sample):
    """The sample's snapshot with columns of its own: a useful one, a constant, an
    all-null one, one collinear with two others, and a text column."""
    t0, _ = risk.training_dates("2026-10-31")
    snap = snapshot(small_sample.tables, t0).to_pandas()
    rng = np.random.default_rng(3)
    n = len(snap)
    snap["limit_k"] = rng.gamma(2.0, 3.0, n)
    snap["tenure_y"] = snap.tenure_days / 365.0
    snap["flat"] = 7.0
    snap["blank"] = pd.Series([None] * n, dtype="float64")
    snap["combo"] = 2 * snap.limit_k - 3 * snap.tenure_y + 1  # a linear combination
    snap["band"] = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    return snap, t0


def test_fit_drops_exactly_the_constant_null_and_collinear_columns(awkward, frames):
    snap, t0 = awkward
    features = ["dpd_months", "limit_k", "tenure_y", "flat", "blank", "combo", "band"]
    model = risk.fit(snap, frames["payments"], t0, features=features)
    assert set(model.dropped) == {"flat", "blank", "combo"}
    assert model.dropped["flat"].startswith("constant")
    assert model.dropped["blank"].startswith("all null")
    assert model.dropped["combo"] == "collinear with limit_k, tenure_y"
    assert model.features == ["dpd_months", "limit_k", "tenure_y", "band=b", "band=c"]
    assert any(line.startswith("dropped combo") for line in model.notes)


def test_coefficients_equal_an_independent_irls_fit(awkward, frames):
    snap, t0 = awkward
    features = ["dpd_months", "log_balance", {"column": "limit_k", "transform": "log"}, "band"]
    model = risk.fit(snap, frames["payments"], t0, features=features)
    # the same design built by hand in pandas
    owing = snap[snap.balance > 0].sort_values("customer_id")
    X = pd.DataFrame(
        {
            "const": 1.0,
            "dpd_months": np.minimum(owing.max_days_past_due / 30.0, 24.0),
            "log_balance": np.log1p(owing.balance),
            "log_limit_k": np.log1p(owing.limit_k),
            "band=b": (owing.band == "b").astype(float),
            "band=c": (owing.band == "c").astype(float),
        }
    )
    pay = frames["payments"]
    window = pay[(pay.paid_at > t0) & (pay.paid_at <= t0 + pd.Timedelta(days=30))]
    y = owing.customer_id.isin(window.customer_id).astype(float).to_numpy()
    expected = _irls(X.to_numpy(), y)
    np.testing.assert_allclose(model.coefficients[X.columns].to_numpy(), expected, rtol=1e-6)
    # the penalised fit: mean log-loss + penalty/2 |b|^2 on standardised columns
    lam = 0.05
    Z = X.copy()
    cols = X.columns[1:]
    Z[cols] = (X[cols] - X[cols].mean()) / X[cols].std(ddof=0)
    b = _irls(Z.to_numpy(), y, np.r_[0.0, np.full(len(cols), lam * len(y))])
    slopes = b[1:] / X[cols].std(ddof=0).to_numpy()
    ridge = risk.fit(snap, frames["payments"], t0, features=features, penalty=lam)
    assert ridge.result is None and ridge.penalty == lam
    np.testing.assert_allclose(ridge.coefficients[cols].to_numpy(), slopes, rtol=1e-5)
    const = b[0] - np.sum(slopes * X[cols].mean().to_numpy())
    assert ridge.coefficients["const"] == pytest.approx(const, rel=1e-5)


def test_fit_takes_a_pandas_snapshot_with_engine_payments(sample_db):
    """The README's pattern: a snapshot in pandas, the payments of a portfolio on DuckDB."""
    from collect_kit import sources
    from collect_kit.demo import sample_config

    portfolio = sources.load(sample_config(), database=sample_db)
    try:
        t0, t1 = risk.training_dates(portfolio.extraction_date)
        snap0 = snapshot(portfolio.tables, t0).to_pandas()
        model = risk.fit(snap0, portfolio.tables["payments"], t0)
        on_engine = risk.fit(snapshot(portfolio.tables, t0), portfolio.tables["payments"], t0)
        pd.testing.assert_series_equal(model.coefficients, on_engine.coefficients, rtol=1e-9)
        # every evaluation shows the baseline beside the model, on the same customers
        ev = risk.evaluate(model, snapshot(portfolio.tables, t1), portfolio.tables["payments"], t1)
    finally:
        portfolio.close()
    assert ev.scorer.tolist() == ["model", "baseline"]
    assert ev.feature.iloc[1] == model.baseline[0] and ev.n.nunique() == 1
    assert ev.auc.iloc[0] > ev.auc.iloc[1] > 0.5


def test_baseline_is_the_most_predictive_single_column(awkward, frames):
    snap, t0 = awkward
    model = risk.fit(snap, frames["payments"], t0)
    x = pandas_design(reference_snapshot(frames, t0), frames, t0)
    gaps = {c: abs(risk.auc(x[c], x.paid) - 0.5) for c in model.features}
    assert model.baseline[0] == max(gaps, key=gaps.get)
    sign = 1 if risk.auc(x[model.baseline[0]], x.paid) >= 0.5 else -1
    assert model.baseline[1] == sign


def test_bad_features_are_refused(awkward, frames):
    snap, t0 = awkward
    with pytest.raises(InvalidParameterError, match="'nope' is not a snapshot column"):
        risk.fit(snap, frames["payments"], t0, features=["nope"])
    with pytest.raises(InvalidParameterError, match="transform 'sqrt'"):
        risk.fit(
            snap, frames["payments"], t0, features=[{"column": "limit_k", "transform": "sqrt"}]
        )
    with pytest.raises(InvalidParameterError, match="penalty"):
        risk.fit(snap, frames["payments"], t0, penalty=-1)
