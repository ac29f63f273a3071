"""Foundation speed: sample generation, database build, validation and snapshot.

Usage: ``python benchmarks/bench_foundation.py [N ...]`` (default 100000 1000000 customers).

For each size it prints the seconds of each step and two ratios measured in the same run:

- ``generate+write / 120 s``: the generator's budget (1 M customers with all tables in
  under 2 minutes on a 2-core machine); below 1.0 is within budget.
- ``Ibis balances / plain SQL``: the allocation core of the snapshot (FIFO balances,
  overdue balance and maximum days past due per customer) as compiled by Ibis, against the
  same computation hand-written as one DuckDB SQL query (printed below), both materialized
  and checked equal. The full snapshot (all features) is also timed and given as a ratio
  to that baseline.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import ibis
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from collect_kit import engine, sources, synth  # noqa: E402
from collect_kit.contact_quality import _email_library, _phone_library, check_contacts
from collect_kit.demo import sample_config  # noqa: E402
from collect_kit.snapshot import allocate, snapshot  # noqa: E402

AS_OF = "2026-10-31"
BUDGET_S = 120.0

BASELINE_SQL = f"""
WITH rec AS (SELECT * FROM receivables WHERE issued_at <= DATE '{AS_OF}'),
pay AS (SELECT * FROM payments WHERE paid_at <= DATE '{AS_OF}'),
adj AS (
  SELECT receivable_id,
         sum(CASE WHEN kind IN ('write_off', 'discount', 'credit_note') THEN amount
                  WHEN kind = 'reversal' THEN -amount ELSE 0 END) AS adjusted
  FROM adjustments WHERE "at" <= DATE '{AS_OF}' GROUP BY 1),
lk AS (SELECT receivable_id, sum(amount) AS linked FROM pay WHERE receivable_id IS NOT NULL GROUP BY 1),
r AS (
  SELECT rec.customer_id, rec.receivable_id, rec.issued_at, rec.due_at,
         greatest(rec.amount - coalesce(adj.adjusted, 0), 0) AS after_adj,
         coalesce(lk.linked, 0) AS linked
  FROM rec LEFT JOIN adj USING (receivable_id) LEFT JOIN lk USING (receivable_id)),
r2 AS (SELECT *, greatest(after_adj - linked, 0) AS residual, greatest(linked - after_adj, 0) AS excess FROM r),
pool AS (
  SELECT customer_id, sum(amount) AS pool FROM (
    SELECT customer_id, amount FROM pay WHERE receivable_id IS NULL
    UNION ALL SELECT customer_id, excess FROM r2 WHERE excess > 0) GROUP BY 1),
