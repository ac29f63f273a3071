"""Experiment readout speed: engine aggregation vs the same work as one DuckDB query, then the math.

Usage: ``python benchmarks/bench_experiments.py [N]`` (default 10 000 000 assigned customers).

Data generated directly in DuckDB: N customers in 6 segments x 3 arms (60/20/20), assigned
over 12 weeks (a sequential test's intake), one receivable each, payments before and after
assignment (a quarter on account), 3 contacts per customer. The readout reads five metrics:
the three built-in ones (payer rate, collected per customer with its CUPED covariate,
recovery rate over the balance at assignment) and two declared over contacts (a
right-party contact: a proportion; calls per customer: a mean with its covariate).

Timed in the same run, each best of 3:

- one sequential look at the final date with ``outcome_stats`` (Ibis: population and
  horizons, payments, contacts, the balance at assignment, sums per segment x arm x metric);
- the same aggregation hand-written as one DuckDB query (printed) returning the same sums;
  results checked equal;
- the 12 weekly looks' total (engine);
- the statistics on top for the 12 looks: one ``compare`` over all looks (every test, raw
  and CUPED, overall rows, SRM at two levels, Holm/BH per look, confidence sequences) and
  ``decide`` at the last look.

Targets: Ibis / SQL <= 1.5 per look; statistics for 6 segments x 3 arms x 5 metrics x 12 looks
< 1 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from collect_kit import engine  # noqa: E402
from collect_kit.experiments.config import ExperimentConfig  # noqa: E402
from collect_kit.experiments.readout import Settings, compare, decide, outcome_stats  # noqa: E402

FIRST = pd.Timestamp("2026-03-02")
LOOKS = [FIRST + pd.Timedelta(days=7 * k) for k in range(1, 13)]
WEIGHTS = {"champion": 0.6, "challenger_a": 0.2, "challenger_b": 0.2}
CONFIG = ExperimentConfig(
    experiment_id="bench", sources="s.yaml", arms=WEIGHTS, window_days=30, pre_days=90,
    mde_amount=500.0, sequential=True,
    metrics={
        "right_party": {"type": "proportion", "table": "contacts", "aggregate": "any",
                        "where": {"outcome": ["right_party", "promise", "refused"]}},
        "calls": {"type": "mean", "table": "contacts", "aggregate": "count", "where": {"channel": ["call"]}},
    },
)  # fmt: skip


def baseline(look: pd.Timestamp) -> str:
    """The same aggregation, by hand, as one query (a look at ``look``)."""
    d = f"DATE '{look.date()}'"
    return f"""
WITH a AS (SELECT customer_id, segment, arm, assigned_at,
                  least(assigned_at + INTERVAL 30 DAY, {d} + INTERVAL 1 DAY)::DATE AS horizon
           FROM assignments WHERE experiment_id = 'bench' AND assigned_at <= {d} - INTERVAL 7 DAY),
p AS (SELECT a.customer_id,
             sum(amount) FILTER (WHERE paid_at >= assigned_at) AS y,
             count(*) FILTER (WHERE paid_at >= assigned_at) AS k,
             sum(amount) FILTER (WHERE paid_at < assigned_at AND paid_at >= assigned_at - INTERVAL 90 DAY) AS x,
             sum(amount) FILTER (WHERE paid_at < assigned_at) AS paid_before
      FROM a JOIN payments pay ON pay.customer_id = a.customer_id AND pay.paid_at < a.horizon
      GROUP BY 1),
c AS (SELECT a.customer_id,
             count(*) FILTER (WHERE c."at" >= assigned_at) AS actions,
             count(cost) FILTER (WHERE c."at" >= assigned_at) AS costed,
             sum(cost) FILTER (WHERE c."at" >= assigned_at) AS cost,
             count(*) FILTER (WHERE c."at" >= assigned_at AND outcome IN ('right_party', 'promise', 'refused')) AS rp,
             count(*) FILTER (WHERE c."at" >= assigned_at AND channel = 'call') AS calls,
             count(*) FILTER (WHERE c."at" < assigned_at AND channel = 'call') AS calls_pre
      FROM a JOIN contacts c ON c.customer_id = a.customer_id
                            AND c."at" >= a.assigned_at - INTERVAL 90 DAY AND c."at" < a.horizon
      GROUP BY 1),
