"""Books without event history: a hand-made two-month extract, figures worked by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from collect_kit import kpis, sources
from collect_kit.errors import DataValidationError
from collect_kit.snapshot import snapshot

JAN, FEB = "2025-01-31", "2025-02-28"

#: account, customer, date, balance, overdue, dpd, oldest due, status, opened, branch
ROWS = [
    ("a1", "X", JAN, 100, "", 0, "", "current", "2024-06-01", "N"),
    ("a2", "X", JAN, 50, 20, 45, "", "delinquent", "2024-07-01", "S"),
    ("a3", "Y", JAN, 200, "", 10, "", "delinquent", "2024-08-01", "N"),
    ("a4", "Z", JAN, 300, "", 0, "", "current", "2024-09-01", "E"),
    ("a5", "W", JAN, 80, "", 100, "", "delinquent", "2024-05-01", "E"),
    ("a1", "X", FEB, 90, "", 0, "", "current", "2024-06-01", "N"),
    ("a2", "X", FEB, 50, 40, 73, "", "delinquent", "2024-07-01", "S"),
    ("a3", "Y", FEB, 0, "", 0, "", "paid_off", "2024-08-01", "N"),
    ("a4", "Z", FEB, 300, "", "", "2025-02-23", "delinquent", "2024-09-01", "E"),
    ("a5", "W", FEB, 80, "", 100, "", "castigo", "2024-05-01", "E"),
    ("a6", "V", FEB, 60, "", 0, "", "current", "2025-02-10", "S"),
]
COLUMNS = ["cuenta", "cliente", "fecha", "saldo", "vencido", "dias", "vence", "estado",
           "apertura", "sucursal"]  # fmt: skip


def write_extract(folder, rows=ROWS, **top) -> str:
    pd.DataFrame(rows, columns=COLUMNS).to_csv(folder / "cartera.csv", index=False)
    cfg = {
        "portfolio": "Cartera", "currency": "CLP", **top,
        "tables": {"extract": {
            "path": "cartera.csv",
            "columns": {"account_id": "cuenta", "customer_id": "cliente", "extracted_at": "fecha",
                        "balance": "saldo", "overdue_amount": "vencido", "days_past_due": "dias",
                        "oldest_due_at": "vence", "status": "estado", "issued_at": "apertura"},
            "values": {"status": {"castigo": "written_off"}},
            "extra": {"sucursal": {"type": "string", "rollup": "balance_weighted_mode",
                                   "as": "branch"}},
        }},
    }  # fmt: skip
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture
def book(tmp_path):
    portfolio = sources.load(write_extract(tmp_path))
    yield portfolio
    portfolio.close()


def test_an_extract_validates_without_event_tables(book):
    assert book.report.ok
    assert {"customers", "receivables", "payments"} <= set(book.absent)
    assert book.extraction_date == pd.Timestamp(FEB)  # the newest extract
    assert "receivables" not in book.tables and "extract" in book.tables


def test_aging_and_overdue_ratio_by_hand(book):
    jan = kpis.aging(book.tables, JAN).set_index("dpd_bucket")
    assert jan.numerator.to_dict() == {
        "current": 300.0, "1-30": 200.0, "31-60": 150.0, "61-90": 0.0, "91-180": 80.0,
        "181-360": 0.0, "361+": 0.0,
    }  # fmt: skip
    feb = kpis.aging(book.tables, FEB).set_index("dpd_bucket")
    # Y paid off, W written off (off the book); Z's dpd from its oldest due date (5 days)
    assert feb.numerator[feb.numerator > 0].to_dict() == {"current": 60.0, "1-30": 300.0,
                                                          "61-90": 140.0}  # fmt: skip
    assert feb.customers.sum() == 3
    over = kpis.overdue_ratio(book.tables, "2025-01")
    assert over.value.iloc[0] == pytest.approx((20 + 200 + 80) / 730)
    over = kpis.overdue_ratio(book.tables, "2025-02")
    assert over.value.iloc[0] == pytest.approx((40 + 300) / 500)


def test_roll_rates_between_consecutive_extracts_by_hand(book):
    rolls = kpis.roll_rates(book.tables, "2025-02")
    moves = {(r.from_bucket, r.to_state): r.customers for r in rolls.itertuples()}
    assert moves == {
        ("current", "1-30"): 1,  # Z
        ("1-30", "paid_off"): 1,  # Y
        ("31-60", "61-90"): 1,  # X
        ("91-180", "written_off"): 1,  # W
    }


def test_kpis_that_need_dated_events_are_not_available(book):
    for name in ("recovery_rate", "payer_rate", "collected", "dso", "cei", "contact_rate"):
        out = kpis.REGISTRY[name].function(book.tables, "2025-02")
        assert out.note.iloc[0].startswith("not available"), name
        assert np.isnan(out.value.iloc[0]), name
    assert (
        kpis.recovery_rate(book.tables, "2025-02").note.iloc[0]
        == "not available: no dated payments"
    )


def test_concentration_by_hand(book):
    c = kpis.concentration(book.tables, FEB, tops=(0.2, 0.5, 1.0))
    shares = c.dropna(subset=["top"]).set_index("top")
    # owing: Z 300, X 140, V 60 (500); top 20 % = 1 debtor, 50 % = 2, 100 % = 3
    assert shares.customers.to_dict() == {0.2: 1, 0.5: 2, 1.0: 3}
    assert shares.value.to_dict() == pytest.approx({0.2: 0.6, 0.5: 0.88, 1.0: 1.0})
    hhi = c[c.top.isna()].value.iloc[0]
    assert hhi == pytest.approx(0.6**2 + 0.28**2 + 0.12**2)


def test_snapshot_of_an_extract(book):
    snap = snapshot(book.tables, FEB, fields=book.fields).to_pandas().set_index("customer_id")
    assert sorted(snap.index) == ["V", "W", "X", "Y", "Z"]
    x = snap.loc["X"]
    assert (x.balance, x.overdue_balance, x.current_balance) == (140.0, 40.0, 100.0)
    assert (x.open_receivables, x.overdue_receivables, x.max_days_past_due) == (2, 1, 73)
    assert x.dpd_bucket == "61-90" and x.weighted_days_past_due == 73
    assert snap.loc["W", "balance"] == 0  # written off: off the book
    assert snap.loc["V", "tenure_days"] == 18 and snap.loc["V", "is_new"]
    # branch: X owes 90 in N and 50 in S; Z only E; Y owes nothing
    assert snap.loc["X", "branch"] == "N" and snap.loc["Z", "branch"] == "E"
    assert pd.isna(snap.loc["Y", "branch"])
    # what needs dated events is null, not 0
    assert snap.payments.isna().all() and snap.avg_days_late.isna().all()
    assert snap.contact_attempts.isna().all()


def test_one_extract_without_a_date_column_takes_the_extraction_date(tmp_path):
    rows = [r for r in ROWS if r[2] == FEB]
    path = write_extract(tmp_path, rows, extraction_date=FEB)
    cfg = yaml.safe_load(Path(path).read_text())
    del cfg["tables"]["extract"]["columns"]["extracted_at"]
    del cfg["tables"]["extract"]["columns"]["customer_id"]
    frame = pd.read_csv(tmp_path / "cartera.csv").drop(columns=["fecha", "cliente"])
    frame.to_csv(tmp_path / "cartera.csv", index=False)
    Path(path).write_text(yaml.safe_dump(cfg))
    portfolio = sources.load(path)
    snap = snapshot(portfolio.tables, FEB).to_pandas()
    # without customer_id every account is its own customer
    assert sorted(snap.customer_id) == ["a1", "a2", "a3", "a4", "a5", "a6"]
    portfolio.close()


def test_bad_extract_rows_are_reported(tmp_path):
    rows = [*ROWS, ("a1", "X", FEB, 10, "", 0, "", "current", "2024-06-01", "N")]
    rows[0] = ("a1", "X", JAN, -5, "", 0, "", "current", "2024-06-01", "N")
    with pytest.raises(DataValidationError) as err:
        sources.load(write_extract(tmp_path, rows))
    found = {(p.column, p.check) for p in err.value.report.problems}
    assert found == {("balance", "negative_amount"), ("account_id+extracted_at", "duplicated_key")}


def test_delinquency_inflow_by_hand(book):
    # February: Z moves from current to 1-30 (300 owed); X was already delinquent
    assert kpis.delinquency_inflow(book.tables, "2025-02").value.iloc[0] == 300.0
    assert kpis.delinquency_inflow_customers(book.tables, "2025-02").value.iloc[0] == 1.0


def test_one_configured_list_of_dpd_buckets_drives_everything(tmp_path):
    portfolio = sources.load(write_extract(tmp_path, dpd_buckets=[0, 15, 60]))
    b = portfolio.dpd_buckets
    assert b.labels == ("current", "1-15", "16-60", "61+")
    jan = kpis.aging(portfolio.tables, JAN, buckets=b).set_index("dpd_bucket").numerator
    assert jan.to_dict() == {"current": 300.0, "1-15": 200.0, "16-60": 150.0, "61+": 80.0}
    rolls = kpis.roll_rates(portfolio.tables, "2025-02", buckets=b)
    moves = {(r.from_bucket, r.to_state) for r in rolls.itertuples()}
    assert moves == {("current", "1-15"), ("1-15", "paid_off"), ("16-60", "61+"),
                     ("61+", "written_off")}  # fmt: skip
    snap = snapshot(portfolio.tables, FEB, **portfolio.snapshot_options).to_pandas()
    assert snap.set_index("customer_id").dpd_bucket.to_dict() == {
        "V": "current", "W": "current", "X": "61+", "Y": "current", "Z": "1-15"}  # fmt: skip
    assert kpis.delinquency_inflow(portfolio.tables, "2025-02", buckets=b).value.iloc[0] == 300
    cure = kpis.cure_rate(portfolio.tables, "2025-02", buckets=b)
    assert cure.denominator.iloc[0] == 3  # Y, X and W were late at the start
    portfolio.close()


@pytest.mark.parametrize("edges", [[5, 30], [0], [0, 30, 30], [0, 2.5]])
def test_bad_dpd_buckets_are_refused(tmp_path, edges):
    from collect_kit.errors import ConfigError

    with pytest.raises(ConfigError, match="dpd_buckets"):
        sources.read_config(write_extract(tmp_path, dpd_buckets=edges))


def test_vintages_of_an_extract_count_the_payment_that_settles_an_account(tmp_path):
    """Q enters delinquency in February and leaves the March extract, paid off by a March
    payment; R enters in February and is still owing in March after paying part. Both
    payments belong to their February episodes (an extract drops the accounts paid off)."""
    mar = "2025-03-31"
    rows = [
        ("q1", "Q", JAN, 50, 0, 0, "", "current", "2024-06-01", "N"),
        ("q1", "Q", FEB, 50, 50, 10, "", "delinquent", "2024-06-01", "N"),
        ("r1", "R", JAN, 100, 0, 0, "", "current", "2024-06-01", "N"),
        ("r1", "R", FEB, 100, 100, 10, "", "delinquent", "2024-06-01", "N"),
        ("r1", "R", mar, 70, 70, 41, "", "delinquent", "2024-06-01", "N"),
    ]
    config = write_extract(tmp_path, rows)
    pd.DataFrame(
        {"payment_id": ["p1", "p2", "p3"], "customer_id": ["Q", "R", "R"],
         "paid_at": ["2025-03-10", "2025-03-20", "2025-02-05"], "amount": [50.0, 30.0, 5.0]}
    ).to_csv(tmp_path / "pagos.csv", index=False)  # fmt: skip
    cfg = yaml.safe_load(Path(config).read_text())
    cfg["tables"]["payments"] = {"path": "pagos.csv"}
    Path(config).write_text(yaml.safe_dump(cfg))
    portfolio = sources.load(config)
    try:
        v = kpis.vintage_curves(portfolio.tables, "2025-01", "2025-03", max_months=2)
    finally:
        portfolio.close()
    # February's episodes, one month on; R's February payment came before its entry
    assert v[["months_since", "episodes", "numerator", "denominator"]].values.tolist() == [
        [1, 2, 80.0, 150.0]
    ]
    assert v.vintage.tolist() == [pd.Timestamp(FEB)]
