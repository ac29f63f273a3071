"""The one input adapter (engine.inputs): pandas, Arrow and Ibis tables of one backend."""

from __future__ import annotations

import os
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from collect_kit import engine, kpis, risk, schema, segmentation, sources
from collect_kit.errors import InvalidParameterError
from collect_kit.segmentation.rules import from_dict
from collect_kit.snapshot import snapshot

T0 = "2026-08-31"
SEGMENTS = Path(__file__).resolve().parents[1] / "src" / "collect_kit" / "configs" / "segments"


@pytest.fixture(scope="module")
def portfolio(sample_yaml, sample_db):
    """The 2 000-customer sample read from its DuckDB file (read-only)."""
    return sources.load(sample_yaml, database=sample_db)


def _file_tables(portfolio) -> list[str]:
    """The file connection's tables, without the month-end books engine.shared keeps."""
    return sorted(n for n in portfolio.connection.list_tables() if not n.startswith("ibis_cached"))


def test_readme_pattern_pandas_snapshot_with_file_payments_fits_like_all_pandas(portfolio, frames):
    """risk.fit(snapshot as pandas, portfolio.tables['payments'], as_of): the snapshot is
    loaded next to the file's tables, and the model equals the one fitted on pandas only."""
    before = _file_tables(portfolio)
    snap = snapshot(portfolio.tables, T0).to_pandas()
    mixed = risk.fit(snap, portfolio.tables["payments"], T0)
    plain = risk.fit(snapshot(frames, T0), frames["payments"], T0)
    assert mixed.rows == plain.rows > 100
    np.testing.assert_allclose(mixed.coefficients, plain.coefficients, rtol=1e-9)
    scored = risk.outcomes(mixed.score(snap), portfolio.tables["payments"], T0)
    assert len(scored) == mixed.rows and set(scored.paid) == {0.0, 1.0}
    assert _file_tables(portfolio) == before  # the loaded snapshot was dropped


def test_kpi_with_file_tables_and_pandas_groups_equals_all_pandas(portfolio, frames):
    snap = snapshot(frames, "2026-09-30")
    groups = snap[["customer_id"]].assign(
        segment=np.where(snap.overdue_balance > 0, "delinquent", "current")
    )
    before = _file_tables(portfolio)
    on_file = kpis.recovery_rate(portfolio.tables, "2026-10", by=["segment"], groups=groups)
    on_pandas = kpis.recovery_rate(frames, "2026-10", by=["segment"], groups=groups)
    pd.testing.assert_frame_equal(on_file, on_pandas, check_exact=False, rtol=1e-12)
    assert on_file.set_index("segment").loc["delinquent", "denominator"] > 0
    assert _file_tables(portfolio) == before


def test_segmentation_on_a_pandas_and_a_file_snapshot(portfolio):
    """compare() a pandas snapshot (August) with an engine one (October) of the same file."""
    rules = segmentation.load(SEGMENTS / "consumer.yaml")
    before = _file_tables(portfolio)
    august = snapshot(portfolio.tables, T0).to_pandas()
    october = snapshot(portfolio.tables, "2026-10-31")
    moved = segmentation.compare(rules, rules, august, october)
    assert moved.migration.customers.sum() == october.count().execute()
    on_pandas = segmentation.compare(rules, rules, august, october.to_pandas())
    pd.testing.assert_frame_equal(moved.migration, on_pandas.migration)
    assert _file_tables(portfolio) == before