r3 AS (
  SELECT r2.*, coalesce(pool.pool, 0) AS pool,
         sum(residual) OVER (PARTITION BY r2.customer_id ORDER BY due_at, issued_at, receivable_id
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - residual AS cum_before
  FROM r2 LEFT JOIN pool USING (customer_id)),
r4 AS (
  SELECT customer_id, due_at,
         CASE WHEN residual - least(greatest(pool - cum_before, 0), residual) <= 0.005 THEN 0
              ELSE residual - least(greatest(pool - cum_before, 0), residual) END AS balance
  FROM r3)
SELECT customer_id, sum(balance) AS balance,
       coalesce(sum(balance) FILTER (WHERE balance > 0 AND due_at < DATE '{AS_OF}'), 0) AS overdue_balance,
       coalesce(max(DATE '{AS_OF}' - due_at) FILTER (WHERE balance > 0 AND due_at < DATE '{AS_OF}'), 0) AS max_days_past_due
FROM r4 GROUP BY 1 ORDER BY 1
"""


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def best_of(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        out, s = timed(fn)
        best = min(best, s)
    return out, best


def run(n: int, folder: Path) -> None:
    sample, t_gen = timed(lambda: synth.generate(n, seed=1))
    rows = sum(t.num_rows for t in sample.tables.values())
    db = folder / f"bench_{n}.duckdb"
    t0 = time.perf_counter()
    engine.write_database(db, sample.tables)
    t_write = time.perf_counter() - t0
    del sample  # free the Arrow tables before reading the database back
    portfolio, t_val = timed(lambda: sources.load(sample_config(), database=db))
    tables = portfolio.tables

    def ibis_core():
        b = allocate(
            tables["receivables"], tables["payments"], tables["adjustments"], AS_OF
        ).balances()
        overdue = (b.balance > 0) & (b.due_at < AS_OF)
        days = ibis.date(AS_OF).delta(b.due_at, unit="day")
        agg = b.group_by("customer_id").aggregate(
            balance=b.balance.sum(),
            overdue_balance=b.balance.sum(where=overdue).fill_null(0.0),
            max_days_past_due=days.max(where=overdue).fill_null(0),
        )
        return agg.order_by("customer_id").to_pyarrow()

    con = portfolio.connection
    ours, t_ibis = best_of(ibis_core)
    base, t_sql = best_of(lambda: con.raw_sql(BASELINE_SQL).to_arrow_table())
    assert ours.num_rows == base.num_rows
    assert ours["customer_id"].equals(base["customer_id"])
    for col in ("balance", "overdue_balance", "max_days_past_due"):
        np.testing.assert_allclose(
            ours[col].to_numpy().astype(float),
            base[col].to_numpy().astype(float),
            rtol=1e-9,
            atol=1e-6,
        )
    snap, t_snap = best_of(lambda: snapshot(tables, AS_OF).to_pyarrow(), repeat=2)
    # contact quality: the engine decides by phonenumbers' own patterns what it can, the
    # libraries check the rest; the baseline runs the libraries on every distinct value
    check, t_contacts = timed(lambda: check_contacts(tables["customers"], "CL"))
    summary = check.summary.set_index("kind")
    distinct = tables["customers"].select("phone", "email").to_pandas()
    phones = distinct.phone.dropna().str.strip().unique().tolist()
    emails = distinct.email.dropna().str.strip().unique().tolist()
    t0 = time.perf_counter()
    lib_phones = _phone_library(phones, "CL")
    lib_emails = _email_library(emails)
    t_lib = time.perf_counter() - t0
    # same verdicts: customers with an invalid phone / e-mail by the libraries' answers
    lib_p = dict(zip(lib_phones._v, lib_phones._valid, strict=True))
    lib_e = dict(zip(lib_emails._v, lib_emails._valid, strict=True))
    bad_phones = ~distinct.phone.dropna().str.strip().map(lib_p).astype(bool)
    bad_emails = ~distinct.email.dropna().str.strip().map(lib_e).astype(bool)
    assert int(bad_phones.sum()) == int(summary.invalid["phone"])
    assert int(bad_emails.sum()) == int(summary.invalid["email"])
    check.flags.release()
    con.disconnect()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"\n== {n:,} customers, {rows:,} rows in 7 tables ==")
    print(f"generate          {t_gen:7.1f} s")
    print(f"write DuckDB      {t_write:7.1f} s")
    print(
        f"generate+write    {t_gen + t_write:7.1f} s   ratio to the {BUDGET_S:.0f} s budget: {(t_gen + t_write) / BUDGET_S:.2f}"
    )
    print(f"validate (load)   {t_val:7.1f} s")
    print(
        f"balances, Ibis    {t_ibis:7.2f} s   plain SQL {t_sql:.2f} s   ratio {t_ibis / t_sql:.2f} (results equal)"
    )
    print(f"full snapshot     {t_snap:7.2f} s   ({snap.num_rows:,} rows x {snap.num_columns} features; "
          f"{t_snap / t_sql:.1f}x the balances baseline)")  # fmt: skip
    print(f"contact checks    {t_contacts:7.2f} s   ({check.library_calls:,} values left to the "
          f"libraries; the libraries on all {len(phones) + len(emails):,} distinct values: "
          f"{t_lib:.1f} s, ratio {t_contacts / t_lib:.2f})")  # fmt: skip
    print(f"peak RSS so far   {rss:7.1f} GB")


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]
    print("Baseline query (plain DuckDB SQL):" + BASELINE_SQL)
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            run(n, Path(folder))


if __name__ == "__main__":
    main()
