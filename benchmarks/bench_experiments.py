"""Experiment readout speed: engine aggregation vs one plain DuckDB GROUP BY, then the math.

Usage: ``python benchmarks/bench_experiments.py [N]`` (default 10 000 000 assigned customers).

Data generated directly in DuckDB: N customers in 6 segments x 3 arms (60/20/20), one
receivable each, payments before and after the assignment date, a quarter of them on
account (no receivable), so the balance at assignment needs the kit's allocation rule
(linked payments, then the customer's pool applied oldest due first). Timed in the same run:

- ``outcome_stats`` (Ibis: windows, pre-period covariate, allocation for the balance at
  assignment, sufficient statistics per segment x arm);
- the same aggregation hand-written as one DuckDB query (printed; it implements the same
  allocation rule, as any query giving the same balances on all data must); results
  checked equal;
- the statistics on top (``readout``: proportions, CUPED/Welch, ratio, SRM, Holm/BH).

Targets: Ibis / SQL <= 1.5; statistics < 1 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from collect_kit import engine  # noqa: E402
from collect_kit.experiments.readout import outcome_stats, readout  # noqa: E402

ASSIGNED = "2026-03-01"
EXTRACTION = "2026-10-31"
WEIGHTS = {"champion": 0.6, "challenger_a": 0.2, "challenger_b": 0.2}

BASELINE = f"""
WITH a AS (SELECT * FROM assignments WHERE experiment_id = 'bench'
             AND assigned_at + INTERVAL 30 DAY <= DATE '{EXTRACTION}'),
p AS (SELECT a.customer_id, a.segment, a.arm,
             sum(CASE WHEN pay.paid_at >= a.assigned_at THEN pay.amount END) AS collected,
             sum(CASE WHEN pay.paid_at < a.assigned_at THEN pay.amount END) AS pre,
             count(CASE WHEN pay.paid_at >= a.assigned_at THEN 1 END) AS payments
      FROM a LEFT JOIN payments pay
        ON pay.customer_id = a.customer_id
       AND pay.paid_at >= a.assigned_at - INTERVAL 90 DAY
       AND pay.paid_at < a.assigned_at + INTERVAL 30 DAY
      GROUP BY 1, 2, 3),
rec AS (SELECT * FROM receivables WHERE issued_at <= DATE '{ASSIGNED}' - INTERVAL 1 DAY),
pay AS (SELECT * FROM payments WHERE paid_at <= DATE '{ASSIGNED}' - INTERVAL 1 DAY),
adj AS (SELECT receivable_id,
               sum(CASE WHEN kind IN ('write_off', 'discount', 'credit_note') THEN amount
                        WHEN kind = 'reversal' THEN -amount ELSE 0 END) AS adjusted
        FROM adjustments WHERE "at" <= DATE '{ASSIGNED}' - INTERVAL 1 DAY GROUP BY 1),
lk AS (SELECT receivable_id, sum(amount) AS linked FROM pay WHERE receivable_id IS NOT NULL GROUP BY 1),
r AS (SELECT rec.customer_id, rec.receivable_id, rec.issued_at, rec.due_at,
             greatest(rec.amount - coalesce(adj.adjusted, 0), 0) AS after_adj, coalesce(lk.linked, 0) AS linked
      FROM rec LEFT JOIN adj USING (receivable_id) LEFT JOIN lk USING (receivable_id)),
r2 AS (SELECT *, greatest(after_adj - linked, 0) AS residual, greatest(linked - after_adj, 0) AS excess FROM r),
pool AS (SELECT customer_id, sum(amount) AS pool FROM (
           SELECT customer_id, amount FROM pay WHERE receivable_id IS NULL
           UNION ALL SELECT customer_id, excess FROM r2 WHERE excess > 0) GROUP BY 1),
