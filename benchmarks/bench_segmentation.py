"""Segmentation speed: ``assign`` against hand-written DuckDB SQL, a polars cascade and a
row-wise ``apply``.

Usage: ``python benchmarks/bench_segmentation.py [N ...]`` (default 1000000 10000000).

Snapshot-shaped data (the snapshot's column names and types, realistic distributions with
nulls) is generated directly in a DuckDB file. For each size, in the same run:

- ``assign``: the 8-segment cascade below through collect_kit's compiler, producing
  (a) customers and balance per segment (one CASE of segment codes, grouped, named at the
  end: ``segment_codes``) and (b) customer_id + segment as Arrow (one CASE of labels:
  ``segment_expr``);
- baseline: the same cascade hand-written as plain DuckDB SQL (printed), kept verbatim as
  first written (a CASE of labels for both), producing the same two results — checked
  equal — fetched through the relation API (``con.sql(q).to_arrow_table()``) as Ibis
  fetches its own (``execute()`` is slower by itself);
- optimised SQL: the same SQL with every optimisation the kit's compiler applies written
  by hand (a CASE of codes for the grouped result, named after the fetch as the kit does);
- polars: the same cascade as a lazy ``pl.when/then`` over the same data written to
  Parquet (``scan_parquet``), the same two results as Arrow — checked equal (``bench``
  extra; skipped with a note without polars);
- row-wise: the ``DataFrame.apply(axis=1)`` an analyst would write, timed on 100 000 rows
  and extrapolated linearly;
- memory: in a fresh process, the peak RSS increase over the process after imports while
  ``assign`` produces both results, against the size of the columns it reads.

Times are the median of 5 runs. Targets: assign / SQL <= 1.05 against both SQL baselines
at 10 M customers (<= 1.3 at 1 M); row-wise / assign >= 100; RSS increase / columns read < 3.
Every ratio is printed against the strongest baseline too (the fastest of SQL and polars).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

RULES = {
    "name": "bench8",
    "segments": [
        {"name": "New customers", "strategy": "welcome", "when": {"column": "is_new", "op": "==", "value": True}},
        {"name": "Broken promises", "strategy": "firm_call", "when": {"column": "broken_promises", "op": ">=", "value": 1}},
        {"name": "Hard to contact", "strategy": "letter", "when": {"all": [
            {"column": "overdue_balance", "op": ">", "value": 0},
            {"any": [{"column": "has_valid_phone", "op": "==", "value": False},
                     {"all": [{"column": "contact_attempts", "op": ">=", "value": 8},
                              {"column": "right_party_contacts", "op": "==", "value": 0}]}]}]}},
        {"name": "High risk", "strategy": "intensive", "when": {"all": [
            {"column": "overdue_balance", "op": ">", "value": 0},
            {"any": [{"column": "score", "op": "<", "value": 550},
                     {"column": "max_days_past_due", "op": ">", "value": 90}]}]}},
        {"name": "Corporate", "strategy": "key_account", "when": {"column": "company_size", "op": "in", "value": ["large", "medium"]}},
        {"name": "High balance", "strategy": "dedicated", "when": {"column": "overdue_balance", "op": ">=", "value": 1000000}},
        {"name": "Slow payers", "strategy": "early_call", "when": {"column": "avg_payment_term_days", "op": "between", "value": [60, 400]}},
        {"name": "Low risk", "strategy": "sms", "when": {"all": [
            {"column": "score", "op": ">=", "value": 700},
            {"column": "max_days_past_due", "op": "<=", "value": 30}]}},
    ],
}  # fmt: skip

CASE_SQL = """CASE
    WHEN is_new THEN 'New customers'
    WHEN broken_promises >= 1 THEN 'Broken promises'
    WHEN overdue_balance > 0 AND (NOT has_valid_phone OR (contact_attempts >= 8 AND right_party_contacts = 0))
      THEN 'Hard to contact'
    WHEN overdue_balance > 0 AND (score < 550 OR max_days_past_due > 90) THEN 'High risk'
    WHEN company_size IN ('large', 'medium') THEN 'Corporate'
    WHEN overdue_balance >= 1000000 THEN 'High balance'
    WHEN avg_payment_term_days BETWEEN 60 AND 400 THEN 'Slow payers'
    WHEN score >= 700 AND max_days_past_due <= 30 THEN 'Low risk'
    ELSE 'Default' END"""
BASELINE_GROUP_BY = f"SELECT {CASE_SQL} AS segment, count(*) AS customers, sum(balance) AS balance\nFROM snapshot GROUP BY 1"
BASELINE_ROWS = f"SELECT customer_id, {CASE_SQL} AS segment FROM snapshot"
LABELS = ["New customers", "Broken promises", "Hard to contact", "High risk", "Corporate",
          "High balance", "Slow payers", "Low risk", "Default"]  # fmt: skip
CODES_SQL = CASE_SQL
for _i, _label in enumerate(LABELS):
    CODES_SQL = CODES_SQL.replace(f"'{_label}'", str(_i))
OPTIMISED_GROUP_BY = f"SELECT {CODES_SQL} AS code, count(*) AS customers, sum(balance) AS balance\nFROM snapshot GROUP BY 1"


def with_labels(per):
    """The grouped result with ``segment`` named from its ``code`` (after the fetch)."""
    import pyarrow.compute as pc

    labels = pc.take(pa.array(LABELS), per.column("code"))
    return per.drop_columns("code").append_column("segment", labels)


READ = ["customer_id", "balance", "is_new", "broken_promises", "overdue_balance", "has_valid_phone",
        "contact_attempts", "right_party_contacts", "score", "max_days_past_due", "company_size",
        "avg_payment_term_days"]  # fmt: skip


def build(path: Path, n: int) -> None:
    """Snapshot-shaped data generated in DuckDB (nulls where the real snapshot has them)."""
    con = duckdb.connect(str(path))
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""
        CREATE TABLE snapshot AS
        SELECT 'CU' || lpad(i::VARCHAR, 9, '0') AS customer_id,
               round(exp(random() * 6 + 9)) * (random() < 0.6)::INT AS balance,
               random() < 0.07 AS is_new,
               (random() < 0.06)::INT + (random() < 0.01)::INT AS broken_promises,
               round(exp(random() * 6 + 8)) * (random() < 0.35)::INT AS overdue_balance,
               CASE WHEN random() < 0.02 THEN NULL ELSE random() < 0.88 END AS has_valid_phone,
               (random() * 16)::INT AS contact_attempts,
               (random() < 0.3)::INT AS right_party_contacts,
               CASE WHEN random() < 0.1 THEN NULL ELSE 300 + round(random() * 600) END AS score,
               CASE WHEN random() < 0.6 THEN 0 ELSE (random() * 400)::INT END AS max_days_past_due,
               CASE WHEN random() < 0.7 THEN NULL
                    ELSE ['micro', 'small', 'medium', 'large'][1 + (random() * 3.999)::INT] END AS company_size,
               CASE WHEN random() < 0.12 THEN NULL ELSE random() * 120 END AS avg_payment_term_days
        FROM range({n}) t(i)
    """)
    con.close()