o AS (SELECT a.customer_id, sum(r.amount) AS owed
      FROM a JOIN receivables r ON r.customer_id = a.customer_id AND r.issued_at < a.assigned_at
      GROUP BY 1),
per AS (SELECT a.segment, a.arm, coalesce(p.y, 0) AS y, coalesce(p.x, 0) AS x,
               (coalesce(p.k, 0) > 0)::DOUBLE AS paid,
               greatest(coalesce(o.owed, 0) - coalesce(p.paid_before, 0), 0) AS b,
               (coalesce(c.rp, 0) > 0)::DOUBLE AS rp, coalesce(c.calls, 0)::DOUBLE AS calls,
               coalesce(c.calls_pre, 0)::DOUBLE AS calls_pre, coalesce(c.actions, 0) AS actions,
               coalesce(c.costed, 0) AS costed, coalesce(c.cost, 0) AS cost
        FROM a LEFT JOIN p USING (customer_id) LEFT JOIN c USING (customer_id)
               LEFT JOIN o USING (customer_id))
SELECT segment, arm, count(*) AS n, sum(actions) AS actions, sum(costed) AS costed_actions,
       sum(cost) AS cost, sum(paid) AS payers,
       sum(y) AS sum_y, sum(y * y) AS sum_y2, sum(x) AS sum_x, sum(x * x) AS sum_x2, sum(x * y) AS sum_xy,
       sum(b) AS sum_b, sum(b * b) AS sum_b2, sum(y * b) AS sum_yb, sum(x * b) AS sum_xb,
       sum(rp) AS rp, sum(calls) AS calls, sum(calls * calls) AS calls2, sum(calls_pre) AS calls_pre,
       sum(calls_pre * calls_pre) AS calls_pre2, sum(calls * calls_pre) AS calls_xy