def test_snapshot_of_pandas_without_optional_customer_columns(tiny):
    full = snapshot(tiny, "2025-03-31").set_index("customer_id")
    optional = ["company_size", "industry", "phone", "email", "name", "preferred_channel"]
    bare = {**tiny, "customers": tiny["customers"].drop(columns=optional)}
    for name in ("adjustments", "contacts", "scores"):
        del bare[name]  # optional tables absent too
    out = snapshot(bare, "2025-03-31").set_index("customer_id")
    assert list(out.columns) == list(full.columns)
    assert out.company_size.isna().all() and out.industry.isna().all()
    # features whose input is absent are null ("not available"), never 0 or false
    assert out.has_valid_phone.isna().all() and out.has_valid_email.isna().all()
    assert out.contact_attempts.isna().all() and out.score.isna().all()
    assert str(out.contact_attempts.dtype) == "Int64"
    pd.testing.assert_series_equal(out.customer_type, full.customer_type)
    # without adjustments, C's write-off is not applied: 500 - 100 (p5) - 30 (p6) open
    assert out.balance.to_dict() == {"A": 350.0, "B": 600.0, "C": 370.0}


def test_untyped_null_columns_get_the_canonical_type(tiny):
    customers = tiny["customers"].assign(
        region=pd.Series([None] * 4, dtype=object),
        open_dispute=pd.Series([None] * 4, dtype=object),
        customer_since=tiny["customers"].customer_since,
    )
    out = snapshot({**tiny, "customers": customers}, "2025-03-31")
    assert out.region.isna().all() and out.open_dispute.isna().all()
    arrow = pa.table({"customer_id": ["A"], "note": pa.nulls(1)})
    with engine.inputs({"x": arrow}) as t:
        assert t["x"].schema()["note"].is_string()


def test_arrow_inputs_give_arrow_results_equal_to_pandas(tiny):
    arrow = {
        name: pa.Table.from_pandas(frame, preserve_index=False) for name, frame in tiny.items()
    }
    out = snapshot(arrow, "2025-03-31")
    assert isinstance(out, pa.Table)
    got = out.to_pandas(date_as_object=False).astype({"score_at": "datetime64[s]"})
    pd.testing.assert_frame_equal(got, snapshot(tiny, "2025-03-31"), check_dtype=False)
    rules = from_dict(
        {"name": "t", "segments": [{"name": "Big", "when": {"column": "balance", "op": ">", "value": 400}}]}
    )  # fmt: skip
    reversed_rows = out.take(pa.array([2, 1, 0]))
    assigned = segmentation.assign(rules, reversed_rows)
    assert isinstance(assigned, pa.Table)
    assert assigned.column("customer_id").to_pylist() == ["C", "B", "A"]
    assert assigned.column("segment").to_pylist() == ["Default", "Big", "Default"]
    assert segmentation.profile(rules, out).customers.tolist() == [1, 2]


def test_ibis_tables_of_two_connections_are_refused_by_name(tiny):
    a, b = ibis.duckdb.connect(), ibis.duckdb.connect()
    tables = {
        **tiny,
        "receivables": a.create_table("receivables", tiny["receivables"]),
        "payments": b.create_table("payments", tiny["payments"]),
    }
    with pytest.raises(
        InvalidParameterError, match=r"tables\['receivables'\] and tables\['payments'\]"
    ):
        snapshot(tables, "2025-03-31")


def test_values_that_are_not_tables_and_missing_tables_are_named(tiny):
    with pytest.raises(InvalidParameterError, match="tables: expected a mapping .* got DataFrame"):
        snapshot(tiny["customers"], "2025-03-31")
    with pytest.raises(InvalidParameterError, match=r"tables\['payments'\]: expected .* got list"):
        snapshot({**tiny, "payments": [1, 2]}, "2025-03-31")
    with pytest.raises(
        InvalidParameterError, match="missing required table.* receivables, payments"
    ):
        snapshot({"customers": tiny["customers"]}, "2025-03-31")
    with pytest.raises(InvalidParameterError, match="snapshot: expected .* got None"):
        risk.fit(None, tiny["payments"], "2025-03-31")
    with pytest.raises(
        InvalidParameterError, match=r"tables\['payments'\]: missing required column.* paid_at"
    ):
        snapshot({**tiny, "payments": tiny["payments"].drop(columns="paid_at")}, "2025-03-31")