def _has(v) -> bool:
    return not pd.isna(v)


def analyst_segment(row) -> str:
    """The cascade as the per-row Python function an analyst would pass to DataFrame.apply."""
    if _has(row.is_new) and row.is_new:
        return "New customers"
    if _has(row.broken_promises) and row.broken_promises >= 1:
        return "Broken promises"
    overdue = _has(row.overdue_balance) and row.overdue_balance > 0
    no_phone = _has(row.has_valid_phone) and not row.has_valid_phone
    unreached = row.contact_attempts >= 8 and row.right_party_contacts == 0
    if overdue and (no_phone or unreached):
        return "Hard to contact"
    if overdue and ((_has(row.score) and row.score < 550) or row.max_days_past_due > 90):
        return "High risk"
    if row.company_size in ("large", "medium"):
        return "Corporate"
    if _has(row.overdue_balance) and row.overdue_balance >= 1_000_000:
        return "High balance"
    if _has(row.avg_payment_term_days) and 60 <= row.avg_payment_term_days <= 400:
        return "Slow payers"
    if _has(row.score) and row.score >= 700 and row.max_days_past_due <= 30:
        return "Low risk"
    return "Default"


def polars_side(parquet: Path):
    """The cascade as a polars lazy query over ``parquet`` (None without polars)."""
    try:
        import polars as pl
    except ImportError:
        return None
    c = pl.col
    segment = (
        pl.when(c("is_new")).then(pl.lit("New customers"))
        .when(c("broken_promises") >= 1).then(pl.lit("Broken promises"))
        .when((c("overdue_balance") > 0) & (~c("has_valid_phone")
              | ((c("contact_attempts") >= 8) & (c("right_party_contacts") == 0))))
        .then(pl.lit("Hard to contact"))
        .when((c("overdue_balance") > 0) & ((c("score") < 550) | (c("max_days_past_due") > 90)))
        .then(pl.lit("High risk"))
        .when(c("company_size").is_in(["large", "medium"])).then(pl.lit("Corporate"))
        .when(c("overdue_balance") >= 1_000_000).then(pl.lit("High balance"))
        .when(c("avg_payment_term_days").is_between(60, 400)).then(pl.lit("Slow payers"))
        .when((c("score") >= 700) & (c("max_days_past_due") <= 30)).then(pl.lit("Low risk"))
        .otherwise(pl.lit("Default"))
    )  # fmt: skip

    def run():
        x = pl.scan_parquet(parquet).with_columns(segment=segment)
        per = x.group_by("segment").agg(customers=pl.len(), balance=c("balance").sum())
        per, rows = pl.collect_all([per, x.select("customer_id", "segment")])
        return per.to_arrow(), rows.to_arrow()

    return run


