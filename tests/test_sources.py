"""Loading and validation: every defect kind reported with file, column, count and examples."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from collect_kit import schema, sources, synth
from collect_kit.cli import app
from collect_kit.errors import ConfigError, DataValidationError
from collect_kit.snapshot import snapshot


@pytest.fixture(scope="module")
def base() -> dict[str, pd.DataFrame]:
    s = synth.generate(400, seed=4)
    return {k: s.frame(k) for k in s.tables}


def write_portfolio(
    folder: Path, frames: dict[str, pd.DataFrame], tables_cfg: dict | None = None, **settings
) -> Path:
    """Write each table as CSV (Parquet where the frame is marked) and a sources YAML."""
    cfg_tables = {}
    for name, df in frames.items():
        path = f"{name}.csv"
        df.to_csv(folder / path, index=False)
        cfg_tables[name] = {"path": path}
    for name, extra in (tables_cfg or {}).items():
        cfg_tables.setdefault(name, {}).update(extra)
    cfg = {
        "portfolio": "Test",
        "currency": "CLP",
        "extraction_date": "2026-10-31",
        **settings,
        "tables": cfg_tables,
    }
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return path


def problems(path: Path) -> list[sources.Problem]:
    with pytest.raises(DataValidationError) as info:
        sources.load(path)
    return info.value.report.problems


def only(found: list[sources.Problem], check: str) -> sources.Problem:
    hits = [p for p in found if p.check == check]
    assert len(hits) == 1, [str(p) for p in found]
    p = hits[0]
    # the readable message names the file, the column and the number of rows
    assert str(p).startswith(f"{p.file} [{p.table}.{p.column}] {check}: {p.rows} row(s)")
    return p


def copy(base):
    return {k: v.copy() for k, v in base.items()}


# ------------------------------------------------------------------------------ clean


def test_clean_sample_database_passes(sample_db, sample_yaml):
    portfolio = sources.load(sample_yaml, database=sample_db)
    assert portfolio.report.ok and portfolio.report.problems == []
    assert portfolio.currency == "CLP" and portfolio.score_higher_is == "safer"
    assert portfolio.extraction_date == pd.Timestamp("2026-10-31")
    assert set(portfolio.tables) == set(schema.TABLES) - {"extract"}
    n = portfolio.tables["customers"].count().execute()
    assert n == 2_000


def test_clean_csv_portfolio_passes_and_is_typed(tmp_path, base):
    path = write_portfolio(tmp_path, base)
    portfolio = sources.load(path)
    assert portfolio.report.ok
    types = portfolio.tables["receivables"].schema()
    assert types["issued_at"].is_date() and types["amount"].is_float64()
    assert portfolio.tables["customers"].schema()["open_dispute"].is_boolean()
    # the loaded tables feed the snapshot directly
    snap = snapshot(portfolio.tables, "2026-10-31").to_pandas()
    assert len(snap) == 400 and snap.balance.sum() > 0


# ----------------------------------------------------------------- one test per defect


def test_missing_column(tmp_path, base):
    f = copy(base)
    f["receivables"] = f["receivables"].drop(columns="due_at")
    p = only(problems(write_portfolio(tmp_path, f)), "missing_column")
    assert (p.file, p.table, p.column) == ("receivables.csv", "receivables", "due_at")
    assert "receivables.csv [receivables.due_at] missing_column" in str(p)


def test_wrong_type(tmp_path, base):
    f = copy(base)
    pay = f.pop("payments")
    pay["paid_at"] = 20250101  # an integer where a date is expected
    pay.to_parquet(tmp_path / "payments.parquet")
    path = write_portfolio(tmp_path, f, {"payments": {"path": "payments.parquet"}})
    p = only(problems(path), "wrong_type")
    assert (p.file, p.column, p.rows) == ("payments.parquet", "paid_at", len(pay))
    assert "a date" in p.expected and "int64" in p.expected


def test_unparsable_dates(tmp_path, base):
    f = copy(base)
    f["payments"]["paid_at"] = f["payments"]["paid_at"].astype(str)
    f["payments"].loc[[3, 7, 11], "paid_at"] = ["2025-13-45", "ayer", "31/02/2025"]
    p = only(problems(write_portfolio(tmp_path, f)), "unparsable_date")
    assert (p.file, p.column, p.rows) == ("payments.csv", "paid_at", 3)
    assert set(p.examples) == set(f["payments"].payment_id.iloc[[3, 7, 11]])


def test_numbers_with_a_decimal_comma(tmp_path, base):
    f = copy(base)
    f["receivables"]["amount"] = f["receivables"]["amount"].astype(str)
    f["receivables"].loc[[0, 1], "amount"] = ["1.234,50", "12,5"]
    p = only(problems(write_portfolio(tmp_path, f)), "not_a_number")
    assert (p.file, p.column, p.rows) == ("receivables.csv", "amount", 2)


def test_negative_amounts(tmp_path):
    s = synth.generate(400, seed=4, defects=["negative_amounts"])
    p = only(
        problems(write_portfolio(tmp_path, {k: s.frame(k) for k in s.tables})), "negative_amount"
    )
    assert (p.file, p.column, p.rows) == ("payments.csv", "amount", 6)
    assert set(p.examples) == set(s.truth.defects["negative_amounts"][:5]) or set(
        p.examples
    ) <= set(s.truth.defects["negative_amounts"])
    assert "adjustment of kind reversal" in p.expected


def test_due_before_issue(tmp_path, base):
    f = copy(base)
    r = f["receivables"]
    r.loc[[5, 6], "due_at"] = r.loc[[5, 6], "issued_at"] - pd.Timedelta(days=3)
    p = only(problems(write_portfolio(tmp_path, f)), "due_at_before_issued_at")
    assert (p.file, p.column, p.rows) == ("receivables.csv", "due_at", 2)
    assert set(p.examples) == set(r.receivable_id.iloc[[5, 6]])


def test_duplicated_ids(tmp_path):
    s = synth.generate(400, seed=4, defects=["duplicate_ids"])
    p = only(
        problems(write_portfolio(tmp_path, {k: s.frame(k) for k in s.tables})), "duplicated_key"
    )
    assert (p.file, p.column, p.rows) == ("payments.csv", "payment_id", 6)
    assert set(p.examples) == set(s.truth.defects["duplicate_ids"])


def test_a_key_of_several_columns_repeats_only_when_all_of_them_do(tmp_path, base):
    """scores are keyed by customer, date and source together: a row repeated in all
    three is a duplicate; rows that differ in one of them are not."""
    f = copy(base)
    sc = f["scores"]
    other_source = sc.iloc[[1]].assign(source=sc.source.iloc[1] + "_b")
    other_day = sc.iloc[[2]].assign(scored_at=sc.scored_at.iloc[2] - pd.Timedelta(days=1))
    f["scores"] = pd.concat([sc, sc.iloc[[0]], other_source, other_day], ignore_index=True)
    p = only(problems(write_portfolio(tmp_path, f)), "duplicated_key")
    assert (p.file, p.column, p.rows) == ("scores.csv", "customer_id+scored_at+source", 2)
    assert "1 value(s) repeated" in p.expected


def test_a_duplicated_parent_key_does_not_multiply_the_rows_that_reference_it(tmp_path, base):
    # a parent key found unique is joined as it is; a repeated one is made distinct
    # first, or each payment of that receivable would be counted twice
    f = copy(base)
    pay = f["payments"]
    twice = pay.receivable_id.dropna().iloc[0]
    r = f["receivables"]
    f["receivables"] = pd.concat([r, r[r.receivable_id == twice]], ignore_index=True)
    of_twice = pay.receivable_id == twice
    pay.loc[of_twice, "amount"] = -pay.loc[of_twice, "amount"]
    pay.loc[pay.index[~of_twice][:2], "receivable_id"] = "RC999999999"
    found = problems(write_portfolio(tmp_path, f))
    assert only(found, "duplicated_key").rows == 2
    assert only(found, "negative_amount").rows == of_twice.sum() >= 1
    orphans = [p for p in found if p.check == "unknown_reference" and p.column == "receivable_id"]
    assert [(p.file, p.rows) for p in orphans] == [("payments.csv", 2)]


def test_orphan_payments_contacts_and_adjustments(tmp_path):
    s = synth.generate(400, seed=4, defects=["orphan_payments"])
    f = {k: s.frame(k) for k in s.tables}
    f["contacts"].loc[[0, 1], "customer_id"] = "CU9999999ZZ"
    f["adjustments"].loc[[0], "receivable_id"] = "RC999999999"
    found = [p for p in problems(write_portfolio(tmp_path, f)) if p.check == "unknown_reference"]
    got = {(p.file, p.column): p for p in found}
    assert got[("payments.csv", "customer_id")].rows == 4
    assert set(got[("payments.csv", "customer_id")].examples) == set(
        s.truth.defects["orphan_payments"]
    )
    assert got[("contacts.csv", "customer_id")].rows == 2
    assert got[("adjustments.csv", "receivable_id")].rows == 1
    assert "present in customers" in got[("payments.csv", "customer_id")].expected


def test_events_after_extraction_date_but_not_due_dates(tmp_path, base):
    f = copy(base)
    f["payments"].loc[[1, 2], "paid_at"] = pd.Timestamp("2027-01-15")
    # due dates and promise due dates are future-dated by nature: never flagged
    assert (pd.to_datetime(f["receivables"].due_at) > pd.Timestamp("2026-10-31")).any()
    f["contacts"].loc[f["contacts"].outcome == "promise", "promise_due"] = pd.Timestamp(
        "2027-02-01"
    )
    found = problems(write_portfolio(tmp_path, f))
    p = only(found, "after_extraction_date")
    assert (p.file, p.column, p.rows) == ("payments.csv", "paid_at", 2)
    assert "2026-10-31" in p.expected


def test_unknown_codes_and_the_value_mapping(tmp_path, base):
    f = copy(base)
    f["contacts"].loc[[0, 1, 2], "channel"] = "telegram"
    f["contacts"].loc[[3, 4], "channel"] = "llamada"  # mapped below, so fine
    path = write_portfolio(tmp_path, f, {"contacts": {"values": {"channel": {"llamada": "call"}}}})
    p = only(problems(path), "unknown_code")
    assert (p.file, p.column, p.rows) == ("contacts.csv", "channel", 3)
    assert "one of sms, email" in p.expected


def test_mixed_currencies(tmp_path, base):
    f = copy(base)
    f["receivables"].loc[:4, "currency"] = "USD"
    p = only(problems(write_portfolio(tmp_path, f)), "mixed_currencies")
    assert (p.file, p.column, p.rows) == ("receivables.csv", "currency", 5)
    assert "CLP" in p.expected


def test_missing_required_table(tmp_path, base):
    f = copy(base)
    del f["payments"]
    p = only(problems(write_portfolio(tmp_path, f)), "missing_table")
    assert p.table == "payments"


def test_every_problem_reported_at_once(tmp_path):
    s = synth.generate(
        400, seed=4, defects=["negative_amounts", "duplicate_ids", "orphan_payments"]
    )
    f = {k: s.frame(k) for k in s.tables}
    f["receivables"].loc[:1, "currency"] = "EUR"
    with pytest.raises(DataValidationError) as info:
        sources.load(write_portfolio(tmp_path, f))
    checks = {p.check for p in info.value.report.problems}
    assert {"negative_amount", "duplicated_key", "unknown_reference", "mixed_currencies"} <= checks
    text = str(info.value)
    assert text.startswith("Validation failed") and "payments.csv [payments.amount]" in text
    frame = info.value.report.to_frame()
    assert list(frame.columns) == [
        "table",
        "file",
        "column",
        "check",
        "rows",
        "expected",
        "examples",
    ]


# ----------------------------------------------------------------------- mapping & info


def test_user_names_and_codes_are_mapped(tmp_path, base):
    f = copy(base)
    c = f["customers"].rename(
        columns={"customer_id": "rut", "customer_type": "tipo", "customer_since": "fecha_alta"}
    )
    c["tipo"] = c["tipo"].map({"person": "persona", "company": "empresa"})
    c["ejecutivo"] = "x"  # an extra column: information, not an error
    f["customers"] = c
    path = write_portfolio(
        tmp_path,
        f,
        {
            "customers": {
                "columns": {
                    "customer_id": "rut",
                    "customer_type": "tipo",
                    "customer_since": "fecha_alta",
                },
                "values": {"customer_type": {"persona": "person", "empresa": "company"}},
            }
        },
    )
    portfolio = sources.load(path)
    got = portfolio.frame("customers")
    assert set(got.customer_type) == {"person", "company"}
    assert got.customer_id.tolist() == base["customers"].customer_id.tolist()
    info = [i for i in portfolio.report.info if "unmapped" in i]
    assert info == ["customers.csv: unmapped columns ignored: ejecutivo"]


def test_optional_columns_and_tables_may_be_absent(tmp_path, base):
    f = copy(base)
    f["contacts"] = f["contacts"].drop(columns=["cost"])
    del f["scores"], f["adjustments"]
    portfolio = sources.load(write_portfolio(tmp_path, f))
    # absent tables and columns are left out and listed with what they disable
    assert "adjustments" not in portfolio.tables and "scores" not in portfolio.tables
    assert "cost" not in portfolio.tables["contacts"].columns
    assert {"adjustments", "scores", "contacts.cost"} <= set(portfolio.absent)
    assert not {"contacts", "customers.phone", "payments.receivable_id"} & set(portfolio.absent)
    assert "cost to collect" in portfolio.absent["contacts.cost"]
    assert any(i.startswith("contacts.cost: not provided") for i in portfolio.report.info)


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "change, message",
    [
        ({"currency": "pesos"}, "currency"),
        ({"tables": {"clients": {"path": "x.csv"}}}, "'clients' is not a canonical table"),
        (
            {"tables": {"customers": {"columns": {"rut": "rut"}}}},
            "'rut' is not a column of customers",
        ),
        (
            {"tables": {"customers": {"values": {"region": {"RM": "Metropolitana"}}}}},
            "not a categorical column",
        ),
        ({"score": {"higher_is": "better"}}, "score.higher_is"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_config_errors_name_file_and_field(tmp_path, change, message):
    cfg = {"portfolio": "T", "currency": "CLP", **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as info:
        sources.read_config(path)
    assert "bad.yaml" in str(info.value) and message in str(info.value)


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("portfolio: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml: not valid YAML"):
        sources.read_config(path)


# ------------------------------------------------------------------------------- CLI


def test_cli_validate_exit_codes(tmp_path, base, sample_db, sample_yaml):
    runner = CliRunner()
    ok = runner.invoke(
        app, ["validate", "--sources", str(sample_yaml), "--database", str(sample_db)]
    )
    assert ok.exit_code == 0, ok.output
    assert "Validation passed: 0 problems." in ok.output
    f = copy(base)
    f["receivables"].loc[:2, "currency"] = "USD"
    bad = runner.invoke(app, ["validate", "--sources", str(write_portfolio(tmp_path, f))])
    assert bad.exit_code == 2
    assert "receivables.csv [receivables.currency] mixed_currencies: 3 row(s)" in bad.output
    missing = runner.invoke(app, ["validate", "--sources", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_checks_off_skips_value_scans_but_not_structure(tmp_path, base):
    s = synth.generate(400, seed=4, defects=["negative_amounts", "duplicate_ids"])
    config = write_portfolio(tmp_path, {k: s.frame(k) for k in s.tables})
    with pytest.raises(DataValidationError):
        sources.load(config)
    quick = sources.load(config, checks=False)
    assert quick.report.ok and not quick.report.checked
    assert quick.tables["payments"].count().execute() == len(s.frame("payments"))
    # a missing column is structural: still found without the value checks
    f = {k: s.frame(k) for k in s.tables}
    f["payments"] = f["payments"].drop(columns="amount")
    (tmp_path / "b").mkdir()
    broken = write_portfolio(tmp_path / "b", f)
    report = sources.load(broken, validate=False, checks=False).report
    assert [(p.table, p.column, p.check) for p in report.problems] == [
        ("payments", "amount", "missing_column")
    ]


def test_reported_balances_that_differ_are_warned_about_exactly(tmp_path, base):
    from collect_kit.snapshot import allocate

    f = copy(base)
    extraction = pd.Timestamp("2026-10-31")
    balances = allocate(*(ibis.memtable(f[n]) for n in ("receivables", "payments", "adjustments")),
                        extraction).balances().to_pandas().set_index("receivable_id").balance  # fmt: skip
    r = f["receivables"].copy()
    r["saldo"] = r.receivable_id.map(balances)
    open_ids = r[r.saldo > 10].receivable_id.tolist()
    wrong = {open_ids[3]: +5.0, open_ids[7]: -2.5}
    for rid, delta in wrong.items():
        r.loc[r.receivable_id == rid, "saldo"] += delta
    r.loc[r.receivable_id == open_ids[9], "saldo"] += 0.75  # within 1 unit: not reported
    f["receivables"] = r
    path = write_portfolio(tmp_path, f, {"receivables": {"columns": {"reported_balance": "saldo"}}})
    portfolio = sources.load(path)  # a warning, not a problem
    [w] = portfolio.report.warnings
    assert (w.column, w.check, w.rows) == ("reported_balance", "reported_balance_differs", 2)
    assert set(w.examples) == set(wrong)
    assert "7.50 CLP" in w.expected
    assert "Warnings:" in portfolio.report.text()


# ------------------------------------------------------------- snapshots of a portfolio


def test_a_portfolio_computes_each_snapshot_once_and_equal_to_the_function(sources_yaml):
    p = sources.load(sources_yaml, checks=False)
    try:
        when = pd.Timestamp("2026-09-30")
        assert p.snapshot(when) is p.snapshot("2026-09-30")  # kept, not computed again
        fresh = snapshot(p.tables, when, **p.snapshot_options)
        a = p.snapshot(when).to_pandas().sort_values("customer_id", ignore_index=True)
        b = fresh.to_pandas().sort_values("customer_id", ignore_index=True)
        pd.testing.assert_frame_equal(a, b)
        del fresh  # it reads the date's kept allocation: dropped before the connection
    finally:
        p.close()
    assert not p._snapshots  # closing drops them with the connection


def test_a_snapshot_computed_in_parts_of_customers_is_the_snapshot(sources_yaml, monkeypatch):
    """A book of more than twice ``PART_CUSTOMERS`` customers is computed one range of
    customers at a time into Parquet files; the result is the same snapshot."""
    from collect_kit import engine, kpis
    from collect_kit import snapshot as snapshot_module
    from collect_kit.snapshot import customer_ranges

    p = sources.load(sources_yaml, checks=False)
    try:
        when = pd.Timestamp("2026-09-30")
        n = p.tables["customers"].count().to_pyarrow().as_py()
        third = -(-n // 3)
        ranges = customer_ranges(p.tables, per_part=third)
        assert len(ranges) == 3 and ranges[0][0] is None and ranges[-1][1] is None
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # no gap
        assert customer_ranges(p.tables, per_part=n) == [(None, None)]
        # up to twice a part's customers: one query (faster than two parts)
        assert customer_ranges(p.tables, per_part=-(-n // 2)) == [(None, None)]
        assert len(customer_ranges(p.tables, per_part=n // 2 - 1)) == 3
        whole = snapshot(p.tables, when, **p.snapshot_options).to_pandas()
        engine.release_shared()
        books = {n: r.to_pandas() for n, r in kpis.results_beside(p.tables, when).items()}
        engine.release_shared()
        monkeypatch.setattr(snapshot_module, "PART_CUSTOMERS", third)
        monkeypatch.setattr(snapshot_module, "_RANGES", {})
        allocated = []
        real = snapshot_module.allocate
        monkeypatch.setattr(snapshot_module, "allocate", lambda *a: allocated.append(a) or real(*a))
        parted = p.snapshot(when)
        assert parted.get_name().startswith("ibis_read_parquet")
        scratch = engine.scratch_folder(p.connection)
        assert len(list(scratch.glob("parts-*/snapshot-*/part-*.parquet"))) == 3
        a = parted.to_pandas().sort_values("customer_id", ignore_index=True)
        b = whole.sort_values("customer_id", ignore_index=True)
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
        assert len(a) == len(whole) > n / 2
        # the date's books were written with the snapshot's parts, from each part's
        # allocation: one allocation per part, none more to read them
        kept = kpis.results_beside(p.tables, when)
        assert len(allocated) == 3
        for name, frame in books.items():
            assert len(list(scratch.glob(f"parts-*/{name}-*/part-*.parquet"))) == 3
            got = kept[name].to_pandas().sort_values(list(frame.columns), ignore_index=True)
            want = frame.sort_values(list(frame.columns), ignore_index=True)
            pd.testing.assert_frame_equal(got, want, check_dtype=False)
        del kept, parted
    finally:
        p.close()
        engine.release_shared()


def snapshot_and_books_alone(portfolio, when) -> dict:
    """The snapshot, month-end book and open receivables of ``portfolio`` as of ``when``,
    each computed on its own from the events (nothing kept before), as pandas frames."""
    from collect_kit import engine, kpis

    engine.release_shared()
    out = {"snapshot": snapshot(portfolio.tables, when, **portfolio.snapshot_options).to_pandas()}
    return out | {n: r.to_pandas() for n, r in kpis.results_beside(portfolio.tables, when).items()}


def assert_snapshot_and_books(portfolio, when, want: dict) -> None:
    """``portfolio``'s snapshot, month-end book and open receivables as of ``when`` equal
    ``want`` (by name, pandas frames computed another way), row for row to 1e-12."""
    from collect_kit import kpis

    got = {"snapshot": portfolio.snapshot(when).to_pandas()}
    got |= {n: r.to_pandas() for n, r in kpis.results_beside(portfolio.tables, when).items()}
    assert set(got) == set(want)
    for name, frame in want.items():
        keys = list(frame.columns) if name == "open_receivables" else ["customer_id"]
        a = got[name].sort_values(keys, ignore_index=True)[list(frame.columns)]
        b = frame.sort_values(keys, ignore_index=True)
        assert len(b) > 100, name
        pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("parts", [1, 3])
def test_snapshots_of_several_dates_computed_together_are_each_dates_snapshot(
    sources_yaml, monkeypatch, parts
):
    """A report run's month ends share one allocation (in parts: one per part, each part
    writing every date's snapshot and books); each date's snapshot and books equal those
    of that date computed alone."""
    from collect_kit import engine
    from collect_kit import snapshot as snapshot_module

    dates = [pd.Timestamp(d) for d in ("2026-10-31", "2026-08-31", "2026-09-30")]
    p = sources.load(sources_yaml, checks=False)
    try:
        alone = {when: snapshot_and_books_alone(p, when) for when in dates}
        engine.release_shared()
        if parts > 1:
            n = p.tables["customers"].count().to_pyarrow().as_py()
            monkeypatch.setattr(snapshot_module, "PART_CUSTOMERS", -(-n // parts))
            monkeypatch.setattr(snapshot_module, "_RANGES", {})
        calls = {"wide": [], "one date": 0}
        real_wide, real_one = snapshot_module._wide_allocation, snapshot_module.allocate

        def wide(*a):
            calls["wide"].append(a[-1])
            return real_wide(*a)

        def one(*a):
            calls["one date"] += 1
            return real_one(*a)

        monkeypatch.setattr(snapshot_module, "_wide_allocation", wide)
        monkeypatch.setattr(snapshot_module, "allocate", one)
        p.compute_snapshots(dates)
        assert calls["one date"] == 0 and len(calls["wide"]) == parts
        assert all(sorted(d) == sorted(dates) for d in calls["wide"])
        for when in dates:
            assert_snapshot_and_books(p, when, alone[when])
        assert calls["one date"] == 0  # nothing allocated again for the books
    finally:
        p.close()
        engine.release_shared()


def test_a_cached_snapshot_file_is_what_the_portfolio_reads_from_then_on(
    sources_yaml, tmp_path, monkeypatch
):
    import logging

    from collect_kit.reports.cache import cached_snapshots

    monkeypatch.setenv("COLLECT_KIT_CACHE", str(tmp_path / "cache"))
    p = sources.load(sources_yaml, checks=False)
    try:
        when = pd.Timestamp("2026-10-31")
        path = cached_snapshots(p, "key", [when], logging.getLogger())[when]
        whole = pd.read_parquet(path)
        # a file of ten customers with a p_pay column stands in for the cache's
        whole.head(10).assign(p_pay=0.5).to_parquet(path)
        p.read_snapshots({str(when.date()): path})
        read = p.snapshot(when).to_pandas()
        assert len(read) == 10 and len(whole) > 10
        assert "p_pay" not in read.columns  # a segmentation's model adds its own
        assert p.snapshot("2026-09-30").count().execute() > 10  # other dates computed
    finally:
        p.close()


def test_the_books_cached_beside_a_snapshot_are_what_the_kpis_read(
    sources_yaml, tmp_path, monkeypatch
):
    """The runner writes each snapshot date's month-end book and open receivables beside
    the snapshot; a portfolio given the snapshot file (a notebook kernel) reads them from
    there, and its KPIs and receivable aging equal those computed from the events."""
    import logging

    from collect_kit import engine, kpis
    from collect_kit.reports.cache import cached_snapshots

    monkeypatch.setenv("COLLECT_KIT_CACHE", str(tmp_path / "cache"))
    when = pd.Timestamp("2026-10-31")
    p = sources.load(sources_yaml, checks=False)
    engine.release_shared()
    try:
        path = cached_snapshots(p, "key", [when], logging.getLogger())[when]
        # the runner is done with the date's allocation once its files are written
        assert not [key for key in engine._BUILT if key[0] == "allocation"]
        computed = kpis.compute(p.tables, "2026-10", ["overdue_ratio", "cure_rate"])
        aging = kpis.aging_receivables(p.tables, when)
    finally:
        p.close()
    beside = kpis.files_beside(path)
    book = beside["month_end_book"]
    assert all(f.exists() for f in beside.values())
    on_file = pd.read_parquet(book)
    kernel = sources.load(sources_yaml, checks=False)  # another process's portfolio
    try:
        kernel.read_snapshots({when: path})
        read = kpis.results_beside(kernel.tables, when)
        assert all(r.get_name().startswith("ibis_read_parquet") for r in read.values())
        assert read["month_end_book"].count().execute() == len(on_file) > 100
        pd.testing.assert_frame_equal(
            kpis.compute(kernel.tables, "2026-10", ["overdue_ratio", "cure_rate"]), computed
        )
        pd.testing.assert_frame_equal(kpis.aging_receivables(kernel.tables, when), aging)
        del read
    finally:
        kernel.close()
        engine.release_shared()
    # a book on file that differs shows in the KPIs: the file is what they read
    on_file.assign(overdue_balance=on_file.overdue_balance * 2).to_parquet(book)
    open_ = pd.read_parquet(beside["open_receivables"])
    open_.assign(balance=open_.balance * 2).to_parquet(beside["open_receivables"])
    kernel = sources.load(sources_yaml, checks=False)
    try:
        kernel.read_snapshots({when: path})
        changed = kpis.compute(kernel.tables, "2026-10", ["overdue_ratio"]).value.iloc[0]
        assert changed == pytest.approx(2 * computed.value.iloc[0])
        doubled = kpis.aging_receivables(kernel.tables, when)
        np.testing.assert_allclose(doubled.numerator, 2 * aging.numerator)
    finally:
        kernel.close()
        engine.release_shared()


@pytest.mark.parametrize("parts", [1, 3])
def test_a_run_caches_snapshots_computed_in_parts_by_moving_their_files(
    sources_yaml, tmp_path, monkeypatch, parts
):
    """Snapshots and books computed in parts are cached by moving their part files into
    the cache (a folder per result) rather than writing them again; one part is cached
    as one file. Either way a kernel reads the dates' snapshots and books from the cache,
    equal to those computed from the events, and a second run computes nothing."""
    import logging

    from collect_kit import engine, kpis
    from collect_kit import snapshot as snapshot_module
    from collect_kit.reports.cache import cached_snapshots

    monkeypatch.setenv("COLLECT_KIT_CACHE", str(tmp_path / "cache"))
    dates = [pd.Timestamp(d) for d in ("2026-10-31", "2026-09-30")]
    p = sources.load(sources_yaml, checks=False)
    try:
        want = {when: snapshot_and_books_alone(p, when) for when in dates}
        engine.release_shared()
        n = p.tables["customers"].count().to_pyarrow().as_py()
        monkeypatch.setattr(snapshot_module, "PART_CUSTOMERS", -(-n // parts))
        monkeypatch.setattr(snapshot_module, "_RANGES", {})
        paths = cached_snapshots(p, "key", dates, logging.getLogger())
    finally:
        p.close()
        engine.release_shared()
    scratch = engine.scratch_folder(p.connection)
    assert not list(scratch.glob("parts-*/*/part-*.parquet"))  # moved, not copied
    kernel = sources.load(sources_yaml, checks=False)  # another process's portfolio
    try:
        kernel.read_snapshots(paths)
        for when, path in paths.items():
            entries = {"snapshot": path, **kpis.files_beside(path)}
            for name, entry in entries.items():
                if parts == 1:
                    assert entry.is_file(), name
                else:
                    assert entry.is_dir() and len(list(entry.glob("part-*.parquet"))) == 3, name
            assert_snapshot_and_books(kernel, when, want[when])
        monkeypatch.setattr(kernel, "compute_snapshots", lambda *a: pytest.fail("computed"))
        assert cached_snapshots(kernel, "key", dates, logging.getLogger()) == paths
    finally:
        kernel.close()
        engine.release_shared()
