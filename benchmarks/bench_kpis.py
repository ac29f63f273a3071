"""Every KPI for 12 months in one run, against the same aggregations as plain DuckDB SQL.

Usage: ``python benchmarks/bench_kpis.py [N]`` (default 1 000 000 customers; the sample is
generated with seed 7 and written to a temporary DuckDB file first).

Timed in the same run, each from a cold start (nothing cached):

- **collect_kit**: every registered KPI (``kpis.compute``: one query for all the ratio
  KPIs of all months) for each month from 2025-11 to 2026-10, plus the aging table at
  each month end and the roll-rate matrix of each month (one query each for all the
  months), all on the engine (Ibis over DuckDB). The month-end books (balances per customer) and
  each month's settlements are computed once and shared, as in a report.
- **plain SQL**: the same numbers hand-written as DuckDB SQL (printed below): one
  ``CREATE TEMP TABLE`` per month-end book (the FIFO allocation), one per month for the
  settlements (the pool's as-of join), then one query per month for all ratio KPIs, one
  for the aging table and one for the roll rates.

Every numerator, denominator, aging cell and roll-rate cell is checked equal (relative
1e-9) before the ratios are printed. A second plain SQL allocates once per month end
(``CREATE TEMP TABLE allocated``: every receivable's balance and settlement date), reads
the book and the month's settlements from it and drops it: the strongest baseline.
Targets against it: <= 1.2 at 1 M customers, <= 2 at 20 000.

The plain SQL runs with DuckDB's default settings (memory limit 80 % of the machine's
memory), the kit with its own (``engine.DUCKDB_MEMORY_SHARE``, half of it): the baseline
gets the more memory of the two.
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from collect_kit import engine, kpis, sources, synth  # noqa: E402
from collect_kit.demo import sample_config  # noqa: E402
from collect_kit.snapshot import DEFAULT_DPD  # noqa: E402

FIRST, LAST = "2025-11", "2026-10"
TOLERANCE = 0.01  # promise kept within 1 %
CENT = 0.01

BUCKET_SQL = """CASE WHEN {d} <= 0 THEN 'current' WHEN {d} <= 30 THEN '1-30' WHEN {d} <= 60 THEN '31-60'
            WHEN {d} <= 90 THEN '61-90' WHEN {d} <= 180 THEN '91-180' WHEN {d} <= 360 THEN '181-360'
            ELSE '361+' END"""

ALLOCATION_SQL = """
rec AS (SELECT * FROM receivables WHERE issued_at <= DATE '{d}'),
pay AS (SELECT * FROM payments WHERE paid_at <= DATE '{d}'),
adj AS (
  SELECT receivable_id,
         sum(CASE WHEN kind IN ('write_off', 'discount', 'credit_note') THEN amount
                  WHEN kind = 'reversal' THEN -amount ELSE 0 END) AS adjusted,
         bool_or(kind = 'write_off') AS written_off
  FROM adjustments WHERE "at" <= DATE '{d}' GROUP BY 1),
lk AS (SELECT receivable_id, sum(amount) AS linked, max(paid_at) AS last_linked_at
       FROM pay WHERE receivable_id IS NOT NULL GROUP BY 1),
r AS (
  SELECT rec.customer_id, rec.receivable_id, rec.issued_at, rec.due_at,
         coalesce(adj.written_off, false) AS written_off, lk.last_linked_at,
         greatest(rec.amount - coalesce(adj.adjusted, 0), 0) AS after_adj,
         coalesce(lk.linked, 0) AS linked
  FROM rec LEFT JOIN adj USING (receivable_id) LEFT JOIN lk USING (receivable_id)),
r2 AS (SELECT *, greatest(after_adj - linked, 0) AS residual, greatest(linked - after_adj, 0) AS excess FROM r),
ev AS (
  SELECT customer_id, paid_at AS "at", amount, payment_id AS tiebreak FROM pay WHERE receivable_id IS NULL
  UNION ALL SELECT customer_id, last_linked_at, excess, receivable_id FROM r2 WHERE excess > 0),