def median(fn, repeat=5):
    """The result of ``fn`` and the median of ``repeat`` timed runs (seconds)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, sorted(times)[repeat // 2]


def ibis_side(db: Path):
    """An open connection and a function producing both results from a table of it."""
    from collect_kit import engine
    from collect_kit.segmentation.compile import segment_codes, segment_expr
    from collect_kit.segmentation.rules import from_dict

    seg = from_dict(RULES)
    assert seg.names == LABELS
    con = engine.connect(path=db)
    snapshot = con.table("snapshot")

    def run(t=snapshot):
        x = t.mutate(code=segment_codes(seg, t))
        per = x.group_by("code").aggregate(customers=x.count(), balance=x.balance.sum())
        per = with_labels(per.to_pyarrow())
        rows = t.select("customer_id", segment=segment_expr(seg, t)).to_pyarrow()
        return per, rows

    return con, run


def memory_probe(db: str) -> None:
    """Child process: peak RSS increase while assign produces both results.

    Peak from ``VmHWM`` of /proc (this process image only): ``ru_maxrss`` would carry the
    parent's peak across fork + exec on Linux.
    """

    def status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"{field} not in /proc/self/status")

    con, run = ibis_side(Path(db))
    run(con.table("snapshot").limit(1000))  # load every library and code path once
    base = status("VmRSS")
    per, rows = run()
    print(json.dumps({"increase": status("VmHWM") - base, "rows": rows.num_rows}))


def run_size(n: int, folder: Path) -> None:
    db = folder / f"snap_{n}.duckdb"
    t0 = time.perf_counter()
    build(db, n)
    t_build = time.perf_counter() - t0
    con, run = ibis_side(db)
    (per_i, rows_i), t_ibis = median(run)
    raw = duckdb.connect(str(db), read_only=True)

    def sql():  # the relation API, as Ibis fetches
        per = raw.sql(BASELINE_GROUP_BY).to_arrow_table()
        rows = raw.sql(BASELINE_ROWS).to_arrow_table()
        return per, rows

    def optimised():
        per = with_labels(raw.sql(OPTIMISED_GROUP_BY).to_arrow_table())
        rows = raw.sql(BASELINE_ROWS).to_arrow_table()
        return per, rows

    (per_s, rows_s), t_sql = median(sql)
    (per_o, _), t_opt = median(optimised)
    key = [("segment", "ascending")]
    assert (
        per_o.sort_by(key)
        .select(["segment", "customers"])
        .equals(per_s.sort_by(key).select(["segment", "customers"]))
    ), "optimised SQL differs"
    parquet = folder / f"snap_{n}.parquet"
    raw.execute(f"COPY snapshot TO '{parquet}' (FORMAT parquet)")
    polars_run = polars_side(parquet)
    t_polars = None
    if polars_run is not None:
        (per_p, rows_p), t_polars = median(polars_run)
        got = dict(zip(per_p["segment"].to_pylist(), per_p["customers"].to_pylist(), strict=True))
        want = dict(zip(per_s["segment"].to_pylist(), per_s["customers"].to_pylist(), strict=True))
        assert got == want, "polars segments differ"
        assert rows_p.num_rows == rows_s.num_rows
    # same materialized output
    key = [("segment", "ascending")]
    assert (
        per_i.sort_by(key)
        .select(["segment", "customers"])
        .equals(per_s.sort_by(key).select(["segment", "customers"]))
    )
    bal_i = per_i.sort_by(key)["balance"].to_numpy()
    bal_s = per_s.sort_by(key)["balance"].to_numpy()
    assert abs(bal_i - bal_s).max() <= 1e-6 * max(1.0, abs(bal_s).max())
    order = [("customer_id", "ascending")]
    assert rows_i.sort_by(order).equals(rows_s.sort_by(order).cast(rows_i.schema))

    # the row-wise approach on 100 000 rows, extrapolated
    sample = raw.execute("SELECT * FROM snapshot LIMIT 100000").df()
    t0 = time.perf_counter()
    applied = sample.apply(analyst_segment, axis=1)
    t_apply = (time.perf_counter() - t0) * n / len(sample)
    by_id = dict(
        zip(
            rows_s.column("customer_id").to_pylist(),
            rows_s.column("segment").to_pylist(),
            strict=True,
        )
    )
    assert [by_id[c] for c in sample.customer_id] == applied.tolist(), "row-wise result differs"

    # memory in a fresh process
    probe = subprocess.run(
        [sys.executable, __file__, "--memory-probe", str(db)],
        capture_output=True,
        text=True,
        check=True,
    )
    increase = json.loads(probe.stdout.strip().splitlines()[-1])["increase"]
    columns_read = raw.execute(f"SELECT {', '.join(READ)} FROM snapshot").to_arrow_table().nbytes
    raw.close()
    con.disconnect()

    print(f"\n== {n:,} customers (snapshot-shaped, built in DuckDB in {t_build:.1f} s) ==")
    print(f"assign (Ibis)           {t_ibis:8.2f} s")
    print(
        f"hand-written DuckDB SQL {t_sql:8.2f} s   ratio assign/SQL {t_ibis / t_sql:.2f} (verbatim; results equal)"
    )
    print(
        f"optimised SQL           {t_opt:8.2f} s   ratio assign/optimised SQL {t_ibis / t_opt:.2f} (the kit's optimisations by hand; results equal)"
    )
    if t_polars is None:
        print("polars lazy (Parquet)       n/a   (pip install -e '.[bench]')")
    else:
        strongest = min(t_sql, t_opt, t_polars)
        print(
            f"polars lazy (Parquet)   {t_polars:8.2f} s   ratio polars/SQL {t_polars / t_sql:.2f}; "
            f"assign / strongest baseline {t_ibis / strongest:.2f} (results equal)"
        )
    print(
        f"row-wise apply          {t_apply:8.1f} s   (extrapolated from 100 000 rows)   ratio apply/assign {t_apply / t_ibis:,.0f} (target >= 100)"
    )
    print(
        f"RSS increase            {increase / 1e6:8.0f} MB  columns read {columns_read / 1e6:.0f} MB   ratio {increase / columns_read:.2f} (target < 3)"
    )
    print(
        "segments: "
        + ", ".join(
            f"{s} {c:,}"
            for s, c in zip(
                per_s.column("segment").to_pylist(),
                per_s.column("customers").to_pylist(),
                strict=True,
            )
        )
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-probe":
        memory_probe(sys.argv[2])
        return
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]
    print("Baseline (plain DuckDB SQL, one CASE WHEN ... GROUP BY):\n" + BASELINE_GROUP_BY)
    print("optimised (a CASE of codes, named after the fetch):\n" + OPTIMISED_GROUP_BY)
    print("and for customer_id + segment:\n" + BASELINE_ROWS)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as folder:
        for n in sizes:
            run_size(n, Path(folder))


if __name__ == "__main__":
    main()