r3 AS (SELECT r2.*, coalesce(pool.pool, 0) AS pool,
              sum(residual) OVER (PARTITION BY r2.customer_id ORDER BY due_at, issued_at, receivable_id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - residual AS cum_before
       FROM r2 LEFT JOIN pool USING (customer_id)),
b AS (SELECT customer_id,
             sum(CASE WHEN residual - least(greatest(pool - cum_before, 0), residual) <= 0.005 THEN 0
                      ELSE residual - least(greatest(pool - cum_before, 0), residual) END) AS balance
      FROM r3 GROUP BY 1),
c AS (SELECT p.segment, p.arm, coalesce(p.collected, 0) AS y, coalesce(p.pre, 0) AS x,
             coalesce(b.balance, 0) AS bal, (p.payments > 0)::INT AS paid
      FROM p LEFT JOIN b USING (customer_id))
SELECT segment, arm, count(*) AS n, sum(paid) AS payers,
       sum(y) AS sum_y, sum(y * y) AS sum_y2, sum(x) AS sum_x, sum(x * x) AS sum_x2, sum(x * y) AS sum_xy,
       sum(bal) AS sum_b, sum(bal * bal) AS sum_b2, sum(y * bal) AS sum_yb, sum(x * bal) AS sum_xb
FROM c GROUP BY 1, 2 ORDER BY 1, 2
"""


def build(path: Path, n: int) -> None:
    con = duckdb.connect(str(path))
    con.execute("SELECT setseed(0.17)")
    con.execute(f"""
        CREATE TABLE customers AS SELECT 'CU' || lpad(i::VARCHAR, 9, '0') AS customer_id, i FROM range({n}) t(i);
        CREATE TABLE assignments AS
          SELECT 'bench' AS experiment_id, customer_id,
                 CASE WHEN r < 0.6 THEN 'champion' WHEN r < 0.8 THEN 'challenger_a' ELSE 'challenger_b' END AS arm,
                 'S' || (i % 6)::VARCHAR AS segment, DATE '{ASSIGNED}' AS assigned_at
          FROM (SELECT *, random() AS r FROM customers);
        CREATE TABLE receivables AS
          SELECT 'RC' || lpad(i::VARCHAR, 9, '0') AS receivable_id, customer_id, 'loan' AS product,
                 DATE '2025-12-01' AS issued_at, DATE '2026-01-01' AS due_at,
                 round(exp(random() * 3 + 10)) AS amount, 'CLP' AS currency
          FROM customers;
        CREATE TABLE payments AS
          SELECT 'PY' || lpad(row_number() OVER ()::VARCHAR, 10, '0') AS payment_id, customer_id,
                 CASE WHEN random() < 0.25 THEN NULL ELSE receivable_id END AS receivable_id,
                 DATE '2026-01-10' + (random() * 75)::INT AS paid_at,
                 round(exp(random() * 2 + 7)) AS amount
          FROM receivables, range(2) k
          WHERE random() < 0.45;
        CREATE TABLE adjustments AS SELECT * FROM (SELECT 'x' AS adjustment_id, 'x' AS receivable_id,
          'x' AS customer_id, DATE '2026-01-01' AS at, 'discount' AS kind, 1.0::DOUBLE AS amount) WHERE false;
    """)
    con.close()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    print("Baseline (one plain DuckDB query):" + BASELINE)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "exp.duckdb"
        t0 = time.perf_counter()
        build(db, n)
        t_build = time.perf_counter() - t0
        con = engine.connect(path=db)
        tables = {
            name: con.table(name)
            for name in ("assignments", "receivables", "payments", "adjustments")
        }

        def ours():
            return outcome_stats(tables, "bench", EXTRACTION, window_days=30, pre_days=90)

        raw = duckdb.connect(str(db), read_only=True)
        best_i = best_s = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            got = ours()
            best_i = min(best_i, time.perf_counter() - t0)
            t0 = time.perf_counter()
            base = raw.execute(BASELINE).df()
            best_s = min(best_s, time.perf_counter() - t0)
        cols = [
            "n",
            "payers",
            "sum_y",
            "sum_y2",
            "sum_x",
            "sum_x2",
            "sum_xy",
            "sum_b",
            "sum_b2",
            "sum_yb",
        ]
        got = got.sort_values(["segment", "arm"], ignore_index=True)
        assert got[["segment", "arm"]].equals(base[["segment", "arm"]])
        np.testing.assert_allclose(got[cols].to_numpy(float), base[cols].to_numpy(float), rtol=1e-9)
        t0 = time.perf_counter()
        result = readout(got, WEIGHTS)
        t_stats = time.perf_counter() - t0
        raw.close()
        con.disconnect()
    print(
        f"\n== {n:,} assigned customers, 6 segments x 3 arms (built in DuckDB in {t_build:.1f} s) =="
    )
    print(f"engine aggregation (Ibis)  {best_i:7.2f} s")
    print(
        f"plain DuckDB GROUP BY      {best_s:7.2f} s   ratio {best_i / best_s:.2f} (target <= 1.5; results equal)"
    )
    print(
        f"statistics on top          {t_stats:7.3f} s   ({len(result)} comparisons; target < 1 s)"
    )


if __name__ == "__main__":
    main()