pool AS (SELECT customer_id, sum(amount) AS pool FROM ev GROUP BY 1),
r3 AS (
  SELECT r2.*, coalesce(pool.pool, 0) AS pool,
         sum(residual) OVER (PARTITION BY r2.customer_id ORDER BY due_at, issued_at, receivable_id
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_through
  FROM r2 LEFT JOIN pool USING (customer_id)),
r4 AS (
  SELECT *, residual - least(greatest(pool - (cum_through - residual), 0), residual) AS raw_balance
  FROM r3)"""

BOOK_SQL = (
    "CREATE TEMP TABLE book_{i} AS WITH"
    + ALLOCATION_SQL
    + """
SELECT customer_id,
       sum(balance) AS balance,
       coalesce(sum(balance) FILTER (WHERE due_at < DATE '{d}'), 0) AS overdue_balance,
       coalesce(sum(balance) FILTER (WHERE due_at >= DATE '{d}'), 0) AS current_balance,
       coalesce(max(DATE '{d}' - due_at) FILTER (WHERE balance > 0 AND due_at < DATE '{d}'), 0) AS max_dpd
FROM (SELECT *, CASE WHEN raw_balance <= {half_cent} THEN 0 ELSE raw_balance END AS balance FROM r4)
GROUP BY 1
"""
)

# the settlement date of each receivable paid from the pool: DuckDB's as-of join
SETTLEMENT_SQL = """,
need AS (SELECT receivable_id, customer_id, -(cum_through - {half_cent}) AS key
         FROM r4 WHERE residual > 0 AND raw_balance <= {half_cent}),
events AS (SELECT customer_id, "at" AS pool_at,
                  -sum(amount) OVER (PARTITION BY customer_id ORDER BY "at", tiebreak
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS key
           FROM ev),
found AS (SELECT need.receivable_id, events.pool_at FROM need
          ASOF JOIN events ON need.customer_id = events.customer_id AND need.key >= events.key)"""

SETTLED_SQL = (
    "CREATE TEMP TABLE settled_{i} AS WITH"
    + ALLOCATION_SQL
    + SETTLEMENT_SQL
    + """,
s AS (
  SELECT r4.receivable_id, r4.issued_at, r4.due_at,
         CASE WHEN r4.written_off THEN NULL
              WHEN r4.residual > 0 AND r4.raw_balance <= {half_cent} THEN found.pool_at
              WHEN r4.residual <= 0 AND r4.linked > 0 THEN r4.last_linked_at END AS settled
  FROM r4 LEFT JOIN found USING (receivable_id))
SELECT * FROM (
  SELECT receivable_id, issued_at, due_at,
         CASE WHEN settled < issued_at THEN issued_at ELSE settled END AS settled_at FROM s)
WHERE settled_at BETWEEN DATE '{start}' AND DATE '{end}'
"""
)

# the strongest baseline: one allocation per month end, kept at receivable level with its
# settlement dates, from which both the month-end book and the month's settlements are read
ALLOCATED_SQL = (
    "CREATE TEMP TABLE allocated AS WITH"
    + ALLOCATION_SQL
    + SETTLEMENT_SQL
    + """
SELECT customer_id, receivable_id, issued_at, due_at, balance,
       CASE WHEN settled < issued_at THEN issued_at ELSE settled END AS settled_at
FROM (
  SELECT r4.customer_id, r4.receivable_id, r4.issued_at, r4.due_at,
         CASE WHEN r4.raw_balance <= {half_cent} THEN 0 ELSE r4.raw_balance END AS balance,
         CASE WHEN r4.written_off THEN NULL
              WHEN r4.residual > 0 AND r4.raw_balance <= {half_cent} THEN found.pool_at
              WHEN r4.residual <= 0 AND r4.linked > 0 THEN r4.last_linked_at END AS settled
  FROM r4 LEFT JOIN found USING (receivable_id))
"""
)

BOOK_FROM_ALLOCATED_SQL = """
CREATE TEMP TABLE book_{i} AS
SELECT customer_id,
       sum(balance) AS balance,
       coalesce(sum(balance) FILTER (WHERE due_at < DATE '{d}'), 0) AS overdue_balance,
       coalesce(sum(balance) FILTER (WHERE due_at >= DATE '{d}'), 0) AS current_balance,
       coalesce(max(DATE '{d}' - due_at) FILTER (WHERE balance > 0 AND due_at < DATE '{d}'), 0) AS max_dpd
FROM allocated GROUP BY 1
"""

SETTLED_FROM_ALLOCATED_SQL = """
CREATE TEMP TABLE settled_{i} AS
SELECT receivable_id, issued_at, due_at, settled_at FROM allocated
WHERE settled_at BETWEEN DATE '{start}' AND DATE '{end}'
"""

MONTH_SQL = """
WITH o AS (SELECT * FROM book_{i0} WHERE overdue_balance > 0),
paid AS (SELECT customer_id, sum(amount) AS paid FROM payments
         WHERE paid_at BETWEEN DATE '{start}' AND DATE '{end}' GROUP BY 1),
c AS (SELECT * FROM contacts WHERE "at" BETWEEN DATE '{start}' AND DATE '{end}'),
acted AS (SELECT DISTINCT customer_id FROM c),
del AS (SELECT o.customer_id, o.overdue_balance, coalesce(paid.paid, 0) AS paid,
               acted.customer_id IS NOT NULL AS acted
        FROM o LEFT JOIN paid USING (customer_id) LEFT JOIN acted USING (customer_id)),
e AS (SELECT sum(balance) AS balance, sum(overdue_balance) AS overdue, sum(current_balance) AS cur FROM book_{i1}),
op AS (SELECT sum(balance) AS balance FROM book_{i0}),
sales AS (SELECT coalesce(sum(amount), 0) AS sales FROM receivables WHERE issued_at BETWEEN DATE '{start}' AND DATE '{end}'),
fell AS (SELECT coalesce(sum(amount), 0) AS fell_due FROM receivables
         WHERE due_at > DATE '{end}' - INTERVAL 90 DAY AND due_at <= DATE '{end}' AND issued_at <= DATE '{end}'),
st AS (SELECT count(*) AS n, sum(settled_at - issued_at) AS term, sum(settled_at - due_at) AS late FROM settled_{i}),
pr AS (
  SELECT contact_id, customer_id, "at", promise_due, promise_amount FROM (
    SELECT *, lead("at") OVER (PARTITION BY customer_id ORDER BY "at", contact_id) AS next_at
    FROM contacts WHERE outcome = 'promise')
  WHERE promise_due > DATE '{opening}' AND promise_due <= DATE '{end}' AND "at" <= DATE '{end}'
    AND (next_at IS NULL OR next_at > promise_due)),
kept AS (
  SELECT pr.contact_id, any_value(pr.promise_amount) AS amount, coalesce(sum(p.amount), 0) AS paid
  FROM pr LEFT JOIN payments p ON p.customer_id = pr.customer_id AND p.paid_at >= pr."at"
       AND p.paid_at <= pr.promise_due AND p.paid_at <= DATE '{end}'
  GROUP BY pr.contact_id),
tr AS (
  SELECT s.customer_id, {from_bucket} AS from_bucket,
         CASE WHEN coalesce(e.balance, 0) > 0 THEN {to_bucket}
              WHEN w.customer_id IS NOT NULL THEN 'written_off' ELSE 'paid_off' END AS to_state
  FROM (SELECT * FROM book_{i0} WHERE balance > 0) s
  LEFT JOIN book_{i1} e USING (customer_id)
  LEFT JOIN (SELECT DISTINCT customer_id FROM adjustments
             WHERE kind = 'write_off' AND "at" BETWEEN DATE '{start}' AND DATE '{end}') w USING (customer_id)),
rk AS (SELECT *, {from_rank} AS from_rank, {to_rank} AS to_rank FROM tr),
nc AS (SELECT coalesce(sum(CASE WHEN kind IN ('write_off', 'discount', 'credit_note') THEN amount
                                WHEN kind = 'reversal' THEN -amount ELSE 0 END), 0) AS non_cash
       FROM adjustments WHERE "at" BETWEEN DATE '{start}' AND DATE '{end}'),
inflow AS (SELECT e.balance FROM book_{i1} e
           WHERE e.overdue_balance > 0 AND e.max_dpd > 0 AND e.max_dpd <= 30
             AND e.customer_id NOT IN (SELECT customer_id FROM o)),
touched AS (SELECT count(*) AS n FROM c WHERE customer_id IN (SELECT customer_id FROM o))
SELECT * FROM (
  SELECT 'recovery_rate' AS kpi, sum(least(paid, overdue_balance)) AS numerator, sum(overdue_balance) AS denominator FROM del
  UNION ALL SELECT 'payer_rate', count(*) FILTER (WHERE paid > 0), count(*) FROM del
  UNION ALL SELECT 'collected_per_delinquent_customer', sum(paid), count(*) FROM del
  UNION ALL SELECT 'managed_rate', count(*) FILTER (WHERE acted), count(*) FROM del
  UNION ALL SELECT 'collected', (SELECT sum(paid) FROM paid), 1.0
  UNION ALL SELECT 'overdue_ratio', overdue, balance FROM e
  UNION ALL SELECT 'dso', e.balance * {days}, sales FROM e, sales
  UNION ALL SELECT 'best_possible_dso', e.cur * {days}, sales FROM e, sales
  UNION ALL SELECT 'dso_moonflow', e.overdue * 90, fell_due FROM e, fell
  UNION ALL SELECT 'cei', op.balance + sales - e.balance, op.balance + sales - e.cur FROM e, op, sales
  UNION ALL SELECT 'average_collection_time', term, n FROM st
  UNION ALL SELECT 'average_days_late', late, n FROM st
  UNION ALL SELECT 'contact_rate', count(*) FILTER (WHERE outcome IN ('contacted', 'right_party', 'promise', 'refused')), count(*) FROM c
  UNION ALL SELECT 'right_party_contact_rate', count(*) FILTER (WHERE outcome IN ('right_party', 'promise', 'refused')), count(*) FROM c
  UNION ALL SELECT 'promise_to_pay_rate', count(*) FILTER (WHERE outcome = 'promise'), count(*) FILTER (WHERE outcome IN ('right_party', 'promise', 'refused')) FROM c
  UNION ALL SELECT 'promise_kept_rate',
        count(*) FILTER (WHERE CASE WHEN amount IS NULL THEN paid > 0 ELSE paid >= amount * {keep} END), count(*) FROM kept
  UNION ALL SELECT 'cost_to_collect', CASE WHEN count(cost) > 0 THEN sum(cost) END, (SELECT coalesce(sum(paid), 0) FROM paid) FROM c
  UNION ALL SELECT 'forward_roll_rate', count(*) FILTER (WHERE to_rank > from_rank), count(*) FROM rk
  UNION ALL SELECT 'cei_cash', op.balance + sales - e.balance - non_cash, op.balance + sales - e.cur FROM e, op, sales, nc
  UNION ALL SELECT 'write_off_rate', count(*) FILTER (WHERE to_state = 'written_off'), count(*) FROM rk
  UNION ALL SELECT 'delinquency_inflow', sum(balance), 1.0 FROM inflow
  UNION ALL SELECT 'delinquency_inflow_customers', count(*), 1.0 FROM inflow
  UNION ALL SELECT 'contact_intensity', (SELECT n FROM touched), count(*) FROM o
  UNION ALL SELECT 'cure_rate', count(*) FILTER (WHERE from_rank > 0 AND to_state = 'current'), count(*) FILTER (WHERE from_rank > 0) FROM rk
)
"""

AGING_SQL = """
SELECT {bucket} AS dpd_bucket, count(*) AS customers, sum(balance) AS numerator
FROM book_{i} WHERE balance > 0 GROUP BY 1
"""

ROLL_SQL = """
SELECT {from_bucket} AS from_bucket,
       CASE WHEN coalesce(e.balance, 0) > 0 THEN {to_bucket}
            WHEN w.customer_id IS NOT NULL THEN 'written_off' ELSE 'paid_off' END AS to_state,
       count(*) AS customers, sum(s.balance) AS balance
FROM (SELECT * FROM book_{i0} WHERE balance > 0) s
LEFT JOIN book_{i1} e USING (customer_id)
LEFT JOIN (SELECT DISTINCT customer_id FROM adjustments
           WHERE kind = 'write_off' AND "at" BETWEEN DATE '{start}' AND DATE '{end}') w USING (customer_id)
GROUP BY 1, 2
"""

RANKS = {label: i for i, label in enumerate(DEFAULT_DPD.labels)}


def _rank(expr: str) -> str:
    cases = " ".join(f"WHEN {expr} = '{k}' THEN {v}" for k, v in RANKS.items())
    return f"CASE {cases} ELSE -1 END"


def months() -> list[pd.Period]:
    return list(pd.period_range(FIRST, LAST, freq="M"))


def month_ends() -> list[pd.Timestamp]:
    """The opening of the first month and every month end: the books the KPIs read."""
    first = months()[0].start_time.normalize() - pd.Timedelta(days=1)
    return [first] + [p.end_time.normalize() for p in months()]


def run_sql(con: duckdb.DuckDBPyConnection, show: bool = False, one_allocation: bool = False):
    """The plain SQL; ``one_allocation``: one allocation per month end (the book and the
    month's settlements both read it), else a second one for the settlements."""
    ends = month_ends()
    for i, d in enumerate(ends):
        if one_allocation:
            con.execute(ALLOCATED_SQL.format(d=d.date(), half_cent=CENT / 2))
            con.execute(BOOK_FROM_ALLOCATED_SQL.format(i=i, d=d.date()))
            if i > 0:
                start = months()[i - 1].start_time.normalize().date()
                con.execute(SETTLED_FROM_ALLOCATED_SQL.format(i=i, start=start, end=d.date()))
            con.execute("DROP TABLE allocated")
            continue
        sql = BOOK_SQL.format(i=i, d=d.date(), half_cent=CENT / 2)
        if show and i == 0:
            print(sql)
        con.execute(sql)
    ratios, aging, rolls = [], [], []
    for i, p in enumerate(months(), start=1):
        start, end = p.start_time.normalize().date(), p.end_time.normalize().date()
        if not one_allocation:
            sql = SETTLED_SQL.format(i=i, d=end, start=start, end=end, half_cent=CENT / 2)
            con.execute(sql)
        from_bucket = BUCKET_SQL.format(d="s.max_dpd")
        to_bucket = BUCKET_SQL.format(d="coalesce(e.max_dpd, 0)")
        sql = MONTH_SQL.format(
            i=i, i0=i - 1, i1=i, start=start, end=end, opening=ends[i - 1].date(),
            days=(end - start).days + 1, keep=1 - TOLERANCE, from_bucket=from_bucket,
            to_bucket=to_bucket, from_rank=_rank("from_bucket"), to_rank=_rank("to_state"),
        )  # fmt: skip
        if show and i == 1:
            print(SETTLED_SQL.format(i=i, d=end, start=start, end=end, half_cent=CENT / 2))
            print(sql)
        ratios.append(con.execute(sql).df().assign(period=pd.Timestamp(end)))
        sql = AGING_SQL.format(i=i, bucket=BUCKET_SQL.format(d="max_dpd"))
        aging.append(con.execute(sql).df().assign(period=pd.Timestamp(end)))
        sql = ROLL_SQL.format(i0=i - 1, i1=i, start=start, end=end, from_bucket=from_bucket,
                              to_bucket=to_bucket)  # fmt: skip
        if show and i == 1:
            print(AGING_SQL.format(i=i, bucket=BUCKET_SQL.format(d="max_dpd")))
            print(sql)
        rolls.append(con.execute(sql).df().assign(period=pd.Timestamp(end)))
    return pd.concat(ratios), pd.concat(aging), pd.concat(rolls)


def run_kit(tables):
    every = [str(p) for p in months()]
    ratios = kpis.compute(tables, every)  # every KPI, every month
    aging = kpis.aging(tables, [p.end_time.normalize() for p in months()])
    return ratios, aging, kpis.roll_rates(tables, every)


def check_equal(kit, sql) -> None:
    k_ratio, k_aging, k_roll = kit
    s_ratio, s_aging, s_roll = sql
    a = k_ratio.set_index(["period", "kpi"])[["numerator", "denominator"]].sort_index()
    b = s_ratio.set_index(["period", "kpi"])[["numerator", "denominator"]].astype(float)
    b = b.reindex(a.index)
    # collect_kit shows a total's denominator as 1 and an empty sum as 0
    totals = ["collected", "delinquency_inflow", "delinquency_inflow_customers"]
    b.loc[b.index.get_level_values("kpi").isin(totals), "denominator"] = 1.0
    np.testing.assert_allclose(a.fillna(0.0).to_numpy(float), b.fillna(0.0).to_numpy(float), rtol=1e-9,
                               err_msg="ratio KPIs differ")  # fmt: skip
    a = k_aging[k_aging.customers > 0].set_index(["period", "dpd_bucket"]).sort_index()
    b = s_aging.set_index(["period", "dpd_bucket"]).reindex(a.index)
    np.testing.assert_allclose(a[["customers", "numerator"]].to_numpy(float),
                               b[["customers", "numerator"]].to_numpy(float), rtol=1e-9)  # fmt: skip
    k_roll = k_roll.assign(
        from_bucket=k_roll.from_bucket.astype(str), to_state=k_roll.to_state.astype(str)
    )
    a = k_roll.set_index(["period", "from_bucket", "to_state"]).sort_index()
    b = s_roll.set_index(["period", "from_bucket", "to_state"]).reindex(a.index)
    assert len(s_roll) == len(k_roll)
    np.testing.assert_allclose(a[["customers", "balance"]].to_numpy(float),
                               b[["customers", "balance"]].to_numpy(float), rtol=1e-9)  # fmt: skip


def write_sample(db: Path, n: int) -> None:
    engine.write_database(db, synth.generate(n, seed=7).tables)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "sample.duckdb"
        t0 = time.perf_counter()
        # in a process of its own: the generator's memory (7 GiB at 1 M customers) is not
        # kept by the process that times the two sides
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(write_sample, db, n).result()
        print(f"{n:,} customers generated and written in {time.perf_counter() - t0:.1f} s")
        print("The plain SQL (first book, first month; the others differ by dates):")
        raw = duckdb.connect(str(db), read_only=True)
        t0 = time.perf_counter()
        sql = run_sql(raw, show=True)
        t_sql2 = time.perf_counter() - t0
        raw.close()
        raw = duckdb.connect(str(db), read_only=True)
        t0 = time.perf_counter()
        sql1 = run_sql(raw, one_allocation=True)
        t_sql1 = time.perf_counter() - t0
        raw.close()
        print("One allocation per month end (the strongest baseline):")
        print(ALLOCATED_SQL.format(d=month_ends()[1].date(), half_cent=CENT / 2))
        portfolio = sources.load(sample_config(), database=db, validate=False, checks=False)
        t0 = time.perf_counter()
        kit = run_kit(portfolio.tables)
        t_kit = time.perf_counter() - t0
        check_equal(kit, sql)
        check_equal(kit, sql1)
        engine.release_shared()
        portfolio.close()
    kpi_count = len(kpis.REGISTRY)
    print(f"\n== {n:,} customers, {len(months())} months: {kpi_count} KPIs + aging + roll rates "
          f"per month; {len(month_ends())} month-end books (results equal) ==")  # fmt: skip
    best = min(t_sql1, t_sql2)
    print(f"collect_kit (Ibis on DuckDB)                   {t_kit:8.1f} s")
    print(f"plain SQL, two allocations per month end       {t_sql2:8.1f} s   "
          f"collect_kit / this {t_kit / t_sql2:.2f}")  # fmt: skip
    print(f"plain SQL, one allocation per month end        {t_sql1:8.1f} s   "
          f"collect_kit / this {t_kit / t_sql1:.2f}")  # fmt: skip
    print(f"ratio to the strongest baseline: {t_kit / best:.2f} "
          f"(target <= 1.2 at 1 M customers, <= 2 at 20 000)")  # fmt: skip


if __name__ == "__main__":
    main()