def test_loaded_tables_are_released_also_after_an_error():
    con = engine.session()
    before = sorted(con.list_tables())
    given = {"a": pd.DataFrame({"x": [1]}), "b": pa.table({"y": [2]})}
    with pytest.raises(RuntimeError), engine.inputs(given) as t:
        assert len(set(con.list_tables()) - set(before)) == 2
        assert t.backend is con and t.kind == "pandas"
        raise RuntimeError("boom")
    assert sorted(con.list_tables()) == before


def test_pandas_loaded_next_to_file_tables_goes_to_that_connection(portfolio):
    groups = pd.DataFrame({"customer_id": ["x"], "segment": ["s"]})
    given = {"payments": portfolio.tables["payments"], "groups": groups, "other": None}
    with engine.inputs(given, {"payments": schema.PAYMENTS, "groups": None}) as t:
        assert t.backend is portfolio.connection and t.kind == "pandas"
        assert sorted(t) == ["groups", "payments"]
        assert t["groups"].count().execute() == 1
        # a result built on a loaded table is not kept by engine.shared (it is dropped next)
        kept = len(engine._SHARED)
        expr = t["groups"].mutate(n=1)
        assert engine.shared(expr) is expr and len(engine._SHARED) == kept


def test_other_backends_receive_arrow_never_pandas():
    """A backend other than DuckDB gets Arrow (pandas would turn missing values into NaN,
    which is not NULL on Spark); Spark gets a temporary view of a DataFrame from Arrow."""
    seen = {}

    class Other:
        name = "other"

        def create_table(self, name, obj, temp=False):
            seen["other"] = (type(obj), temp, obj.column("x").null_count)
            return ibis.table({"x": "float64"}, name=name)

    class Spark:
        name = "pyspark"

        class _session:  # noqa: N801 - mimics the backend's attribute
            @staticmethod
            def createDataFrame(data):  # noqa: N802
                seen["pyspark"] = type(data)
                return type("DF", (), {"createOrReplaceTempView": lambda self, n: None})()

        def table(self, name):
            return ibis.table({"x": "float64"}, name=name)

    frame = pd.DataFrame({"x": [1.0, np.nan]})
    created: list[str] = []
    engine._load(Other(), frame, created)
    engine._load(Spark(), frame, created)
    assert seen == {"other": (pa.Table, True, 1), "pyspark": pa.Table}
    assert all(name.startswith(engine.LOADED_PREFIX) for name in created)


def test_shared_books_are_per_connection(sample_db):
    """Ibis compares connections by their parameters: a book kept on a connection now closed
    must not be handed to a new connection to the same file (its table is gone)."""
    from collect_kit.kpis import customer_balances

    first = engine.connect("duckdb", sample_db)
    tables = {"receivables": first.table("receivables"), "payments": first.table("payments"),
              "adjustments": first.table("adjustments")}  # fmt: skip
    with engine.inputs(tables, {n: schema.TABLES[n] for n in tables}) as t:
        expected = customer_balances(t, "2026-10-31").balance.sum().execute()
    engine.disconnect(first)
    second = engine.connect("duckdb", sample_db)
    tables = {n: second.table(n) for n in tables}
    with engine.inputs(tables, {n: schema.TABLES[n] for n in tables}) as t:
        again = customer_balances(t, "2026-10-31").balance.sum().execute()
    assert again == pytest.approx(expected, rel=1e-12)
    engine.disconnect(second)