FROM per GROUP BY 1, 2 ORDER BY 1, 2
"""


def build(path: Path, n: int) -> None:
    con = duckdb.connect(str(path))
    con.execute("SELECT setseed(0.17)")
    con.execute(f"""
        CREATE TABLE customers AS SELECT 'CU' || lpad(i::VARCHAR, 9, '0') AS customer_id, i FROM range({n}) t(i);
        CREATE TABLE assignments AS
          SELECT 'bench' AS experiment_id, customer_id,
                 CASE WHEN r < 0.6 THEN 'champion' WHEN r < 0.8 THEN 'challenger_a' ELSE 'challenger_b' END AS arm,
                 'S' || (i % 6)::VARCHAR AS segment,
                 DATE '{FIRST.date()}' + (i % 84)::INT AS assigned_at
          FROM (SELECT *, random() AS r FROM customers);
        CREATE TABLE receivables AS
          SELECT 'RC' || lpad(i::VARCHAR, 9, '0') AS receivable_id, customer_id, 'loan' AS product,
                 DATE '2025-12-01' AS issued_at, DATE '2026-01-01' AS due_at,
                 round(exp(random() * 3 + 10)) AS amount, 'CLP' AS currency
          FROM customers;
        CREATE TABLE payments AS
          SELECT 'PY' || lpad(row_number() OVER ()::VARCHAR, 10, '0') AS payment_id, customer_id,
                 CASE WHEN random() < 0.25 THEN NULL ELSE receivable_id END AS receivable_id,
                 DATE '2026-01-10' + (random() * 170)::INT AS paid_at,
                 round(exp(random() * 2 + 7)) AS amount
          FROM receivables, range(2) k
          WHERE random() < 0.45;
        CREATE TABLE contacts AS
          SELECT 'CT' || lpad(row_number() OVER ()::VARCHAR, 10, '0') AS contact_id, customer_id,
                 DATE '2026-01-10' + (random() * 170)::INT AS "at",
                 ['sms', 'call', 'email', 'whatsapp'][1 + (random() * 4)::INT % 4] AS channel,
                 ['no_answer', 'contacted', 'right_party', 'promise', 'refused'][1 + (random() * 5)::INT % 5] AS outcome,
                 CASE WHEN random() < 0.8 THEN 300.0 END AS cost,
                 NULL::DOUBLE AS promise_amount, NULL::DATE AS promise_due
          FROM customers, range(3) k;
        CREATE TABLE adjustments AS SELECT * FROM (SELECT 'x' AS adjustment_id, 'x' AS receivable_id,
          'x' AS customer_id, DATE '2026-01-01' AS at, 'discount' AS kind, 1.0::DOUBLE AS amount) WHERE false;
    """)
    con.close()


def _ours_wide(out) -> pd.DataFrame:
    """The engine's long moments in the baseline's wide layout, to compare them."""
    m = out.moments.set_index(["segment", "arm", "metric"])
    wide = out.arms.set_index(["segment", "arm"])[["n", "actions", "costed_actions", "cost"]].copy()
    wide["payers"] = m.xs("payer_rate", level="metric").sum_y
    money = m.xs("collected_per_customer", level="metric")
    rec = m.xs("recovery_rate", level="metric")
    for col in ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"):
        wide[col] = money[col]
    for col in ("sum_b", "sum_b2", "sum_yb", "sum_xb"):
        wide[col] = rec[col]
    wide["rp"] = m.xs("right_party", level="metric").sum_y
    calls = m.xs("calls", level="metric")
    wide["calls"], wide["calls2"], wide["calls_pre"] = calls.sum_y, calls.sum_y2, calls.sum_x
    wide["calls_pre2"], wide["calls_xy"] = calls.sum_x2, calls.sum_xy
    return wide.reset_index().sort_values(["segment", "arm"], ignore_index=True)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    specs = CONFIG.metric_specs()
    final = LOOKS[-1]
    print("Baseline (one plain DuckDB query per look):" + baseline(final))
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "exp.duckdb"
        t0 = time.perf_counter()
        build(db, n)
        t_build = time.perf_counter() - t0
        con = engine.connect(path=db)
        names = ("assignments", "receivables", "payments", "adjustments", "contacts")
        tables = {name: con.table(name) for name in names}

        def ours(look):
            return outcome_stats(tables, "bench", look, specs, 30, 90, sequential=True)

        raw = duckdb.connect(str(db), read_only=True)
        best_i = best_s = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            got = ours(final)
            best_i = min(best_i, time.perf_counter() - t0)
            t0 = time.perf_counter()
            base = raw.execute(baseline(final)).df()
            best_s = min(best_s, time.perf_counter() - t0)
        wide = _ours_wide(got)
        cols = [c for c in base.columns if c not in ("segment", "arm")]
        assert wide[["segment", "arm"]].equals(base[["segment", "arm"]])
        np.testing.assert_allclose(
            wide[cols].to_numpy(float), base[cols].to_numpy(float), rtol=1e-9
        )
        t0 = time.perf_counter()
        looks = [ours(look) for look in LOOKS]
        t_looks = time.perf_counter() - t0
        t0 = time.perf_counter()
        settings = Settings.of(CONFIG)
        frame = pd.concat([o.moments.assign(look=d) for o, d in zip(looks, LOOKS, strict=True)])
        results, _ = compare(frame, WEIGHTS, specs, settings, by=["look"])
        final_rows = results[results.look == final].drop(columns="look")
        decide(final_rows, specs, settings, {f"S{i}": n / 6 / 3 for i in range(6)}, weights=WEIGHTS)
        t_stats = time.perf_counter() - t0
        raw.close()
        con.disconnect()
    print(f"\n== {n:,} assigned customers over 12 weeks, 6 segments x 3 arms, 5 metrics, "
          f"3 contacts per customer (built in DuckDB in {t_build:.1f} s) ==")  # fmt: skip
    print(f"one look, engine (Ibis)       {best_i:7.2f} s")
    print(f"one look, plain DuckDB query  {best_s:7.2f} s   ratio {best_i / best_s:.2f} "
          "(target <= 1.5; sums equal)")  # fmt: skip
    print(f"12 weekly looks, engine       {t_looks:7.2f} s")
    print(f"statistics, 12 looks          {t_stats:7.3f} s   ({len(results)} rows; target < 1 s)")


if __name__ == "__main__":
    main()