def test_duckdb_settings_from_the_sources_yaml(tmp_path):
    """memory_limit, temp_directory (relative to the YAML) and threads reach the connection."""
    from collect_kit.errors import ConfigError
    from collect_kit.synth_parquet import write_sample

    written = write_sample(tmp_path / "book", 200, workers=0)
    text = written.sources.read_text()
    written.sources.write_text(
        text + "duckdb: {memory_limit: 512MB, temp_directory: spill, threads: 1}\n"
    )
    portfolio = sources.load(written.sources)
    con = portfolio.connection.con
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "").upper() in {"512.0MB", "488.2MIB", "512MB"}, limit
    spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    # a folder of the connection's own: DuckDB's spill files have the same names in every
    # process, so a report run and its kernels must not share one
    assert Path(spill).parent == written.folder / "spill" and Path(spill).is_dir()
    other = engine.connect(
        "duckdb", duckdb=engine.DuckDBConfig(temp_directory=str(Path(spill).parent))
    )
    assert other.con.execute("SELECT current_setting('temp_directory')").fetchone()[0] != spill
    other.disconnect()
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 1
    portfolio.close()
    written.sources.write_text(text + "duckdb: {memory_limit: lots}\n")
    with pytest.raises(ConfigError, match="memory_limit"):
        sources.load(written.sources)


def _gib(setting: str) -> float:
    """A DuckDB size setting ("11.2 GiB", "512.0 MiB") in GiB."""
    number, unit = setting.split()
    return float(number) * {"KiB": 2**-20, "MiB": 2**-10, "GiB": 1.0, "TiB": 2**10}[unit]


def test_duckdb_keeps_room_for_python_without_a_memory_limit(sample_yaml, sample_db):
    """Without ``duckdb: memory_limit`` every DuckDB connection of the kit may hold half
    of the machine's memory, not DuckDB's own 80 %: the Python process (and a report's
    kernel) needs the rest, and a machine without swap froze when both filled it."""
    import duckdb

    alone = duckdb.connect()  # DuckDB's own default: 80 % of the machine's memory
    machine = _gib(alone.execute("SELECT current_setting('memory_limit')").fetchone()[0]) / 0.8
    alone.close()
    portfolio = sources.load(sample_yaml, database=sample_db, validate=False)
    own = [portfolio.connection.con, engine.session().con, engine.connect().con]
    for con in own:
        limit = _gib(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        assert limit == pytest.approx(machine * engine.DUCKDB_MEMORY_SHARE, rel=0.02)
    # an analyst's own connection to the same file in the same process still opens
    mine = duckdb.connect(str(sample_db), read_only=True)
    assert mine.execute("SELECT count(*) FROM customers").fetchone()[0] > 0
    mine.close()
    portfolio.close()
    given = engine.connect("duckdb", sample_db, duckdb=engine.DuckDBConfig(memory_limit="700MB"))
    limit = given.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert _gib(limit) == pytest.approx(0.7 / 1.073741824, rel=0.01)
    # a limit from the YAML does not lock the analyst out either
    mine = duckdb.connect(str(sample_db), read_only=True)
    assert mine.execute("SELECT count(*) FROM customers").fetchone()[0] > 0
    mine.close()
    given.disconnect()


def test_a_containers_memory_limit_bounds_duckdbs(tmp_path, monkeypatch):
    """In a container, half of its memory limit (cgroup), not of the host's memory."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    limit = tmp_path / "memory.max"
    monkeypatch.setattr(engine, "_CGROUP_LIMITS", (str(limit), str(tmp_path / "absent")))
    limit.write_text("4294967296\n")  # a 4 GiB container
    assert engine.default_memory_limit() == "2048MiB"
    limit.write_text("max\n")  # no limit: the machine's
    assert engine.machine_memory() == physical
    limit.write_text(f"{physical * 4}\n")  # a limit above the machine's memory
    assert engine.machine_memory() == physical


def test_spark_folders_of_ended_processes_are_removed(tmp_path):
    # a kernel stopped after its grace period leaves its Spark folder (staged Parquet)
    import subprocess

    ended = subprocess.Popen(["true"])
    ended.wait()
    mine = tmp_path / f"collect_kit-spark-{os.getpid()}-a1"
    orphan = tmp_path / f"collect_kit-spark-{ended.pid}-b2"
    other = tmp_path / "collect_kit-spark-notapid"
    for folder in (mine, orphan, other):
        (folder / "staged").mkdir(parents=True)
    engine._remove_orphans(tmp_path)
    assert mine.exists() and other.exists() and not orphan.exists()
